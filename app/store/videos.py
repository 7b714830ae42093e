"""SQL for videos (and image sets) and their frames."""
from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

VIDEO_COLUMNS = (
    "id", "project_id", "name", "kind", "status", "width", "height", "fps", "frame_count",
    "duration", "codec", "stride", "work_width", "work_height", "job_id", "error",
    "created_at", "created_by",
)
_SELECT = f"SELECT {', '.join(VIDEO_COLUMNS)} FROM videos"  # noqa: S608 (fixed names)


def _row(row: tuple | None) -> dict[str, Any] | None:
    return None if row is None else dict(zip(VIDEO_COLUMNS, row, strict=True))


def insert_video(cur: duckdb.DuckDBPyConnection, project_id: int, name: str, kind: str, stride: int,
                 job_id: str, author: str | None) -> int:
    row = cur.execute(
        "INSERT INTO videos (project_id, name, kind, status, stride, job_id, created_by) "
        "VALUES (?, ?, ?, 'ingesting', ?, ?, ?) RETURNING id",
        [project_id, name, kind, stride, job_id, author],
    ).fetchone()
    return int(row[0])


def video_count(cur: duckdb.DuckDBPyConnection, project_id: int) -> int:
    return int(cur.execute("SELECT count(*) FROM videos WHERE project_id = ?", [project_id]).fetchone()[0])


def taken_names(cur: duckdb.DuckDBPyConnection, project_id: int, names: list[str]) -> list[str]:
    if not names:
        return []
    rows = cur.execute(
        "SELECT name FROM videos WHERE project_id = ? AND list_contains(?, name)", [project_id, names]
    ).fetchall()
    return [r[0] for r in rows]


def video_by_id(cur: duckdb.DuckDBPyConnection, video_id: int) -> dict[str, Any] | None:
    return _row(cur.execute(f"{_SELECT} WHERE id = ?", [video_id]).fetchone())


def video_by_job(cur: duckdb.DuckDBPyConnection, job_id: str) -> dict[str, Any] | None:
    return _row(cur.execute(f"{_SELECT} WHERE job_id = ?", [job_id]).fetchone())


def videos_of(cur: duckdb.DuckDBPyConnection, project_id: int) -> list[dict[str, Any]]:
    rows = cur.execute(f"{_SELECT} WHERE project_id = ? ORDER BY created_at, id", [project_id]).fetchall()
    return [_row(r) for r in rows]  # type: ignore[misc]


def mark_ready(cur: duckdb.DuckDBPyConnection, video_id: int, *, width: int, height: int, fps: float | None,
               frame_count: int, duration: float | None, codec: str | None, stride: int,
               work_width: int, work_height: int) -> None:
    cur.execute(
        "UPDATE videos SET status = 'ready', error = NULL, width = ?, height = ?, fps = ?, frame_count = ?, "
        "duration = ?, codec = ?, stride = ?, work_width = ?, work_height = ? WHERE id = ?",
        [width, height, fps, frame_count, duration, codec, stride, work_width, work_height, video_id],
    )


def insert_frames(cur: duckdb.DuckDBPyConnection, frames: pd.DataFrame) -> int:
    """Bulk insert from a DataFrame with columns video_id, idx, source_idx, ts, name, width, height."""
    cur.register("_new_frames", frames)
    try:
        cur.execute(
            "INSERT INTO frames (video_id, idx, source_idx, ts, name, width, height) "
            "SELECT video_id, idx, source_idx, ts, name, width, height FROM _new_frames"
        )
    finally:
        cur.unregister("_new_frames")
    return len(frames)


def frame_count(cur: duckdb.DuckDBPyConnection, video_id: int) -> int:
    return int(cur.execute("SELECT count(*) FROM frames WHERE video_id = ?", [video_id]).fetchone()[0])


def delete_video(cur: duckdb.DuckDBPyConnection, video_id: int) -> None:
    """Every row that belongs to one video: boxes, tracks, frames, the video."""
    cur.execute("DELETE FROM boxes WHERE video_id = ?", [video_id])
    cur.execute("DELETE FROM tracks WHERE video_id = ?", [video_id])
    cur.execute("DELETE FROM frames WHERE video_id = ?", [video_id])
    cur.execute("DELETE FROM videos WHERE id = ?", [video_id])
