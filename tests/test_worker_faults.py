"""Worker faults with real huey_consumer processes: SIGKILL mid-ingest and mid-training, cancel
of a queued training run, and two training runs handed to one worker at once.

Heartbeats are fast here (TPOD_HEARTBEAT_S=0.5, TPOD_WORKER_TIMEOUT_S=3, in this process and in
the workers), so a killed worker's job is declared dead within seconds.
"""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import ingest, jobstate, projects, registry
from app.store import db
from tests.conftest import SHARED, start_worker, stop_process, wait_for
from tests.test_registry import add_version

pytestmark = pytest.mark.slow

VTEST = SHARED / "opencv_vtest" / "vtest.avi"  # 795 frames 768x576: seconds of decoding
CROSSING = SHARED / "otb_crossing" / "crossing_h264.mp4"
TRAIN = {"pretrained": False, "imgsz": 64, "batch": 4, "patience": 0, "device": "cpu",
         "hyp": {"mosaic": 0.0, "warmup_epochs": 0.0}}


@pytest.fixture
def fast(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Fast heartbeats for this process and the workers it starts; every worker stopped at the end."""
    monkeypatch.setenv("TPOD_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("TPOD_WORKER_TIMEOUT_S", "3")
    yield dict(os.environ)


@pytest.fixture
def workers(fast: dict[str, str], data_dir: Path) -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        stop_process(p)


def _start(procs: list, env: dict[str, str], data_dir: Path) -> subprocess.Popen:
    from jobs.client import get_queue

    proc = start_worker(env, data_dir / f"worker{len(procs)}.log")
    procs.append(proc)
    wait_for(lambda: any(w["pid"] == proc.pid for w in get_queue().workers()), timeout=60, what="worker heartbeat")
    return proc


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # no shutdown hook, no final status write
    proc.wait(timeout=10)


def _progress(queue, job_id: str) -> dict:
    return (queue.status(job_id) or {}).get("progress") or {}


def test_sigkill_mid_ingest_leaves_nothing_and_the_next_worker_goes_on(workers, fast, data_dir: Path) -> None:
    from jobs.client import get_queue

    queue = get_queue()
    first = _start(workers, fast, data_dir)
    p = projects.create_project("faults")
    [job] = ingest.start_ingest(queue, p.id, [("vtest.avi", VTEST)])
    vid = int(jobstate.get_job(job)["params"]["video_id"])
    wait_for(lambda: _progress(queue, job).get("done", 0) >= 10, timeout=90, every=0.05, what="ingest decoding")
    assert _progress(queue, job)["done"] < 795, "the ingest finished before it could be killed"
    assert (data_dir / "videos" / f"{vid}.tmp").is_dir()  # half-written frames exist right now
    _kill(first)

    final = jobstate.wait(queue, job, timeout_s=30)
    assert final["state"] == "failed" and "stopped responding" in final["error"], final
    assert ingest.list_videos(p.id) == []
    with db.connect() as cur:
        assert cur.execute("SELECT count(*) FROM frames").fetchone()[0] == 0
    for left in (data_dir / "videos" / str(vid), data_dir / "videos" / f"{vid}.tmp", data_dir / "uploads" / str(vid)):
        assert not left.exists(), f"{left} was left behind"

    _start(workers, fast, data_dir)
    [nxt] = ingest.start_ingest(queue, p.id, [("crossing.mp4", CROSSING)], max_side=96)
    assert jobstate.wait(queue, nxt, timeout_s=90)["state"] == "done"
    [video] = ingest.list_videos(p.id)
    assert (video["name"], video["status"], video["frame_count"]) == ("crossing.mp4", "ready", 120)


def test_sigkill_mid_training_fails_the_run_and_registers_nothing(workers, fast, data_dir: Path) -> None:
    from jobs.client import get_queue

    queue = get_queue()
    p = projects.create_project("train faults", ["person"])
    version = add_version(data_dir, p.id, "v1", train=4, val=2)
    first = _start(workers, fast, data_dir)
    run_id, job = registry.start_training(queue, p.id, version, "yolo26n.yaml", {**TRAIN, "epochs": 50})
    run_dir = Path(registry.get_run(run_id)["run_dir"])
    wait_for(lambda: len(_progress(queue, job).get("history") or []) >= 1, timeout=150, what="first epoch")
    assert jobstate.job_status(queue, job)["state"] == "running"  # copies the worker's report to DuckDB
    assert registry.get_run(run_id)["state"] == "running"
    _kill(first)

    final = jobstate.wait(queue, job, timeout_s=30)
    assert final["state"] == "failed" and "stopped responding" in final["error"], final
    run = registry.get_run(run_id)
    assert run["state"] == "failed" and "stopped responding" in run["error"]
    assert registry.list_models(p.id) == []
    assert not run_dir.exists(), "the half-written run folder was left behind"

    _start(workers, fast, data_dir)
    nxt = jobstate.submit(queue, "ping", {"echo": "after the crash", "steps": 2})
    done = jobstate.wait(queue, nxt, timeout_s=60)
    assert done["state"] == "done" and done["result"]["pong"] == "after the crash"


def test_cancelled_queued_training_never_runs(workers, fast, data_dir: Path) -> None:
    from jobs.client import get_queue

    queue = get_queue()
    assert queue.workers() == []
    p = projects.create_project("cancel", ["person"])
    version = add_version(data_dir, p.id, "v1", train=4, val=2)
    run_id, job = registry.start_training(queue, p.id, version, "yolo26n.yaml", {**TRAIN, "epochs": 1})
    assert registry.get_run(run_id)["state"] == "queued"
    assert jobstate.cancel(queue, job)["state"] == "cancelled"
    assert registry.get_run(run_id)["state"] == "cancelled"

    _start(workers, fast, data_dir)
    after = jobstate.submit(queue, "ping", {"echo": "next", "steps": 1})
    assert jobstate.wait(queue, after, timeout_s=60)["state"] == "done"  # the queue went past the cancelled run
    assert (queue.status(job) or {}).get("state") in ("queued", "cancelled")
    assert "started_at" not in (queue.status(job) or {})
    assert jobstate.get_job(job)["state"] == "cancelled"
    assert registry.get_run(run_id)["state"] == "cancelled"
    assert registry.list_models(p.id) == []
    assert not Path(registry.get_run(run_id)["run_dir"]).exists()


def test_two_trainings_at_once_on_one_worker_both_finish_one_after_the_other(workers, fast, data_dir: Path) -> None:
    from jobs.client import get_queue

    queue = get_queue()
    p = projects.create_project("two runs", ["person"])
    version = add_version(data_dir, p.id, "v1", train=4, val=2)
    _start(workers, fast, data_dir)  # two worker threads, one training slot
    runs = [registry.start_training(queue, p.id, version, "yolo26n.yaml", {**TRAIN, "epochs": 2}) for _ in range(2)]
    jobs = [jobstate.wait(queue, job, timeout_s=240) for _, job in runs]
    assert [j["state"] for j in jobs] == ["done", "done"], [j.get("error") for j in jobs]
    assert [registry.get_run(r)["state"] for r, _ in runs] == ["done", "done"]
    models = registry.list_models(p.id)
    assert sorted(m["run_id"] for m in models) == sorted(r for r, _ in runs)
    assert all(Path(m["path"]).is_file() for m in models)
    spans = sorted((queue.status(job)["started_at"], queue.status(job)["finished_at"]) for _, job in runs)
    assert spans[0][1] <= spans[1][0], f"the trainings overlapped: {spans}"
