"""SQL for dataset health statistics: every figure is an aggregate computed inside DuckDB.

The box-level figures come from ONE pass over the filtered boxes (GROUPING SETS of plain counts
keyed by small bins); the frame-level figures, gaps included, from one pass over the per-frame box
counts of the selected videos. Python
only reshapes the small grouped results (see app/stats.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import duckdb

# Histogram resolution for relative box width/height and for the centre heat map.
SIZE_BINS = 20
HEAT_BINS = 20
# Aspect ratio w/h binned on a log2 scale in half steps, clamped to [1/16, 16].
ASPECT_STEP = 0.5
ASPECT_MAX = 4.0
# Relative area edges (box area / image area), a COCO-like small..large ladder in relative terms.
AREA_EDGES = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5)
# Boxes per frame: 0..BPF_CAP-1 each, BPF_CAP means "BPF_CAP or more".
BPF_CAP = 10
# A box whose shorter side is under TINY_PX original pixels is hard to learn and to see.
TINY_PX = 4.0
EDGE_TOL_PX = 0.5


def _in(column: str, values: Sequence[int] | None) -> tuple[str, list[int]]:
    if values is None:
        return "", []
    vals = [int(v) for v in values]
    if not vals:
        return " AND false", []
    return f" AND {column} IN ({', '.join('?' for _ in vals)})", vals


def _selected_videos(project_id: int, video_ids: Sequence[int] | None) -> tuple[str, list]:
    where, args = _in("id", video_ids)
    sql = f"SELECT id, name, width, height, kind FROM videos WHERE project_id = ?{where}"
    return sql, [project_id, *args]


def _dims(width: str, height: str) -> str:
    """Per-image constants the box figures compare against, computed once per video (or image)
    instead of once per box; written exactly as the per-box formulas would round them."""
    iw, ih = f"{width}::DOUBLE", f"{height}::DOUBLE"
    edges = ", ".join(f"{edge} * {iw} * {ih} AS t{i}" for i, edge in enumerate(AREA_EDGES))
    return (f"{iw} AS iw, {ih} AS ih, {edges}, "
            f"{iw} - {EDGE_TOL_PX} AS xe, {ih} - {EDGE_TOL_PX} AS ye, "
            f"{iw} + {EDGE_TOL_PX} AS xo, {ih} + {EDGE_TOL_PX} AS yo")


_DIM_COLS = "iw, ih, " + ", ".join(f"t{i}" for i in range(len(AREA_EDGES))) + ", xe, ye, xo, yo"


def box_aggregates(cur: duckdb.DuckDBPyConnection, project_id: int,
                   video_ids: Sequence[int] | None, class_ids: Sequence[int] | None) -> list[tuple]:
    """One grouped pass over the visible boxes of the selection.

    Rows: (set, class_id, source, author, hour, wb, hb, gx, gy, ab, rb, tiny, degenerate, touching,
    outside_image, n) with set one of
      'main'   grouped by (class_id, source, author, hour);
      'size'   by (wb, hb);  'heat' by (gx, gy);
      'shape'  by (ab, rb, tiny, degenerate, touching, outside_image);
    columns outside a row's grouping are NULL. hour = whole hours since the epoch.
    The bins come back unclamped (floor values as DOUBLE; rb is NaN or infinite for degenerate
    boxes): clamping the few groups in Python is cheaper than clamping a million rows here.
    Per-row arithmetic dominates the cost, so the per-image constants come from the video row,
    the flags are plain comparisons (no least()/greatest(), which are slow per row), and every
    aggregate is a count(*) keyed by small values.
    """
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _in("b.class_id", class_ids)
    # The image-set branch scans boxes a second time: leave it out when there are no image sets.
    image_sets = cur.execute(f"SELECT count(*) FROM ({vsql}) WHERE width IS NULL", vargs).fetchone()[0]
    area_case = " ".join(f"WHEN wh < t{i} THEN {i}" for i in range(len(AREA_EDGES)))
    cols = "b.class_id, b.source, coalesce(b.author, '') AS author, b.created_at, b.x1, b.y1, b.x2, b.y2"
    image_set_branch = f"""
        UNION ALL
        -- image sets keep one size per image in frames
        SELECT {cols}, {_dims("f.width", "f.height")}
        FROM boxes b JOIN v ON v.id = b.video_id AND v.width IS NULL
        JOIN frames f ON f.video_id = b.video_id AND f.idx = b.frame_idx
        WHERE NOT b.outside{cwhere}""" if image_sets else ""
    sql = f"""
    WITH v AS (SELECT id, width, {_dims("width", "height")} FROM ({vsql})),
    b AS (
        SELECT {cols}, {_DIM_COLS}
        FROM boxes b JOIN v ON v.id = b.video_id
        WHERE v.width IS NOT NULL AND NOT b.outside{cwhere}
        {image_set_branch}
    ),
    m AS (SELECT *, x2 - x1 AS w, y2 - y1 AS h FROM b),
    k AS (
        SELECT class_id, source, author,
               epoch_us(created_at) // 3600000000 AS hour,
               floor(w * {SIZE_BINS} / iw) AS wb,
               floor(h * {SIZE_BINS} / ih) AS hb,
               floor((x1 + x2) * {HEAT_BINS / 2} / iw) AS gx,
               floor((y1 + y2) * {HEAT_BINS / 2} / ih) AS gy,
               CASE {area_case} ELSE {len(AREA_EDGES)} END AS ab,
               round(log2(w / h) / {ASPECT_STEP}) AS rb,
               w < {TINY_PX} OR h < {TINY_PX} AS tiny,
               w <= 0 OR h <= 0 AS degenerate,
               x1 <= {EDGE_TOL_PX} OR y1 <= {EDGE_TOL_PX} OR x2 >= xe OR y2 >= ye AS touching,
               x1 < -{EDGE_TOL_PX} OR y1 < -{EDGE_TOL_PX} OR x2 > xo OR y2 > yo AS outside_image
        FROM (SELECT *, w * h AS wh FROM m)
    )
    SELECT CASE GROUPING(class_id, source, author, hour, wb, hb, gx, gy,
                         ab, rb, tiny, degenerate, touching, outside_image)
             WHEN {_gmask(0, 1, 2, 3)} THEN 'main' WHEN {_gmask(4, 5)} THEN 'size'
             WHEN {_gmask(6, 7)} THEN 'heat' ELSE 'shape' END AS gset,
           class_id, source, author, hour, wb, hb, gx, gy, ab, rb, tiny, degenerate, touching, outside_image,
           count(*) AS n
    FROM k
    GROUP BY GROUPING SETS ((class_id, source, author, hour), (wb, hb), (gx, gy),
                            (ab, rb, tiny, degenerate, touching, outside_image))
    """
    return cur.execute(sql, [*vargs, *cargs, *(cargs if image_sets else [])]).fetchall()


_GCOLS = 14


def _gmask(*present: int) -> int:
    """GROUPING() bitmask with the given column positions grouped (bit 0 = last column)."""
    mask = (1 << _GCOLS) - 1
    for pos in present:
        mask &= ~(1 << (_GCOLS - 1 - pos))
    return mask


def frame_aggregates(cur: duckdb.DuckDBPyConnection, project_id: int, video_ids: Sequence[int] | None,
                     class_ids: Sequence[int] | None, min_gap: int) -> list[tuple]:
    """The frame-level figures in one pass over the per-frame box counts.

    Rows (set, key, frames, labeled, empty, unlabeled, reviewed, boxes, first, last) with set
      'video' (key = video_id), 'bpf' (key = boxes in the frame, capped at BPF_CAP), 'total';
      'gap' (key = video_id, frames = run length, first/last frame index): a run of >= min_gap
      consecutive unlabeled, unreviewed frames in a video that has labels, longest first.
    'empty' = reviewed without boxes, 'unlabeled' = neither. Counting boxes per frame is the
    costly step, so it is done once and shared (materialised) by both figures.
    """
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _in("b.class_id", class_ids)
    sql = f"""
    WITH v AS ({vsql}),
    per AS (
        SELECT b.video_id, b.frame_idx, count(*) AS n
        FROM boxes b SEMI JOIN v ON v.id = b.video_id
        WHERE NOT b.outside{cwhere}
        GROUP BY ALL
    ),
    ff AS MATERIALIZED (
        SELECT f.video_id, f.idx, f.reviewed, coalesce(p.n, 0) AS n
        FROM frames f SEMI JOIN v ON v.id = f.video_id
        LEFT JOIN per p ON p.video_id = f.video_id AND p.frame_idx = f.idx
    ),
    agg AS (
        SELECT CASE GROUPING(video_id, nb) WHEN 1 THEN 'video' WHEN 2 THEN 'bpf' ELSE 'total' END AS gset,
               coalesce(video_id, nb) AS key,
               count(*) AS frames,
               count(*) FILTER (WHERE n > 0) AS labeled,
               count(*) FILTER (WHERE n = 0 AND reviewed) AS empty,
               count(*) FILTER (WHERE n = 0 AND NOT reviewed) AS unlabeled,
               count(*) FILTER (WHERE reviewed) AS reviewed,
               coalesce(sum(n), 0) AS boxes
        FROM (SELECT *, least(n, {BPF_CAP}) AS nb FROM ff)
        GROUP BY GROUPING SETS ((video_id), (nb), ())
    ),
    holes AS (
        SELECT video_id, idx, idx - row_number() OVER (PARTITION BY video_id ORDER BY idx) AS grp
        FROM ff
        WHERE n = 0 AND NOT reviewed
          AND video_id IN (SELECT key FROM agg WHERE gset = 'video' AND labeled > 0)
    ),
    gaps AS (
        SELECT video_id, min(idx) AS first, max(idx) AS last, count(*) AS len
        FROM holes GROUP BY video_id, grp HAVING count(*) >= ?
    )
    SELECT gset, key, frames, labeled, empty, unlabeled, reviewed, boxes, NULL AS first, NULL AS last
    FROM agg
    UNION ALL
    SELECT * FROM (
        SELECT 'gap', video_id, len, NULL, NULL, NULL, NULL, NULL, first, last
        FROM gaps ORDER BY len DESC, video_id, first
    )
    """
    return cur.execute(sql, [*vargs, *cargs, min_gap]).fetchall()


def author_edits(cur: duckdb.DuckDBPyConnection, project_id: int,
                 video_ids: Sequence[int] | None) -> list[tuple]:
    """Rows (author, edits, hour, first, last) per (author, active hour) from the edit log;
    hour = whole hours since the epoch, as in box_aggregates."""
    where, args = _in("video_id", video_ids)
    sql = f"""
    SELECT coalesce(author, '') AS author, count(*) AS edits, epoch_us(edited_at) // 3600000000 AS hour,
           min(edited_at), max(edited_at)
    FROM edits WHERE project_id = ? AND NOT undone{where}
    GROUP BY ALL
    """
    return cur.execute(sql, [project_id, *args]).fetchall()


def videos_of(cur: duckdb.DuckDBPyConnection, project_id: int,
              video_ids: Sequence[int] | None) -> list[tuple]:
    vsql, vargs = _selected_videos(project_id, video_ids)
    return cur.execute(vsql + " ORDER BY id", vargs).fetchall()


def revision(cur: duckdb.DuckDBPyConnection, project_id: int) -> tuple:
    """Figures that change whenever anything the stats read changes (for caches)."""
    row = cur.execute(
        """
        WITH v AS (SELECT id FROM videos WHERE project_id = ?),
        bx AS (SELECT count(*) AS n, max(updated_at) AS last FROM boxes b SEMI JOIN v ON v.id = b.video_id),
        fr AS (SELECT count(*) FILTER (WHERE reviewed) AS reviewed, count(*) AS n
               FROM frames f SEMI JOIN v ON v.id = f.video_id)
        SELECT (SELECT count(*) FROM v), bx.n, bx.last, fr.reviewed, fr.n,
               (SELECT max(id) FROM edits WHERE project_id = ?),
               (SELECT count(*) FROM label_classes WHERE project_id = ?)
        FROM bx, fr
        """,
        [project_id, project_id, project_id],
    ).fetchone()
    return tuple(row)
