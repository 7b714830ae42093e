"""SQL for annotation import and export (app/transfer.py decides the transaction).

Bulk rows travel as pandas DataFrames registered on the cursor: one INSERT ... SELECT per
table instead of a statement per box.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from app.store.stats import fill_bins

Cur = duckdb.DuckDBPyConnection

VIDEO_COLS = ("id", "project_id", "name", "kind", "status", "width", "height", "work_width",
              "work_height", "frame_count")


def video_row(cur: Cur, video_id: int) -> dict[str, Any] | None:
    r = cur.execute(f"SELECT {', '.join(VIDEO_COLS)} FROM videos WHERE id = ?", [video_id]).fetchone()  # noqa: S608
    return dict(zip(VIDEO_COLS, r, strict=True)) if r else None


def videos_of_project(cur: Cur, project_id: int, video_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Ready videos and image sets of a project (all, or those listed), oldest first."""
    rows = cur.execute(
        f"SELECT {', '.join(VIDEO_COLS)} FROM videos WHERE project_id = ? AND status = 'ready' ORDER BY id",  # noqa: S608
        [project_id],
    ).fetchall()
    out = [dict(zip(VIDEO_COLS, r, strict=True)) for r in rows]
    if video_ids is not None:
        wanted = {int(v) for v in video_ids}
        out = [v for v in out if v["id"] in wanted]
    return out


def video_names(cur: Cur, project_id: int) -> set[str]:
    return {r[0] for r in cur.execute("SELECT name FROM videos WHERE project_id = ?", [project_id]).fetchall()}


def video_count(cur: Cur, project_id: int) -> int:
    return int(cur.execute("SELECT count(*) FROM videos WHERE project_id = ?", [project_id]).fetchone()[0])


def frames_of(cur: Cur, video_ids: Sequence[int]) -> pd.DataFrame:
    """video_id, idx, name, width, height of every frame of the given videos."""
    ids = pd.DataFrame({"video_id": [int(v) for v in video_ids]}, dtype="int64")
    cur.register("tpod_ids", ids)
    try:
        return cur.execute(
            "SELECT f.video_id, f.idx, f.name, f.width, f.height FROM frames f "
            "JOIN tpod_ids i ON i.video_id = f.video_id ORDER BY f.video_id, f.idx"
        ).df()
    finally:
        cur.unregister("tpod_ids")


def insert_image_set(cur: Cur, project_id: int, name: str, width: int, height: int, frame_count: int,
                     author: str | None) -> int:
    row = cur.execute(
        "INSERT INTO videos (project_id, name, kind, status, width, height, fps, frame_count, duration, codec, "
        "stride, work_width, work_height, created_by) "
        "VALUES (?, ?, 'images', 'ready', ?, ?, NULL, ?, 0.0, 'images', 1, ?, ?, ?) RETURNING id",
        [project_id, name, width, height, frame_count, width, height, author],
    ).fetchone()
    return int(row[0])


def next_ids(cur: Cur, sequence: str, n: int) -> list[int]:
    """Reserve n ids from a sequence (so child rows can name their parents before insert)."""
    if sequence not in ("seq_tracks", "seq_boxes"):
        raise ValueError(f"unexpected sequence {sequence!r}")
    if n <= 0:
        return []
    return [int(r[0]) for r in cur.execute(f"SELECT nextval('{sequence}') FROM range(?)", [n]).fetchall()]


def _insert_df(cur: Cur, table: str, df: pd.DataFrame) -> None:
    if df.empty:
        return
    cols = ", ".join(df.columns)
    cur.register("tpod_rows", df)
    try:
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM tpod_rows")  # noqa: S608 (fixed names)
    finally:
        cur.unregister("tpod_rows")


def insert_frames(cur: Cur, df: pd.DataFrame) -> None:
    """Columns: video_id, idx, source_idx, ts, name, width, height."""
    _insert_df(cur, "frames", df)


def insert_tracks(cur: Cur, df: pd.DataFrame) -> None:
    """Columns: id, video_id, class_id, created_by."""
    _insert_df(cur, "tracks", df)


def insert_boxes(cur: Cur, df: pd.DataFrame) -> None:
    """Columns: video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, outside, keyframe, author."""
    _insert_df(cur, "boxes", df)
    if not df.empty:
        fill_bins(cur, video_ids=sorted({int(v) for v in df["video_id"].unique()}))


def boxes_for_export(cur: Cur, video_ids: Sequence[int], *, with_outside: bool) -> pd.DataFrame:
    """Boxes of the given videos with their class name, ordered by video, frame, track."""
    ids = pd.DataFrame({"video_id": [int(v) for v in video_ids]}, dtype="int64")
    cur.register("tpod_ids", ids)
    try:
        return cur.execute(
            "SELECT b.video_id, b.frame_idx, b.track_id, c.name AS label, b.x1, b.y1, b.x2, b.y2, b.source, "
            "b.outside, b.keyframe FROM boxes b JOIN tpod_ids i ON i.video_id = b.video_id "
            "JOIN label_classes c ON c.id = b.class_id "
            + ("" if with_outside else "WHERE NOT b.outside ")
            + "ORDER BY b.video_id, b.frame_idx, b.track_id"
        ).df()
    finally:
        cur.unregister("tpod_ids")


def version_row(cur: Cur, version_id: int) -> dict[str, Any] | None:
    r = cur.execute(
        "SELECT id, project_id, name, classes, path FROM dataset_versions WHERE id = ?", [version_id]
    ).fetchone()
    if r is None:
        return None
    classes = json.loads(r[3]) if isinstance(r[3], str) else (r[3] or [])
    return {"id": r[0], "project_id": r[1], "name": r[2], "classes": classes, "path": r[4]}


def version_items(cur: Cur, version_id: int) -> pd.DataFrame:
    return cur.execute(
        "SELECT split, video_id, frame_idx, image, width, height, class_index, track_id, x1, y1, x2, y2, source "
        "FROM version_items WHERE version_id = ? ORDER BY split, video_id, frame_idx, track_id",
        [version_id],
    ).df()
