"""SQL for dataset versions: the selection a version is cut from, and the frozen rows."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from app.store.stats import _in

VERSION_COLS = "id, project_id, name, params, stats, classes, path, created_at, created_by"


def _version(row: tuple | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = [c.strip() for c in VERSION_COLS.split(",")]
    out = dict(zip(keys, row, strict=False))
    for key in ("params", "stats", "classes"):
        if isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out


def version_by_id(cur: duckdb.DuckDBPyConnection, version_id: int) -> dict[str, Any] | None:
    return _version(cur.execute(f"SELECT {VERSION_COLS} FROM dataset_versions WHERE id = ?",
                                [version_id]).fetchone())


def version_by_name(cur: duckdb.DuckDBPyConnection, project_id: int, name: str) -> dict[str, Any] | None:
    return _version(cur.execute(f"SELECT {VERSION_COLS} FROM dataset_versions WHERE project_id = ? AND name = ?",
                                [project_id, name]).fetchone())


def versions_of(cur: duckdb.DuckDBPyConnection, project_id: int) -> list[dict[str, Any]]:
    rows = cur.execute(f"SELECT {VERSION_COLS} FROM dataset_versions WHERE project_id = ? "
                       "ORDER BY created_at DESC, id DESC", [project_id]).fetchall()
    return [_version(r) for r in rows]  # type: ignore[misc]


def selection_frames(cur: duckdb.DuckDBPyConnection, project_id: int, video_ids: Sequence[int] | None,
                     class_ids: Sequence[int] | None, every_nth: int) -> pd.DataFrame:
    """Frames of the project's ready videos (every n-th tpod frame index), with their ORIGINAL
    size and how many visible boxes they hold: of the selected classes (n_sel) and of any (n_any)."""
    vwhere, vargs = _in("id", video_ids)
    cwhere, cargs = _in("class_id", class_ids)
    sql = f"""
    WITH v AS (SELECT id, width, height FROM videos WHERE project_id = ? AND status = 'ready'{vwhere}),
    per AS (
        SELECT video_id, frame_idx, count(*) AS n_any,
               count(*) FILTER (WHERE true{cwhere}) AS n_sel
        FROM boxes SEMI JOIN v ON v.id = boxes.video_id
        WHERE NOT outside GROUP BY ALL
    )
    SELECT f.video_id, f.idx, coalesce(f.width, v.width) AS width, coalesce(f.height, v.height) AS height,
           f.reviewed, coalesce(p.n_sel, 0) AS n_sel, coalesce(p.n_any, 0) AS n_any
    FROM frames f JOIN v ON v.id = f.video_id
    LEFT JOIN per p ON p.video_id = f.video_id AND p.frame_idx = f.idx
    WHERE f.idx % ? = 0
    ORDER BY f.video_id, f.idx
    """
    return cur.execute(sql, [project_id, *vargs, *cargs, every_nth]).df()


def selection_boxes(cur: duckdb.DuckDBPyConnection, project_id: int, video_ids: Sequence[int] | None,
                    class_ids: Sequence[int] | None, every_nth: int) -> pd.DataFrame:
    """Visible boxes of the selected classes on the frames selection_frames() returns."""
    vwhere, vargs = _in("id", video_ids)
    cwhere, cargs = _in("b.class_id", class_ids)
    sql = f"""
    WITH v AS (SELECT id FROM videos WHERE project_id = ? AND status = 'ready'{vwhere})
    SELECT b.video_id, b.frame_idx, b.class_id, b.track_id, b.x1, b.y1, b.x2, b.y2, b.source
    FROM boxes b SEMI JOIN v ON v.id = b.video_id
    WHERE NOT b.outside AND b.frame_idx % ? = 0{cwhere}
    ORDER BY b.video_id, b.frame_idx, b.id
    """
    return cur.execute(sql, [project_id, *vargs, every_nth, *cargs]).df()


def video_names(cur: duckdb.DuckDBPyConnection, project_id: int) -> dict[int, str]:
    return dict(cur.execute("SELECT id, name FROM videos WHERE project_id = ?", [project_id]).fetchall())


def next_version_id(cur: duckdb.DuckDBPyConnection) -> int:
    return int(cur.execute("SELECT nextval('seq_versions')").fetchone()[0])


def insert_version(cur: duckdb.DuckDBPyConnection, version_id: int, project_id: int, name: str,
                   params: dict, stats: dict, classes: list, path: str, author: str | None) -> None:
    cur.execute(
        "INSERT INTO dataset_versions (id, project_id, name, params, stats, classes, path, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [version_id, project_id, name, json.dumps(params), json.dumps(stats), json.dumps(classes), path, author],
    )


def insert_items(cur: duckdb.DuckDBPyConnection, items: pd.DataFrame) -> None:
    """Bulk insert frozen rows; `items` has the version_items columns (box columns may be NaN)."""
    cur.register("tpod_items_df", items)
    try:
        cur.execute(
            """
            INSERT INTO version_items (version_id, split, video_id, frame_idx, image, width, height,
                                       class_index, track_id, x1, y1, x2, y2, source)
            SELECT version_id, split, video_id, frame_idx, image, width, height,
                   class_index::INTEGER, track_id::INTEGER, x1, y1, x2, y2, source
            FROM tpod_items_df
            """
        )
    finally:
        cur.unregister("tpod_items_df")


def delete_version_rows(cur: duckdb.DuckDBPyConnection, version_id: int) -> None:
    cur.execute("DELETE FROM version_items WHERE version_id = ?", [version_id])
    cur.execute("DELETE FROM dataset_versions WHERE id = ?", [version_id])


def items_of(cur: duckdb.DuckDBPyConnection, version_id: int) -> pd.DataFrame:
    return cur.execute(
        "SELECT * FROM version_items WHERE version_id = ? ORDER BY split, video_id, frame_idx, class_index, x1",
        [version_id],
    ).df()


def active_runs_using(cur: duckdb.DuckDBPyConnection, version_id: int) -> int:
    return int(cur.execute(
        "SELECT count(*) FROM training_runs WHERE version_id = ? AND state IN ('queued', 'running')",
        [version_id],
    ).fetchone()[0])
