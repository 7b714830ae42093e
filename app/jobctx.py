"""What a background job's core function sees of its runner.

Worker-side functions have the shape `run_x(params: dict, ctx: JobContext) -> dict`: they read
only immutable inputs named in `params` (files under the data dir), never the DuckDB file, call
`ctx.report(...)` with JSON-able progress, poll `ctx.should_stop()` for cancel, and return a
JSON-able result that the web side records in DuckDB (app/jobstate.py).

`jobs/` provides the Huey-backed context; `LocalContext` runs a job in this process (the CLI's
fallback when no worker is online, and unit tests).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from app.settings import get_settings


class JobContext(Protocol):
    job_id: str
    data_dir: Path

    def report(self, **progress: Any) -> None:
        """Publish progress, e.g. done=, total=, message=, plus kind-specific keys."""

    def should_stop(self) -> bool:
        """True once a cancel was requested: stop soon, keep what is worth keeping."""


class LocalContext:
    """Runs a job in the calling process; keeps every progress report (tests read them)."""

    def __init__(self, job_id: str = "local", on_report: Any = None) -> None:
        self.job_id = job_id
        self.data_dir = get_settings().data_dir
        self.reports: list[dict[str, Any]] = []
        self.stop_requested = False
        self._on_report = on_report

    def report(self, **progress: Any) -> None:
        progress.setdefault("at", time.time())
        self.reports.append(progress)
        if self._on_report is not None:
            self._on_report(progress)

    def should_stop(self) -> bool:
        return self.stop_requested
