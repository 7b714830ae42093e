"""The one Huey task: run a tpod job by kind, reporting through the queue's key-value storage.

What the web side reads (app/jobstate.py via jobs/client.py), key `tpod:job:<id>`:
    {"state": queued|running|done|failed|cancelled, "progress": {...latest report...},
     "result": {...}, "error": "...", "worker": "...", "heartbeat": epoch_s, ...}
Cancel requests arrive under `tpod:cancel:<id>`. Only the worker running a job writes its status.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from huey import Huey
from huey.exceptions import RetryTask

from app.errors import TpodError
from app.jobstate import KINDS, worker_function
from app.settings import get_settings
from jobs.config import TASK_NAME

log = logging.getLogger("tpod.worker")

JOB_KEY = "tpod:job:{}"
CANCEL_KEY = "tpod:cancel:{}"
WORKER_KEY = "tpod:worker:{}"
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"

# One training (GPU-bound) job per worker process at a time; others go back to the queue
# so another worker can take them.
EXCLUSIVE_KINDS = {"train", "evaluate"}
_exclusive = threading.BoundedSemaphore(1)
_running: set[str] = set()
_running_lock = threading.Lock()


def read_json(huey: Huey, key: str) -> dict | None:
    from huey.constants import EmptyData

    raw = huey.storage.peek_data(key)
    if raw is EmptyData or raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def write_json(huey: Huey, key: str, value: dict) -> None:
    huey.storage.put_data(key, json.dumps(value, default=str).encode())


class HueyJobContext:
    """app.jobctx.JobContext backed by the queue's storage (SQLite or Redis alike)."""

    def __init__(self, huey: Huey, job_id: str) -> None:
        self.huey = huey
        self.job_id = job_id
        self.data_dir: Path = get_settings().data_dir
        self._lock = threading.Lock()
        self._status: dict[str, Any] = read_json(huey, JOB_KEY.format(job_id)) or {}
        self._last_write = 0.0

    def set(self, **fields: Any) -> None:
        with self._lock:
            self._status.update(fields)
            self._status["heartbeat"] = time.time()
            self._status["worker"] = WORKER_NAME
            write_json(self.huey, JOB_KEY.format(self.job_id), self._status)
            self._last_write = time.monotonic()

    def report(self, **progress: Any) -> None:
        progress.setdefault("at", time.time())
        with self._lock:
            self._status["progress"] = progress
            due = time.monotonic() - self._last_write >= 0.25
        if due or progress.get("final"):
            self.set()

    def beat(self) -> None:
        self.set()

    def should_stop(self) -> bool:
        return not _is_empty(self.huey.storage.peek_data(CANCEL_KEY.format(self.job_id)))


def _is_empty(value: Any) -> bool:
    from huey.constants import EmptyData

    return value is EmptyData or value is None


def _heartbeat_loop(ctx: HueyJobContext, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            ctx.beat()
        except Exception:  # noqa: BLE001 - a missed beat must not kill the job
            log.warning("heartbeat for job %s failed", ctx.job_id, exc_info=True)


def run_job(huey: Huey, kind: str, job_id: str, params: dict) -> None:
    """Body of the Huey task. Records the outcome in the queue's storage; re-raises failures."""
    settings = get_settings()
    ctx = HueyJobContext(huey, job_id)
    if kind not in KINDS:
        ctx.set(state="failed", error=f"unknown job kind {kind!r}", finished_at=time.time())
        return
    if ctx.should_stop():
        ctx.set(state="cancelled", finished_at=time.time(), progress={"message": "cancelled before start"})
        return
    exclusive = kind in EXCLUSIVE_KINDS
    if exclusive and not _exclusive.acquire(blocking=False):
        raise RetryTask(delay=3)
    stop = threading.Event()
    beater = threading.Thread(target=_heartbeat_loop, args=(ctx, stop, settings.heartbeat_s), daemon=True)
    with _running_lock:
        _running.add(job_id)
    try:
        ctx.set(state="running", started_at=time.time(), error=None)
        beater.start()
        fn = worker_function(kind)
        result = fn(params, ctx) or {}
        state = "cancelled" if result.get("state") == "cancelled" else "done"
        ctx.set(state=state, result=result, finished_at=time.time())
    except TpodError as exc:
        ctx.set(state="failed", error=str(exc), finished_at=time.time())
        raise
    except Exception as exc:
        ctx.set(state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=time.time())
        raise
    finally:
        stop.set()
        with _running_lock:
            _running.discard(job_id)
        if exclusive:
            _exclusive.release()


def register(huey: Huey):
    """Register the task on a Huey instance (the consumer's and each client's)."""

    def _task(kind: str, job_id: str, params: dict) -> None:
        run_job(huey, kind, job_id, params)

    _task.__name__ = "run_job"
    return huey.task(name=TASK_NAME)(_task)


def worker_heartbeat_loop(huey: Huey, stop: threading.Event) -> None:
    """Tell the web side this worker is alive, and what it runs, every heartbeat_s."""
    settings = get_settings()
    started = time.time()
    device = os.environ.get("TPOD_WORKER_DEVICE_LABEL", "")
    while True:
        with _running_lock:
            running = sorted(_running)
        try:
            write_json(huey, WORKER_KEY.format(WORKER_NAME), {
                "name": WORKER_NAME, "host": socket.gethostname(), "pid": os.getpid(),
                "started": started, "at": time.time(), "running": running, "device": device,
            })
        except Exception:  # noqa: BLE001
            log.warning("worker heartbeat failed", exc_info=True)
        if stop.wait(settings.heartbeat_s):
            return
