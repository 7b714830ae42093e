"""Background jobs as the web side sees them: submit, follow, cancel, and record results.

The `jobs` table in DuckDB is the web side's record. Workers never open DuckDB: they report
through the queue's storage; `reconcile()` copies what they said into the table and calls the
kind's recorder (or failure handler) exactly once. The web process runs `reconcile()` on a
background thread (pages/components/common.py); the CLI runs it while it waits.

The queue object is passed in (jobs/client.py implements it) so this module stays Huey-free.
"""
from __future__ import annotations

import atexit
import importlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from app.errors import NotFound
from app.settings import get_settings
from app.store.db import connect

log = logging.getLogger(__name__)

# kind -> (worker function, web-side recorder, web-side failure handler or None)
KINDS: dict[str, tuple[str, str, str | None]] = {
    "ingest": ("app.ingest:run_ingest", "app.ingest:record_ingest", "app.ingest:fail_ingest"),
    "train": ("app.training:run_training", "app.registry:record_training", "app.registry:fail_training"),
    "evaluate": ("app.evaluation:run_evaluation", "app.evaluation:record_evaluation", None),
    "prelabel": ("app.prelabel:run_prelabel", "app.prelabel:record_prelabel", "app.prelabel:fail_prelabel"),
    "export_model": ("app.modelexport:run_export_model", "app.modelexport:record_export_model", None),
    "ping": ("app.jobstate:run_ping", "app.jobstate:record_ping", None),
}
TERMINAL = ("done", "failed", "cancelled")


class Queue(Protocol):
    def enqueue(self, kind: str, job_id: str, params: dict) -> None: ...
    def status(self, job_id: str) -> dict | None: ...
    def request_cancel(self, job_id: str) -> None: ...
    def revoke(self, job_id: str) -> None: ...
    def workers(self) -> list[dict]: ...
    def pending(self) -> int: ...


def _resolve(dotted: str) -> Callable[..., Any]:
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


def worker_function(kind: str) -> Callable[..., Any]:
    return _resolve(KINDS[kind][0])


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


def submit(queue: Queue, kind: str, params: dict, *, project_id: int | None = None,
           author: str | None = None, job_id: str | None = None) -> str:
    """Record a job in DuckDB, then enqueue it. Returns the job id."""
    if kind not in KINDS:
        raise NotFound(f"unknown job kind {kind!r}")
    job_id = job_id or new_job_id()
    with connect() as cur:
        cur.execute(
            "INSERT INTO jobs (id, kind, project_id, params, created_by) VALUES (?, ?, ?, ?, ?)",
            [job_id, kind, project_id, json.dumps(params, default=str), author],
        )
    try:
        queue.enqueue(kind, job_id, params)
    except Exception as exc:
        _finish(job_id, "failed", error=f"could not enqueue: {exc}")
        _run_failure({"id": job_id, "kind": kind, "project_id": project_id, "params": params,
                      "created_by": author}, f"could not enqueue: {exc}")
        raise
    return job_id


def _row_to_job(row: tuple, cols: list[str]) -> dict:
    job = dict(zip(cols, row, strict=True))
    for key in ("params", "progress", "result"):
        if isinstance(job.get(key), str):
            job[key] = json.loads(job[key])
    return job


def get_job(job_id: str) -> dict:
    with connect() as cur:
        res = cur.execute("SELECT * FROM jobs WHERE id = ?", [job_id])
        row = res.fetchone()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _row_to_job(row, [d[0] for d in res.description])


def list_jobs(*, project_id: int | None = None, kinds: tuple[str, ...] | None = None,
              active_only: bool = False, limit: int = 100) -> list[dict]:
    sql = "SELECT * FROM jobs WHERE 1=1"
    args: list[Any] = []
    if project_id is not None:
        sql += " AND project_id = ?"
        args.append(project_id)
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        args.extend(kinds)
    if active_only:
        sql += " AND state NOT IN ('done', 'failed', 'cancelled')"
    sql += " ORDER BY created_at DESC LIMIT ?"
    args.append(limit)
    with connect() as cur:
        res = cur.execute(sql, args)
        cols = [d[0] for d in res.description]
        return [_row_to_job(r, cols) for r in res.fetchall()]


def _finish(job_id: str, state: str, *, error: str | None = None, result: dict | None = None,
            progress: dict | None = None) -> None:
    with connect() as cur:
        cur.execute(
            "UPDATE jobs SET state = ?, error = coalesce(?, error), result = coalesce(?, result), "
            "progress = coalesce(?, progress), finished_at = coalesce(finished_at, current_timestamp) WHERE id = ?",
            [state, error, json.dumps(result, default=str) if result is not None else None,
             json.dumps(progress, default=str) if progress is not None else None, job_id],
        )


def _claim(job_id: str) -> bool:
    """Mark a finished job as recorded; False if someone (another process) already did."""
    with connect() as cur:
        row = cur.execute(
            "UPDATE jobs SET recorded = true WHERE id = ? AND NOT recorded RETURNING id", [job_id]
        ).fetchone()
        return row is not None


def _run_failure(job: dict, error: str) -> None:
    handler = KINDS.get(job["kind"], (None, None, None))[2]
    if handler is None:
        return
    try:
        _resolve(handler)(job, error)
    except Exception:  # noqa: BLE001 - cleanup failing must not hide the job's own failure
        log.exception("failure handler of job %s failed", job["id"])


def _apply(job: dict, status: dict | None, now: float, timeout_s: float) -> bool:
    """Bring one job row up to date with what its worker reported. True if it changed."""
    job_id = job["id"]
    if status is None:
        return False
    state = status.get("state") or "queued"
    progress = status.get("progress")
    if state == "running":
        beat = float(status.get("heartbeat") or 0)
        if now - beat > timeout_s:
            state = "failed"
            status = {**status, "error": f"the worker stopped responding (no heartbeat for {now - beat:.0f}s); "
                                         "it was probably killed. Start the job again."}
    if state in ("running", "queued"):
        with connect() as cur:
            cur.execute(
                "UPDATE jobs SET state = ?, progress = ?, started_at = coalesce(started_at, "
                "CASE WHEN ? = 'running' THEN current_timestamp END) WHERE id = ?",
                [state, json.dumps(progress, default=str), state, job_id],
            )
        return True
    # terminal
    if not _claim(job_id):
        return False
    if state in ("done", "cancelled"):
        result = status.get("result") or {}
        try:
            _resolve(KINDS[job["kind"]][1])(job, result)
            _finish(job_id, state, result=result, progress=progress)
        except Exception as exc:  # noqa: BLE001 - record why, then let it surface in the log
            log.exception("recording job %s failed", job_id)
            _finish(job_id, "failed", error=f"recording the result failed: {exc}", result=result)
            _run_failure(job, str(exc))
    else:
        error = status.get("error") or "failed"
        _finish(job_id, "failed", error=error, progress=progress)
        _run_failure(job, error)
    return True


_reconcile_lock = threading.Lock()


def reconcile(queue: Queue) -> int:
    """Copy worker reports of every unfinished job into DuckDB; record results. Returns changes."""
    settings = get_settings()
    with _reconcile_lock:
        pending = list_jobs(active_only=True, limit=1000)
        pending += [j for j in list_jobs(limit=200) if j["state"] in TERMINAL and not j["recorded"]
                    and j["state"] != "failed"]
        changed = 0
        now = time.time()
        for job in pending:
            try:
                if _apply(job, queue.status(job["id"]), now, settings.worker_timeout_s):
                    changed += 1
            except Exception:  # noqa: BLE001 - one bad job must not stop the others
                log.exception("reconciling job %s failed", job["id"])
        return changed


def job_status(queue: Queue, job_id: str) -> dict:
    """The job row, brought up to date with its worker's latest report."""
    job = get_job(job_id)
    if job["state"] not in TERMINAL:
        with _reconcile_lock:
            _apply(job, queue.status(job_id), time.time(), get_settings().worker_timeout_s)
        job = get_job(job_id)
        live = queue.status(job_id)
        if live and live.get("progress") and job["state"] not in TERMINAL:
            job["progress"] = live["progress"]
    return job


def cancel(queue: Queue, job_id: str) -> dict:
    """Ask a job to stop. A queued job is revoked; a running one stops at its next check."""
    job = get_job(job_id)
    if job["state"] in TERMINAL:
        return job
    queue.request_cancel(job_id)
    live = queue.status(job_id)
    if live is None or live.get("state") in (None, "queued"):
        queue.revoke(job_id)
        if _claim(job_id):
            _finish(job_id, "cancelled", error=None)
            _run_failure(job, "cancelled before it started")
    return get_job(job_id)


def wait(queue: Queue, job_id: str, *, timeout_s: float | None = None, poll_s: float = 0.5,
         on_progress: Callable[[dict], None] | None = None) -> dict:
    """Block until the job ends (CLI `--wait`). Returns the final job row."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        job = job_status(queue, job_id)
        if on_progress is not None and job.get("progress"):
            on_progress(job)
        if job["state"] in TERMINAL:
            return job
        if deadline is not None and time.monotonic() > deadline:
            return job
        time.sleep(poll_s)


class Reconciler:
    """A daemon thread that calls reconcile() every few seconds (one per web process)."""

    def __init__(self, queue: Queue, every_s: float = 2.0) -> None:
        self.queue = queue
        self.every_s = every_s
        self.data_dir = get_settings().data_dir  # it serves this data dir only
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="tpod-reconciler", daemon=True)

    def start(self) -> Reconciler:
        _reconcilers.add(self)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        _reconcilers.discard(self)
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            if get_settings().data_dir != self.data_dir:
                return  # the process now serves another data dir (tests): a new reconciler serves it
            try:
                reconcile(self.queue)
            except Exception:  # noqa: BLE001
                log.exception("reconcile failed")


_reconcilers: set[Reconciler] = set()


def stop_reconcilers() -> None:
    """Stop every reconciler of this process and wait for it (exit; tests switching data dirs)."""
    for r in list(_reconcilers):
        r.stop()


atexit.register(stop_reconcilers)  # never be inside DuckDB while the interpreter shuts down


def run_ping(params: dict, ctx: Any) -> dict:
    """A worker self-test: counts to params["steps"] (default 3), params["delay_s"] apart."""
    steps = int(params.get("steps", 3))
    for i in range(steps):
        if ctx.should_stop():
            return {"state": "cancelled", "steps_done": i}
        ctx.report(done=i, total=steps, message="pinging")
        time.sleep(float(params.get("delay_s", 0.1)))
    ctx.report(done=steps, total=steps, message="pong", final=True)
    return {"pong": params.get("echo"), "steps_done": steps}


def record_ping(job: dict, result: dict) -> None:
    """Nothing to record beyond the job row itself."""


class InlineQueue:
    """Runs each job in this process at enqueue time (like Huey's immediate mode).

    The CLI uses it when no worker is online and the user asked to wait; tests use it to run
    a job's whole path (submit -> worker function -> recorder) without a consumer process.
    """

    def __init__(self) -> None:
        self._status: dict[str, dict] = {}
        self._cancel: set[str] = set()

    def enqueue(self, kind: str, job_id: str, params: dict) -> None:
        from app.errors import TpodError
        from app.jobctx import LocalContext

        status: dict[str, Any] = {"state": "running", "heartbeat": time.time()}
        self._status[job_id] = status

        def on_report(progress: dict) -> None:
            status["progress"] = progress
            status["heartbeat"] = time.time()

        ctx = LocalContext(job_id, on_report=on_report)
        ctx.should_stop = lambda: job_id in self._cancel  # type: ignore[method-assign]
        try:
            result = worker_function(kind)(params, ctx) or {}
            status.update(state="cancelled" if result.get("state") == "cancelled" else "done", result=result)
        except TpodError as exc:
            status.update(state="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded as the job's failure, like a worker would
            log.exception("inline job %s failed", job_id)
            status.update(state="failed", error=f"{type(exc).__name__}: {exc}")

    def status(self, job_id: str) -> dict | None:
        return self._status.get(job_id)

    def request_cancel(self, job_id: str) -> None:
        self._cancel.add(job_id)

    def revoke(self, job_id: str) -> None:
        self._cancel.add(job_id)

    def workers(self) -> list[dict]:
        return [{"name": "inline", "at": time.time(), "running": []}]

    def pending(self) -> int:
        return 0
