"""SQL for boxes, tracks, per-frame review flags and the edit log.

Every function takes a cursor; the caller (app/labels.py) decides the transaction. Rows travel
as plain dicts (``BOX_COLS`` keys) so the undo log can store and restore them verbatim.
Bulk inserts store the stats bins of their videos' boxes (app/store/stats.py fill_bins, which also
sweeps up boxes drawn or moved one at a time since: planning the binning statement costs a
single-box write more than the stats gain from it, so those stay stale until then and the stats
bin them inline). Writes that bump rev without moving a box carry the bins over to the new rev.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import pandas as pd

from app.domain import Box
from app.store.stats import fill_bins

Cur = duckdb.DuckDBPyConnection

BOX_COLS: tuple[str, ...] = (
    "id", "video_id", "frame_idx", "track_id", "class_id", "x1", "y1", "x2", "y2", "source",
    "confidence", "outside", "keyframe", "author", "rev",
)
TRACK_COLS: tuple[str, ...] = ("id", "video_id", "class_id", "reviewed", "created_by")

# A rev bump that does not move a box: its stored stats bins stay valid for the new rev.
_BUMP_REV = "bins_rev = CASE WHEN bins_rev = rev THEN rev + 1 END, rev = rev + 1"

# Sources a tracker may replace; everything else is a human (or imported) decision.
DERIVED = ("tracked", "interpolated")

_BOX_SELECT = (
    "SELECT b.id, b.video_id, b.frame_idx, b.track_id, b.class_id, b.x1, b.y1, b.x2, b.y2, b.source, "
    "b.confidence, b.outside, b.keyframe, b.author, b.rev, c.name "
    "FROM boxes b LEFT JOIN label_classes c ON c.id = b.class_id "
)


def _row(r: Sequence[Any]) -> dict[str, Any]:
    d = dict(zip(BOX_COLS, r[: len(BOX_COLS)], strict=True))
    if len(r) > len(BOX_COLS):
        d["label"] = r[len(BOX_COLS)]
    return d


def to_box(d: dict[str, Any]) -> Box:
    """A stored row (dict) as the shared Box."""
    return Box(
        float(d["x1"]), float(d["y1"]), float(d["x2"]), float(d["y2"]),
        frame=int(d["frame_idx"]), label=d.get("label") or "", track_id=d["track_id"],
        source=d["source"], confidence=d["confidence"], id=d["id"], class_id=d["class_id"],
        outside=bool(d["outside"]), keyframe=bool(d["keyframe"]),
    )


# ---- videos -------------------------------------------------------------------------------

def video_row(cur: Cur, video_id: int) -> dict[str, Any] | None:
    r = cur.execute(
        "SELECT id, project_id, name, status, width, height, frame_count FROM videos WHERE id = ?", [video_id]
    ).fetchone()
    if r is None:
        return None
    return dict(zip(("id", "project_id", "name", "status", "width", "height", "frame_count"), r, strict=True))


def ready_videos(cur: Cur, project_id: int) -> list[dict[str, Any]]:
    rows = cur.execute(
        "SELECT v.id, v.name, v.width, v.height, (SELECT count(*) FROM frames f WHERE f.video_id = v.id) "
        "FROM videos v WHERE v.project_id = ? AND v.status = 'ready' ORDER BY v.created_at, v.id",
        [project_id],
    ).fetchall()
    return [dict(zip(("id", "name", "width", "height", "frame_count"), r, strict=True)) for r in rows]


def frame_count(cur: Cur, video_id: int) -> int:
    r = cur.execute("SELECT count(*) FROM frames WHERE video_id = ?", [video_id]).fetchone()
    return int(r[0])


# ---- boxes: reads -------------------------------------------------------------------------

def box_by_id(cur: Cur, box_id: int) -> dict[str, Any] | None:
    r = cur.execute(_BOX_SELECT + "WHERE b.id = ?", [box_id]).fetchone()
    return _row(r) if r else None


def boxes_by_ids(cur: Cur, ids: Iterable[int]) -> list[dict[str, Any]]:
    ids = [int(i) for i in ids]
    if not ids:
        return []
    rows = cur.execute(_BOX_SELECT + "WHERE list_contains(?, b.id) ORDER BY b.id", [ids]).fetchall()
    return [_row(r) for r in rows]


def frame_rows(cur: Cur, video_id: int, idx: int) -> list[dict[str, Any]]:
    rows = cur.execute(
        _BOX_SELECT + "WHERE b.video_id = ? AND b.frame_idx = ? AND NOT b.outside ORDER BY b.track_id",
        [video_id, idx],
    ).fetchall()
    return [_row(r) for r in rows]


def track_rows(cur: Cur, track_id: int, *, after: int | None = None, upto: int | None = None,
               sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """A track's boxes ordered by frame, optionally frame in (after, upto] and source-filtered."""
    sql = _BOX_SELECT + "WHERE b.track_id = ?"
    args: list[Any] = [track_id]
    if after is not None:
        sql += " AND b.frame_idx > ?"
        args.append(after)
    if upto is not None:
        sql += " AND b.frame_idx <= ?"
        args.append(upto)
    if sources is not None:
        sql += " AND list_contains(?, b.source)"
        args.append(list(sources))
    rows = cur.execute(sql + " ORDER BY b.frame_idx", args).fetchall()
    return [_row(r) for r in rows]


def next_protected_frame(cur: Cur, track_id: int, after: int) -> int | None:
    """First frame after `after` where the track has a box a tracker must not replace."""
    r = cur.execute(
        "SELECT min(frame_idx) FROM boxes WHERE track_id = ? AND frame_idx > ? AND NOT list_contains(?, source)",
        [track_id, after, list(DERIVED)],
    ).fetchone()
    return None if r[0] is None else int(r[0])


def timeline(cur: Cur, video_id: int) -> list[tuple[int, str]]:
    """(frame, strongest source) for frames that have visible boxes."""
    rows = cur.execute(
        """
        SELECT frame_idx, min(CASE source WHEN 'manual' THEN 0 WHEN 'imported' THEN 1 WHEN 'tracked' THEN 2
                                   WHEN 'interpolated' THEN 3 WHEN 'predicted' THEN 4 ELSE 5 END)
        FROM boxes WHERE video_id = ? AND NOT outside GROUP BY frame_idx
        """,
        [video_id],
    ).fetchall()
    names = ("manual", "imported", "tracked", "interpolated", "predicted", "none")
    return [(int(f), names[int(s)]) for f, s in rows]


def reviewed_frames(cur: Cur, video_id: int) -> set[int]:
    rows = cur.execute("SELECT idx FROM frames WHERE video_id = ? AND reviewed", [video_id]).fetchall()
    return {int(r[0]) for r in rows}


def keyframe_after(cur: Cur, video_id: int, idx: int, track_id: int | None, forward: bool) -> int | None:
    op, agg = (">", "min") if forward else ("<", "max")
    sql = f"SELECT {agg}(frame_idx) FROM boxes WHERE video_id = ? AND frame_idx {op} ? AND keyframe AND NOT outside"  # noqa: S608
    args: list[Any] = [video_id, idx]
    if track_id is not None:
        sql += " AND track_id = ?"
        args.append(track_id)
    r = cur.execute(sql, args).fetchone()
    return None if r[0] is None else int(r[0])


def unlabeled_after(cur: Cur, video_id: int, idx: int) -> int | None:
    r = cur.execute(
        """
        SELECT min(f.idx) FROM frames f WHERE f.video_id = ? AND f.idx > ?
          AND NOT EXISTS (SELECT 1 FROM boxes b WHERE b.video_id = f.video_id AND b.frame_idx = f.idx AND NOT b.outside)
        """,
        [video_id, idx],
    ).fetchone()
    return None if r[0] is None else int(r[0])


def unreviewed_after(cur: Cur, video_id: int, idx: int, forward: bool) -> int | None:
    op, agg = (">", "min") if forward else ("<", "max")
    r = cur.execute(
        f"SELECT {agg}(idx) FROM frames WHERE video_id = ? AND idx {op} ? AND NOT reviewed", [video_id, idx]  # noqa: S608
    ).fetchone()
    return None if r[0] is None else int(r[0])


def track_start_after(cur: Cur, video_id: int, idx: int) -> int | None:
    r = cur.execute(
        """
        SELECT min(s) FROM (SELECT min(frame_idx) AS s FROM boxes WHERE video_id = ? AND NOT outside GROUP BY track_id)
        WHERE s > ?
        """,
        [video_id, idx],
    ).fetchone()
    return None if r[0] is None else int(r[0])


def predicted_ids(cur: Cur, video_id: int, threshold: float) -> list[int]:
    rows = cur.execute(
        "SELECT id FROM boxes WHERE video_id = ? AND source = 'predicted' AND coalesce(confidence, 0) >= ? ORDER BY id",
        [video_id, threshold],
    ).fetchall()
    return [int(r[0]) for r in rows]


# ---- boxes: writes ------------------------------------------------------------------------

def insert_box(cur: Cur, row: dict[str, Any]) -> int:
    """Insert one box; `row` may carry an id (undo restores rows with their old ids)."""
    cols = [c for c in BOX_COLS if c in row and (c != "id" or row[c] is not None)]
    sql = f"INSERT INTO boxes ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) RETURNING id"  # noqa: S608
    return int(cur.execute(sql, [row[c] for c in cols]).fetchone()[0])


def insert_boxes_df(cur: Cur, rows: list[dict[str, Any]]) -> list[int]:
    """Bulk insert through a registered DataFrame (one statement, no executemany)."""
    if not rows:
        return []
    cols = [c for c in BOX_COLS if c != "id" and c in rows[0]]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    cur.register("_tpod_new_boxes", df)
    try:
        got = cur.execute(
            f"INSERT INTO boxes ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _tpod_new_boxes RETURNING id"  # noqa: S608
        ).fetchall()
    finally:
        cur.unregister("_tpod_new_boxes")
    ids = [int(r[0]) for r in got]
    fill_bins(cur, video_ids=sorted({int(r["video_id"]) for r in rows}))
    return ids


def update_box_geometry(cur: Cur, box_id: int, xyxy: Sequence[float], expected_rev: int | None,
                        author: str | None) -> int | None:
    """Move a box and make it a manual keyframe. Returns the new rev, None when rev didn't match."""
    sql = (
        "UPDATE boxes SET x1 = ?, y1 = ?, x2 = ?, y2 = ?, source = 'manual', keyframe = true, confidence = NULL, "
        "author = ?, updated_at = current_timestamp, rev = rev + 1 WHERE id = ?"
    )
    args: list[Any] = [*map(float, xyxy), author, box_id]
    if expected_rev is not None:
        sql += " AND rev = ?"
        args.append(expected_rev)
    r = cur.execute(sql + " RETURNING rev", args).fetchone()
    return None if r is None else int(r[0])


def set_source(cur: Cur, ids: Sequence[int], source: str, keyframe: bool, author: str | None) -> None:
    cur.execute(
        f"UPDATE boxes SET source = ?, keyframe = ?, author = ?, updated_at = current_timestamp, {_BUMP_REV} "
        "WHERE list_contains(?, id)",
        [source, keyframe, author, [int(i) for i in ids]],
    )


def delete_boxes(cur: Cur, ids: Iterable[int]) -> None:
    ids = [int(i) for i in ids]
    if ids:
        cur.execute("DELETE FROM boxes WHERE list_contains(?, id)", [ids])


def set_track_of_boxes(cur: Cur, ids: Sequence[int], track_id: int, class_id: int) -> None:
    cur.execute(
        f"UPDATE boxes SET track_id = ?, class_id = ?, {_BUMP_REV}, updated_at = current_timestamp "
        "WHERE list_contains(?, id)",
        [track_id, class_id, [int(i) for i in ids]],
    )


def current_revs(cur: Cur, ids: Iterable[int]) -> dict[int, int]:
    ids = [int(i) for i in ids]
    if not ids:
        return {}
    rows = cur.execute("SELECT id, rev FROM boxes WHERE list_contains(?, id)", [ids]).fetchall()
    return {int(i): int(r) for i, r in rows}


# ---- tracks -------------------------------------------------------------------------------

def track_row(cur: Cur, track_id: int) -> dict[str, Any] | None:
    r = cur.execute("SELECT id, video_id, class_id, reviewed, created_by FROM tracks WHERE id = ?", [track_id]).fetchone()
    return dict(zip(TRACK_COLS, r, strict=True)) if r else None


def track_rows_by_ids(cur: Cur, ids: Iterable[int]) -> list[dict[str, Any]]:
    ids = [int(i) for i in ids]
    if not ids:
        return []
    rows = cur.execute(
        "SELECT id, video_id, class_id, reviewed, created_by FROM tracks WHERE list_contains(?, id) ORDER BY id", [ids]
    ).fetchall()
    return [dict(zip(TRACK_COLS, r, strict=True)) for r in rows]


def tracks_of_video(cur: Cur, video_id: int) -> list[dict[str, Any]]:
    rows = cur.execute(
        """
        SELECT t.id, t.class_id, c.name, t.reviewed, min(b.frame_idx), max(b.frame_idx), count(b.id),
               count(b.id) FILTER (WHERE b.source = 'manual')
        FROM tracks t LEFT JOIN label_classes c ON c.id = t.class_id
        LEFT JOIN boxes b ON b.track_id = t.id AND NOT b.outside
        WHERE t.video_id = ? GROUP BY ALL ORDER BY t.id
        """,
        [video_id],
    ).fetchall()
    keys = ("id", "class_id", "label", "reviewed", "first", "last", "boxes", "manual")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def insert_track(cur: Cur, row: dict[str, Any]) -> int:
    cols = [c for c in TRACK_COLS if c in row and (c != "id" or row[c] is not None)]
    sql = f"INSERT INTO tracks ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) RETURNING id"  # noqa: S608
    return int(cur.execute(sql, [row[c] for c in cols]).fetchone()[0])


def delete_tracks(cur: Cur, ids: Iterable[int]) -> None:
    ids = [int(i) for i in ids]
    if ids:
        cur.execute("DELETE FROM tracks WHERE list_contains(?, id)", [ids])


def set_track_class(cur: Cur, track_id: int, class_id: int) -> None:
    cur.execute("UPDATE tracks SET class_id = ? WHERE id = ?", [class_id, track_id])
    cur.execute(f"UPDATE boxes SET class_id = ?, {_BUMP_REV} WHERE track_id = ?", [class_id, track_id])


def set_track_reviewed(cur: Cur, track_id: int, reviewed: bool) -> None:
    cur.execute("UPDATE tracks SET reviewed = ? WHERE id = ?", [reviewed, track_id])


def class_in_project(cur: Cur, class_id: int, project_id: int) -> bool:
    r = cur.execute("SELECT 1 FROM label_classes WHERE id = ? AND project_id = ?", [class_id, project_id]).fetchone()
    return r is not None


# ---- frames -------------------------------------------------------------------------------

def frames_reviewed(cur: Cur, video_id: int, idxs: Sequence[int]) -> dict[int, bool]:
    rows = cur.execute(
        "SELECT idx, reviewed FROM frames WHERE video_id = ? AND list_contains(?, idx)", [video_id, [int(i) for i in idxs]]
    ).fetchall()
    return {int(i): bool(r) for i, r in rows}


def set_frames_reviewed(cur: Cur, video_id: int, idxs: Sequence[int], reviewed: bool) -> None:
    cur.execute(
        "UPDATE frames SET reviewed = ? WHERE video_id = ? AND list_contains(?, idx)",
        [reviewed, video_id, [int(i) for i in idxs]],
    )


# ---- edit log -----------------------------------------------------------------------------

def insert_edit(cur: Cur, project_id: int | None, video_id: int, author: str | None, action: str,
                payload: dict[str, Any]) -> int:
    r = cur.execute(
        "INSERT INTO edits (project_id, video_id, author, action, payload) VALUES (?, ?, ?, ?, ?) RETURNING id",
        [project_id, video_id, author, action, json.dumps(payload, default=str)],
    ).fetchone()
    return int(r[0])


def last_edit(cur: Cur, video_id: int, author: str | None) -> tuple[int, str, dict[str, Any]] | None:
    r = cur.execute(
        "SELECT id, action, payload FROM edits WHERE video_id = ? AND author IS NOT DISTINCT FROM ? AND NOT undone "
        "ORDER BY id DESC LIMIT 1",
        [video_id, author],
    ).fetchone()
    if r is None:
        return None
    return int(r[0]), str(r[1]), json.loads(r[2]) if r[2] else {}


def mark_undone(cur: Cur, edit_id: int) -> None:
    cur.execute("UPDATE edits SET undone = true WHERE id = ?", [edit_id])
