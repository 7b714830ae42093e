"""DuckDB connections and migrations.

Who opens the file: the web process and the CLI, never a worker. DuckDB lets one process hold a
read-write handle at a time. Each process keeps its connection while it is in use (a cursor per
unit of work, per thread) and closes it after KEEP_S idle seconds, or as soon as it is idle when
another process has asked for the file: a process that finds the file locked writes
`<db>.wanted` and retries for up to `TPOD_DB_BUSY_TIMEOUT_S`. So a labeling page pays the open
cost (~30 ms) only after a pause, and the CLI gets in within one unit of work. See
benchmarks/bench_db.py for the figures.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from app.errors import DatabaseBusy
from app.settings import get_settings
from app.store.schema import LATEST, MIGRATIONS

log = logging.getLogger(__name__)

_migrated: set[Path] = set()
_migrate_lock = threading.Lock()

# A persistent connection per process, shared by threads through cursors, kept only while
# the process is busy: it is closed after KEEP_S idle seconds so another process (the CLI
# while the web app runs, or the reverse) can take the file lock.
KEEP_S = 30.0
STALE_WANT_S = 60.0


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.conn: duckdb.DuckDBPyConnection | None = None
        self.path: Path | None = None
        self.users = 0
        self.last_used = 0.0
        self.closer: threading.Thread | None = None


_holder = _Holder()


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used by another process" in text


def _want_file(path: Path) -> Path:
    return path.with_name(path.name + ".wanted")


def _someone_else_wants(path: Path) -> bool:
    marker = _want_file(path)
    try:
        st = marker.stat()
        if time.time() - st.st_mtime > STALE_WANT_S:
            marker.unlink(missing_ok=True)
            return False
        return marker.read_text().strip() != str(os.getpid())
    except (FileNotFoundError, ValueError):
        return False


def _open(path: Path, timeout_s: float) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    marker = _want_file(path)
    while True:
        try:
            conn = duckdb.connect(str(path))
            try:
                if marker.read_text().strip() == str(os.getpid()):
                    marker.unlink(missing_ok=True)
            except (FileNotFoundError, ValueError):
                pass
            return conn
        except duckdb.IOException as exc:
            if _is_lock_error(exc):
                try:
                    marker.write_text(str(os.getpid()))
                except OSError:
                    pass
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise DatabaseBusy(
                        f"{path} is held by another process for over {timeout_s:.0f}s; try again"
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _closer_loop() -> None:
    while True:
        time.sleep(0.05)
        with _holder.lock:
            if _holder.conn is None:
                _holder.closer = None
                return
            idle = _holder.users == 0
            expired = time.monotonic() - _holder.last_used >= KEEP_S
            if idle and (expired or (_holder.path is not None and _someone_else_wants(_holder.path))):
                try:
                    _holder.conn.close()
                finally:
                    _holder.conn = None
                    _holder.path = None
                    _holder.closer = None
                return


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to LATEST; returns the version found before."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    found = int(row[0]) if row and row[0] is not None else 0
    for version, sql in MIGRATIONS:
        if version <= found:
            continue
        conn.execute("BEGIN")
        try:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_version VALUES (?)", [version])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        log.info("migrated %s to schema %d", conn, version)
    return found


@contextmanager
def connect(path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on this process's connection to the DuckDB file, for one unit of work.

    Thread-safe: each caller gets its own cursor. The underlying connection stays open while
    calls keep coming and is released after KEEP_S idle seconds.
    """
    settings = get_settings()
    path = Path(path or settings.db_path)
    with _holder.lock:
        if _holder.conn is not None and _holder.path != path:
            if _holder.users == 0:
                _holder.conn.close()
                _holder.conn = None
            else:  # another file while this one is in use (tests, a moved data dir): a private connection
                private = True
        private = _holder.conn is not None and _holder.path != path
        if not private:
            if _holder.conn is None:
                _holder.conn = _open(path, settings.db_busy_timeout_s)
                _holder.path = path
                _ensure_migrated(_holder.conn, path)
            conn = _holder.conn
            _holder.users += 1
            if _holder.closer is None:
                _holder.closer = threading.Thread(target=_closer_loop, name="duckdb-closer", daemon=True)
                _holder.closer.start()
    if private:
        conn = _open(path, settings.db_busy_timeout_s)
        try:
            _ensure_migrated(conn, path)
            yield conn
        finally:
            conn.close()
        return
    cur = conn.cursor()
    try:
        yield cur
    finally:
        cur.close()
        with _holder.lock:
            _holder.users -= 1
            _holder.last_used = time.monotonic()


def _ensure_migrated(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    with _migrate_lock:
        if path not in _migrated:
            migrate(conn)
            _migrated.add(path)


def release() -> None:
    """Close this process's connection now (CLI exit, tests, shutdown checkpoint)."""
    with _holder.lock:
        if _holder.conn is not None and _holder.users == 0:
            try:
                _holder.conn.execute("CHECKPOINT")
            except duckdb.Error:
                pass
            _holder.conn.close()
            _holder.conn = None
            _holder.path = None


atexit.register(release)  # checkpoint on a clean shutdown


def schema_version(path: Path | None = None) -> int:
    with connect(path) as cur:
        row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0


__all__ = ["connect", "migrate", "release", "schema_version", "LATEST"]
