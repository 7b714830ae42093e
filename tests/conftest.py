"""Shared fixtures: a scratch data dir, real worker processes, a real redis-server."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests never reach for the network (no weight downloads, no online probe).
os.environ.setdefault("TPOD_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TPOD_DATA_DIR pointed at a fresh folder; the DuckDB handle is released afterwards."""
    from app.store import db

    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("TPOD_DATA_DIR", str(d))
    for var in ("TPOD_REDIS_URL", "TPOD_QUEUE", "TPOD_USERS_FILE"):
        monkeypatch.delenv(var, raising=False)
    db.release()
    yield d
    _stop_page_services()
    db.release()



@pytest.fixture
def fresh_stats(data_dir: Path) -> Iterator[Path]:
    """data_dir with no stats kept from another test, nor per-video partials still being built."""
    from app import stats

    stats.clear_cache()
    yield data_dir
    stats.settle()
    stats.clear_cache()

def _stop_page_services() -> None:
    """Page tests start a reconciler thread cached by Streamlit for the process: stop it and drop
    the cache, so the next test's pages get their own for their own data dir."""
    from app.jobstate import stop_reconcilers

    stop_reconcilers()
    st = sys.modules.get("streamlit")
    if st is not None:
        st.cache_resource.clear()


def start_worker(env: dict[str, str], log_path: Path, threads: int = 2) -> subprocess.Popen:
    """A real `huey_consumer` process on tpod's queue (what `python -m app worker` execs)."""
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "jobs.worker.huey", "--workers", str(threads),
         "--worker-type", "thread"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 15) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def wait_for(pred, timeout: float = 30, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def worker(data_dir: Path) -> Iterator[subprocess.Popen]:
    """A real huey_consumer on the SQLite queue of `data_dir`, online before the test starts."""
    from jobs.client import get_queue

    proc = start_worker(dict(os.environ), data_dir / "worker.log")
    wait_for(lambda: get_queue().workers(), timeout=60, what="worker heartbeat")
    yield proc
    stop_process(proc)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, for the Redis queue path."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed (apt-get install redis-server; .ci/run does this)"
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    wait_for(lambda: _ping(client), timeout=20, what="redis-server")
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(proc, signal.SIGTERM)


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False
