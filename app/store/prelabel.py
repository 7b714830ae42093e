"""SQL for using a detector: pre-label rows (tracks + predicted boxes), model metrics and exports."""
from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from app.store.stats import fill_bins

# A predicted box is dropped when an existing box of the same class on the same frame overlaps it
# at IoU above this: the manual box wins, and a re-run does not duplicate its own predictions.
DUPLICATE_IOU = 0.5

_IOU = """
    greatest(0.0, least(p.x2, b.x2) - greatest(p.x1, b.x1)) * greatest(0.0, least(p.y2, b.y2) - greatest(p.y1, b.y1))
    / nullif((p.x2 - p.x1) * (p.y2 - p.y1) + (b.x2 - b.x1) * (b.y2 - b.y1)
      - greatest(0.0, least(p.x2, b.x2) - greatest(p.x1, b.x1)) * greatest(0.0, least(p.y2, b.y2) - greatest(p.y1, b.y1)),
      0.0)
"""


def video_row(cur: duckdb.DuckDBPyConnection, video_id: int) -> dict[str, Any] | None:
    row = cur.execute(
        "SELECT id, project_id, name, kind, status, width, height, frame_count FROM videos WHERE id = ?",
        [video_id]).fetchone()
    if row is None:
        return None
    keys = ("id", "project_id", "name", "kind", "status", "width", "height", "frame_count")
    return dict(zip(keys, row, strict=True))


def drop_overlapping(cur: duckdb.DuckDBPyConnection, video_id: int, pred: pd.DataFrame,
                     threshold: float = DUPLICATE_IOU) -> pd.DataFrame:
    """The rows of `pred` (frame_idx, class_id, x1..y2, ...) that overlap no stored box of the
    same class on the same frame at IoU > threshold."""
    if pred.empty:
        return pred
    frame = pred.reset_index(drop=True).assign(_row=lambda d: range(len(d)))
    cur.register("pred_rows", frame)
    try:
        keep = cur.execute(
            f"""SELECT p._row FROM pred_rows p WHERE NOT EXISTS (
                    SELECT 1 FROM boxes b WHERE b.video_id = ? AND b.frame_idx = p.frame_idx
                    AND b.class_id = p.class_id AND ({_IOU}) > ?)""",  # noqa: S608 (constant fragment)
            [video_id, threshold]).fetchall()
    finally:
        cur.unregister("pred_rows")
    rows = sorted(r[0] for r in keep)
    return frame.iloc[rows].drop(columns="_row").reset_index(drop=True)


def new_track_ids(cur: duckdb.DuckDBPyConnection, n: int) -> list[int]:
    if n <= 0:
        return []
    return [int(r[0]) for r in cur.execute("SELECT nextval('seq_tracks') FROM range(?)", [n]).fetchall()]


def insert_tracks_and_boxes(cur: duckdb.DuckDBPyConnection, tracks: pd.DataFrame, boxes: pd.DataFrame) -> None:
    """Bulk insert. tracks: id, video_id, class_id, created_by. boxes: video_id, frame_idx,
    track_id, class_id, x1, y1, x2, y2, confidence, author (source 'predicted', keyframes)."""
    cur.register("new_tracks", tracks)
    cur.register("new_boxes", boxes)
    try:
        cur.execute("INSERT INTO tracks (id, video_id, class_id, created_by) "
                    "SELECT id, video_id, class_id, created_by FROM new_tracks")
        cur.execute(
            "INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, confidence, "
            "keyframe, author) SELECT video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, 'predicted', "
            "confidence, true, author FROM new_boxes")
        if not boxes.empty:
            fill_bins(cur, video_ids=sorted({int(v) for v in boxes["video_id"].unique()}))
    finally:
        cur.unregister("new_tracks")
        cur.unregister("new_boxes")


def model_json(cur: duckdb.DuckDBPyConnection, model_id: int, column: str) -> dict[str, Any] | None:
    """models.metrics or models.params as a dict (None when the model does not exist)."""
    if column not in ("metrics", "params"):
        raise ValueError(column)
    row = cur.execute(f"SELECT {column} FROM models WHERE id = ?", [model_id]).fetchone()  # noqa: S608
    if row is None:
        return None
    value = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return value if isinstance(value, dict) else {}


def append_model_json(cur: duckdb.DuckDBPyConnection, model_id: int, column: str, key: str,
                      item: dict[str, Any]) -> bool:
    """Append `item` to the list models.<column>[key] (read-modify-write in one transaction)."""
    cur.execute("BEGIN")
    try:
        current = model_json(cur, model_id, column)
        if current is None:
            cur.execute("ROLLBACK")
            return False
        items = current.get(key) if isinstance(current.get(key), list) else []
        current[key] = [*items, item]
        cur.execute(f"UPDATE models SET {column} = ? WHERE id = ?",  # noqa: S608 (checked name)
                    [json.dumps(current, default=str), model_id])
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise
    return True


def predicted_counts(cur: duckdb.DuckDBPyConnection, video_id: int) -> dict[str, int]:
    row = cur.execute(
        "SELECT count(*), count(DISTINCT track_id) FROM boxes WHERE video_id = ? AND source = 'predicted'",
        [video_id]).fetchone()
    return {"boxes": int(row[0]), "tracks": int(row[1])}
