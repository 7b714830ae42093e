"""SQL for dataset health statistics: every figure is an aggregate computed inside DuckDB.

The box-level figures come from ONE pass over the filtered boxes (GROUPING SETS with FILTER
counts); the frame-level figures from one pass over the frames of the selected videos. Python
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


def box_aggregates(cur: duckdb.DuckDBPyConnection, project_id: int,
                   video_ids: Sequence[int] | None, class_ids: Sequence[int] | None) -> list[tuple]:
    """One grouped pass over the visible boxes of the selection.

    Rows: (set, class_id, source, author, area_bin, aspect_bin, w_bin, h_bin, gx, gy, hour,
    n, tiny, touching, outside_image, degenerate) with set one of
      'main'  grouped by (class_id, source, author, area_bin, aspect_bin), with the flag counts;
      'size'  grouped by (w_bin, h_bin);  'heat' by (gx, gy);  'hours' by (author, hour);
    columns outside a row's grouping are NULL. Marginals are sums over these few groups.
    Per-row arithmetic dominates the cost, so each figure is computed once, in one scan.
    """
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _in("b.class_id", class_ids)
    area_case = " ".join(
        f"WHEN w * h < {edge} * iw * ih THEN {i}" for i, edge in enumerate(AREA_EDGES)
    )
    cols = "b.class_id, b.source, coalesce(b.author, '') AS author, b.created_at, b.x1, b.y1, b.x2, b.y2"
    sql = f"""
    WITH v AS ({vsql}),
    b AS (
        SELECT {cols}, v.width::DOUBLE AS iw, v.height::DOUBLE AS ih
        FROM boxes b JOIN v ON v.id = b.video_id
        WHERE v.width IS NOT NULL AND NOT b.outside{cwhere}
        UNION ALL
        -- image sets keep one size per image in frames
        SELECT {cols}, f.width::DOUBLE, f.height::DOUBLE
        FROM boxes b JOIN v ON v.id = b.video_id AND v.width IS NULL
        JOIN frames f ON f.video_id = b.video_id AND f.idx = b.frame_idx
        WHERE NOT b.outside{cwhere}
    ),
    m AS (SELECT *, x2 - x1 AS w, y2 - y1 AS h FROM b),
    k AS (
        SELECT class_id, source, author,
               epoch(created_at)::BIGINT // 3600 AS hour,
               least(greatest(floor(w * {SIZE_BINS} / iw), 0), {SIZE_BINS - 1})::INTEGER AS wb,
               least(greatest(floor(h * {SIZE_BINS} / ih), 0), {SIZE_BINS - 1})::INTEGER AS hb,
               least(greatest(floor((x1 + x2) * {HEAT_BINS / 2} / iw), 0), {HEAT_BINS - 1})::INTEGER AS gx,
               least(greatest(floor((y1 + y2) * {HEAT_BINS / 2} / ih), 0), {HEAT_BINS - 1})::INTEGER AS gy,
               CASE {area_case} ELSE {len(AREA_EDGES)} END AS ab,
               CASE WHEN w > 0 AND h > 0 THEN
                   least(greatest(round(log2(w / h) / {ASPECT_STEP}),
                         {-ASPECT_MAX / ASPECT_STEP}), {ASPECT_MAX / ASPECT_STEP})::INTEGER
               END AS rb,
               least(w, h) < {TINY_PX} AS tiny,
               (x1 <= {EDGE_TOL_PX} OR y1 <= {EDGE_TOL_PX}
                OR x2 >= iw - {EDGE_TOL_PX} OR y2 >= ih - {EDGE_TOL_PX}) AS touching,
               (x1 < -{EDGE_TOL_PX} OR y1 < -{EDGE_TOL_PX}
                OR x2 > iw + {EDGE_TOL_PX} OR y2 > ih + {EDGE_TOL_PX}) AS outside_image,
               (w <= 0 OR h <= 0) AS degenerate
        FROM m
    )
    SELECT CASE GROUPING(class_id, source, author, ab, rb, wb, hb, gx, gy, hour)
             WHEN {_gmask(0, 1, 2, 3, 4)} THEN 'main' WHEN {_gmask(5, 6)} THEN 'size'
             WHEN {_gmask(7, 8)} THEN 'heat' ELSE 'hours' END AS gset,
           class_id, source, author, ab, rb, wb, hb, gx, gy, hour,
           count(*) AS n,
           count(*) FILTER (WHERE tiny) AS tiny,
           count(*) FILTER (WHERE touching) AS touching,
           count(*) FILTER (WHERE outside_image) AS outside_image,
           count(*) FILTER (WHERE degenerate) AS degenerate
    FROM k
    GROUP BY GROUPING SETS ((class_id, source, author, ab, rb), (wb, hb), (gx, gy), (author, hour))
    """
    return cur.execute(sql, [*vargs, *cargs, *cargs]).fetchall()


_GCOLS = 10


def _gmask(*present: int) -> int:
    """GROUPING() bitmask with the given column positions grouped (bit 0 = last column)."""
    mask = (1 << _GCOLS) - 1
    for pos in present:
        mask &= ~(1 << (_GCOLS - 1 - pos))
    return mask


def _frames_cte(project_id: int, video_ids: Sequence[int] | None,
                class_ids: Sequence[int] | None) -> tuple[str, list]:
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _in("b.class_id", class_ids)
    sql = f"""
    v AS ({vsql}),
    per AS (
        SELECT b.video_id, b.frame_idx, count(*) AS n
        FROM boxes b SEMI JOIN v ON v.id = b.video_id
        WHERE NOT b.outside{cwhere}
        GROUP BY ALL
    ),
    ff AS (
        SELECT f.video_id, f.idx, f.reviewed, coalesce(p.n, 0) AS n
        FROM frames f JOIN v ON v.id = f.video_id
        LEFT JOIN per p ON p.video_id = f.video_id AND p.frame_idx = f.idx
    )"""
    return sql, [*vargs, *cargs]


def frame_aggregates(cur: duckdb.DuckDBPyConnection, project_id: int,
                     video_ids: Sequence[int] | None, class_ids: Sequence[int] | None) -> list[tuple]:
    """Rows (set, key, frames, labeled, empty, unlabeled, reviewed, boxes) with set in
    {'video', 'bpf', 'total'}; 'empty' = reviewed without boxes, 'unlabeled' = neither."""
    cte, args = _frames_cte(project_id, video_ids, class_ids)
    sql = f"""
    WITH {cte}
    SELECT CASE GROUPING(video_id, nb) WHEN 1 THEN 'video' WHEN 2 THEN 'bpf' ELSE 'total' END,
           coalesce(video_id, nb) AS key,
           count(*) AS frames,
           count(*) FILTER (WHERE n > 0) AS labeled,
           count(*) FILTER (WHERE n = 0 AND reviewed) AS empty,
           count(*) FILTER (WHERE n = 0 AND NOT reviewed) AS unlabeled,
           count(*) FILTER (WHERE reviewed) AS reviewed,
           coalesce(sum(n), 0) AS boxes
    FROM (SELECT *, least(n, {BPF_CAP}) AS nb FROM ff)
    GROUP BY GROUPING SETS ((video_id), (nb), ())
    """
    return cur.execute(sql, args).fetchall()


def unlabeled_gaps(cur: duckdb.DuckDBPyConnection, project_id: int, video_ids: Sequence[int] | None,
                   class_ids: Sequence[int] | None, min_len: int) -> list[tuple]:
    """Runs of >= min_len consecutive unlabeled, unreviewed frames in videos that have labels:
    rows (video_id, first_idx, last_idx, length), longest first."""
    cte, args = _frames_cte(project_id, video_ids, class_ids)
    sql = f"""
    WITH {cte},
    labeled_videos AS (SELECT DISTINCT video_id FROM per),
    holes AS (
        SELECT ff.video_id, idx, idx - row_number() OVER (PARTITION BY ff.video_id ORDER BY idx) AS grp
        FROM ff SEMI JOIN labeled_videos lv ON lv.video_id = ff.video_id
        WHERE n = 0 AND NOT reviewed
    )
    SELECT video_id, min(idx), max(idx), count(*) AS len
    FROM holes GROUP BY video_id, grp HAVING count(*) >= ?
    ORDER BY len DESC, video_id, min(idx)
    """
    return cur.execute(sql, [*args, min_len]).fetchall()


def author_edits(cur: duckdb.DuckDBPyConnection, project_id: int,
                 video_ids: Sequence[int] | None) -> list[tuple]:
    """Rows (author, edits, hour, first, last) per (author, active hour) from the edit log;
    hour = whole hours since the epoch, as in box_aggregates."""
    where, args = _in("video_id", video_ids)
    sql = f"""
    SELECT coalesce(author, '') AS author, count(*) AS edits, epoch(edited_at)::BIGINT // 3600 AS hour,
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
        WITH v AS (SELECT id FROM videos WHERE project_id = ?)
        SELECT (SELECT count(*) FROM v),
               (SELECT count(*) FROM boxes b SEMI JOIN v ON v.id = b.video_id),
               (SELECT max(updated_at) FROM boxes b SEMI JOIN v ON v.id = b.video_id),
               (SELECT count(*) FILTER (WHERE reviewed) FROM frames f SEMI JOIN v ON v.id = f.video_id),
               (SELECT count(*) FROM frames f SEMI JOIN v ON v.id = f.video_id),
               (SELECT max(id) FROM edits WHERE project_id = ?),
               (SELECT count(*) FROM label_classes WHERE project_id = ?)
        """,
        [project_id, project_id, project_id],
    ).fetchone()
    return tuple(row)
