"""Settings, migrations, layering, the CLI's error paths, and jobs through a real huey_consumer."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from app import jobstate, projects
from app.errors import BadInput, Conflict
from app.settings import load_settings
from app.store import db
from app.store.schema import LATEST
from tests.conftest import ROOT, start_worker, stop_process, wait_for

# ---------------------------------------------------------------- settings

def test_settings_defaults_live_under_data_dir(tmp_path: Path) -> None:
    s = load_settings({"TPOD_DATA_DIR": str(tmp_path)})
    assert s.db_path == tmp_path / "tpod.duckdb"
    assert s.queue_backend == "sqlite" and s.queue_path.parent == tmp_path
    assert s.device == "auto" and s.max_upload_mb == 2048


def test_settings_redis_url_switches_queue(tmp_path: Path) -> None:
    s = load_settings({"TPOD_DATA_DIR": str(tmp_path), "TPOD_REDIS_URL": "redis://h:6379/0"})
    assert s.queue_backend == "redis" and s.redis_url == "redis://h:6379/0"


@pytest.mark.parametrize("env, message", [
    ({"TPOD_QUEUE": "kafka"}, "TPOD_QUEUE"),
    ({"TPOD_QUEUE": "redis"}, "TPOD_REDIS_URL"),
    ({"TPOD_MAX_UPLOAD_MB": "lots"}, "TPOD_MAX_UPLOAD_MB"),
    ({"TPOD_WORKER_THREADS": "0"}, "TPOD_WORKER_THREADS"),
])
def test_settings_bad_values_are_named(env: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_settings(env)


# ---------------------------------------------------------------- layering

def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_app_core_imports_neither_streamlit_nor_huey() -> None:
    offenders = {}
    for path in (ROOT / "app").rglob("*.py"):
        if path.name == "__main__.py":  # the composition root hands the CLI its queue
            continue
        bad = _imports(path) & {"streamlit", "huey", "jobs", "pages"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_pages_hold_no_sql_or_opencv() -> None:
    offenders = {}
    for path in (ROOT / "pages").rglob("*.py"):
        bad = _imports(path) & {"duckdb", "cv2", "huey"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_only_settings_reads_the_environment() -> None:
    readers = [str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*.py")
               if ("os.environ.get(" in p.read_text() or "os.getenv(" in p.read_text())
               and p.name not in ("settings.py", "cli.py")]
    assert readers == []


def test_opencv_has_the_contrib_trackers() -> None:
    import cv2

    assert hasattr(cv2, "TrackerCSRT_create") and hasattr(cv2, "TrackerKCF_create")
    assert hasattr(cv2.legacy, "TrackerMedianFlow_create")


# ---------------------------------------------------------------- store

def test_projects_and_classes(data_dir: Path) -> None:
    p = projects.create_project("Cars <b>&'; DROP TABLE projects;--", ["car", ("person", "#00ff00")])
    assert p.name == "Cars <b>&'; DROP TABLE projects;--"
    assert [c.name for c in p.classes] == ["car", "person"]
    with pytest.raises(Conflict):
        projects.create_project(p.name)
    with pytest.raises(Conflict):
        projects.add_class(p.id, "car")
    car = p.classes[0]
    renamed = projects.update_class(car.id, name="vehicle")
    assert renamed.name == "vehicle" and renamed.id == car.id
    other = projects.create_project("other")
    with pytest.raises(Conflict):
        projects.rename_project(other.id, p.name)
    projects.delete_project(other.id)
    assert [x.name for x in projects.list_projects()] == [p.name]


def test_migration_upgrades_an_older_data_dir(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "older" / "tpod.duckdb"
    path.parent.mkdir()
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")  # schema 0: a bare file
    conn.close()
    assert db.schema_version(path) == LATEST
    db.release()
    assert db.schema_version(path) == LATEST  # idempotent


def test_second_process_cannot_open_while_held_then_can(data_dir: Path) -> None:
    """DuckDB allows one read-write process; tpod releases the file when idle so the CLI gets in."""
    projects.create_project("held")
    with db.connect() as cur:
        cur.execute("SELECT 1").fetchone()
        code = ("import duckdb,sys\ntry:\n duckdb.connect(sys.argv[1], read_only=True)\n print('opened')\n"
                "except duckdb.IOException as e:\n print('locked')")
        out = subprocess.run([sys.executable, "-c", code, str(data_dir / "tpod.duckdb")], capture_output=True,
                             text=True, timeout=60).stdout.strip()
        assert out == "locked"
    # the CLI (another process) gets in while this process keeps working (a labeler clicking)
    import threading

    stop = threading.Event()
    units = []

    def labeler() -> None:
        while not stop.is_set():
            units.append(len(projects.list_projects()))
            time.sleep(0.1)

    t = threading.Thread(target=labeler)
    t.start()
    try:
        result = subprocess.run([sys.executable, "-m", "app", "project", "create", "from-cli", "--json"],
                                cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        t.join()
    assert len(units) > 3 and units[-1] == 2  # this process kept working and saw the CLI's project
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["name"] == "from-cli"
    assert {p.name for p in projects.list_projects()} == {"held", "from-cli"}


# ---------------------------------------------------------------- CLI

def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, input=stdin)


@pytest.mark.parametrize("command", ["", "serve", "worker", "ingest", "import", "export", "stats", "version",
                                     "train", "jobs", "cancel", "predict", "prelabel", "export-model", "user"])
def test_cli_help_everywhere(command: str) -> None:
    r = subprocess.run([sys.executable, "-m", "app", *([command] if command else []), "--help"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout


@pytest.mark.parametrize("args, message", [
    (("stats", "--project", "nope"), "no project 'nope'"),
    (("ingest", "/no/such/file.mp4", "--project", "p"), "no such file"),
    (("project", "delete", "nope", "--yes"), "no project"),
    (("predict", "/no/model.pt", "/x.jpg"), "no such model"),
])
def test_cli_errors_are_one_line_and_nonzero(data_dir: Path, args: tuple, message: str) -> None:
    r = _cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_cli_json_last_line_and_users(data_dir: Path) -> None:
    r = _cli("project", "create", "p1", "--classes", "a,b", "--json")
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"project": 1, "name": "p1", "classes": ["a", "b"]}
    r = _cli("user", "add", "ana", "--role", "admin", "--password-stdin", "--json", stdin="correct horse\n")
    assert r.returncode == 0, r.stderr
    users = json.loads((data_dir / "users.json").read_text())["users"]
    assert "correct horse" not in json.dumps(users) and users["ana"]["hash"].startswith("$2")
    r = _cli("user", "add", "bob", "--password", "short")
    assert r.returncode == 2 and "at least 8" in r.stderr


# ---------------------------------------------------------------- jobs through real workers

def test_job_round_trip_inline(data_dir: Path) -> None:
    queue = jobstate.InlineQueue()
    job_id = jobstate.submit(queue, "ping", {"echo": "hi", "steps": 2})
    job = jobstate.wait(queue, job_id, timeout_s=10)
    assert job["state"] == "done" and job["result"]["pong"] == "hi" and job["recorded"]


def test_job_round_trip_through_real_huey_consumer_sqlite(worker, data_dir: Path) -> None:
    from jobs.client import get_queue

    queue = get_queue()
    assert queue.workers()[0]["pid"] == worker.pid
    job_id = jobstate.submit(queue, "ping", {"echo": "sqlite", "steps": 3, "delay_s": 0.8})
    seen = []
    job = jobstate.wait(queue, job_id, timeout_s=60, poll_s=0.1, on_progress=lambda j: seen.append(j["progress"]))
    assert job["state"] == "done", job
    assert job["result"] == {"pong": "sqlite", "steps_done": 3}
    assert any(p.get("message") == "pinging" for p in seen)


def test_cancel_running_and_queued_jobs(worker, data_dir: Path) -> None:
    from jobs.client import get_queue

    queue = get_queue()
    long = jobstate.submit(queue, "ping", {"steps": 400, "delay_s": 0.05})
    wait_for(lambda: (queue.status(long) or {}).get("state") == "running", what="job running")
    jobstate.cancel(queue, long)
    assert jobstate.wait(queue, long, timeout_s=30)["state"] == "cancelled"


def test_killed_worker_marks_running_job_failed_and_queue_goes_on(data_dir: Path, monkeypatch) -> None:
    from jobs.client import get_queue

    monkeypatch.setenv("TPOD_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("TPOD_WORKER_TIMEOUT_S", "3")
    env = dict(os.environ)
    proc = start_worker(env, data_dir / "worker.log")
    queue = get_queue()
    try:
        wait_for(lambda: queue.workers(), timeout=60, what="worker")
        job = jobstate.submit(queue, "ping", {"steps": 1000, "delay_s": 0.05})
        wait_for(lambda: (queue.status(job) or {}).get("state") == "running", what="job running")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        final = jobstate.wait(queue, job, timeout_s=30)
        assert final["state"] == "failed" and "stopped responding" in final["error"]
    finally:
        stop_process(proc)
    proc2 = start_worker(env, data_dir / "worker2.log")
    try:
        nxt = jobstate.submit(queue, "ping", {"echo": "after", "steps": 1})
        assert jobstate.wait(queue, nxt, timeout_s=60)["state"] == "done"
    finally:
        stop_process(proc2)


def test_job_round_trip_through_real_redis(redis_url: str, data_dir: Path, monkeypatch) -> None:
    from jobs.client import get_queue

    monkeypatch.setenv("TPOD_REDIS_URL", redis_url)
    env = dict(os.environ)
    procs = [start_worker(env, data_dir / f"worker{i}.log", threads=1) for i in range(2)]
    queue = get_queue()
    try:
        assert queue.huey.__class__.__name__ == "RedisHuey"
        wait_for(lambda: len(queue.workers()) == 2, timeout=60, what="two redis workers")
        ids = [jobstate.submit(queue, "ping", {"echo": i, "steps": 4, "delay_s": 0.2}) for i in range(4)]
        jobs = [jobstate.wait(queue, j, timeout_s=60) for j in ids]
        assert [j["result"]["pong"] for j in jobs] == [0, 1, 2, 3]
        workers_used = {queue.status(j)["worker"] for j in ids}
        assert len(workers_used) == 2, "both workers on the shared Redis queue took jobs"
    finally:
        for p in procs:
            stop_process(p)
