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


def _box_filter(video_ids: Sequence[int] | None, class_ids: Sequence[int] | None) -> tuple[str, list[int]]:
    """The selection as a filter on boxes itself (besides the join with the selected videos): the
    scan then skips the other columns of rows outside it, which matters when one video of many
    is counted again."""
    vwhere, vargs = _in("b.video_id", video_ids)
    cwhere, cargs = _in("b.class_id", class_ids)
    return vwhere + cwhere, vargs + cargs


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
                   video_ids: Sequence[int] | None, class_ids: Sequence[int] | None, *,
                   by_video: bool = False, image_sets: bool | None = None) -> list[tuple]:
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
    With by_video every row is prefixed with its video_id: the same sets, one per video, so a
    caller can keep per-video partial results and recompute only the videos that changed. Those
    rows come back with the bins clamped (integers; rb NULL for degenerate boxes) and merged,
    which takes a second grouping over the grouped rows only: partials then add up by plain
    equality (a NaN never equals itself) and there are fewer rows to move into Python.
    """
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _box_filter(video_ids, class_ids)
    # The image-set branch scans boxes a second time: leave it out when there are no image sets
    # (image_sets: whether the selection has any, when the caller already knows).
    if image_sets is None:
        image_sets = cur.execute(f"SELECT count(*) FROM ({vsql}) WHERE width IS NULL", vargs).fetchone()[0] > 0
    area_case = " ".join(f"WHEN wh < t{i} THEN {i}" for i in range(len(AREA_EDGES)))
    cols = "b.class_id, b.source, coalesce(b.author, '') AS author, b.created_at, b.x1, b.y1, b.x2, b.y2"
    if by_video:
        cols = "b.video_id, " + cols
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
        SELECT {"video_id, " if by_video else ""}class_id, source, author,
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
    SELECT {"video_id, " if by_video else ""}CASE GROUPING(class_id, source, author, hour, wb, hb, gx, gy,
                         ab, rb, tiny, degenerate, touching, outside_image)
             WHEN {_gmask(0, 1, 2, 3)} THEN 'main' WHEN {_gmask(4, 5)} THEN 'size'
             WHEN {_gmask(6, 7)} THEN 'heat' ELSE 'shape' END AS gset,
           class_id, source, author, hour, wb, hb, gx, gy, ab, rb, tiny, degenerate, touching, outside_image,
           count(*) AS n
    FROM k
    GROUP BY {"video_id, " if by_video else ""}GROUPING SETS ((class_id, source, author, hour), (wb, hb), (gx, gy),
                            (ab, rb, tiny, degenerate, touching, outside_image))
    """
    if by_video:
        top, r_max = SIZE_BINS - 1, int(ASPECT_MAX / ASPECT_STEP)

        def clamp(col: str, lo: int, hi: int) -> str:   # NULL stays NULL, unlike least()/greatest()
            return f"(CASE WHEN {col} < {lo} THEN {lo} WHEN {col} > {hi} THEN {hi} ELSE {col} END)::INTEGER"

        sql = f"""
        SELECT video_id, gset, class_id, source, author, hour,
               {clamp("wb", 0, top)}, {clamp("hb", 0, top)},
               {clamp("gx", 0, HEAT_BINS - 1)}, {clamp("gy", 0, HEAT_BINS - 1)}, ab,
               CASE WHEN NOT degenerate THEN {clamp("rb", -r_max, r_max)} END,
               tiny, degenerate, touching, outside_image, sum(n)::BIGINT
        FROM ({sql})
        GROUP BY ALL
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
                     class_ids: Sequence[int] | None, min_gap: int, *, by_video: bool = False) -> list[tuple]:
    """The frame-level figures in one pass over the per-frame box counts.

    Rows (set, key, frames, labeled, empty, unlabeled, reviewed, boxes, first, last) with set
      'video' (key = video_id), 'bpf' (key = boxes in the frame, capped at BPF_CAP), 'total';
      'gap' (key = video_id, frames = run length, first/last frame index): a run of >= min_gap
      consecutive unlabeled, unreviewed frames in a video that has labels, longest first.
    'empty' = reviewed without boxes, 'unlabeled' = neither. Counting boxes per frame is the
    costly step, so it is done once and shared (materialised) by both figures.
    With by_video the 'bpf' rows are per video (key = boxes in the frame, as above) and every row
    is prefixed with its video_id; there is no 'total' row (it is the sum of the 'video' rows).
    """
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _box_filter(video_ids, class_ids)
    fwhere, fargs = _in("f.video_id", video_ids)
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
        WHERE true{fwhere}
    ),
    agg AS (
        SELECT {"video_id AS vid, " if by_video else ""}
               CASE GROUPING(video_id, nb) WHEN 1 THEN 'video' WHEN {"0" if by_video else "2"} THEN 'bpf'
                    ELSE 'total' END AS gset,
               {"CASE GROUPING(nb) WHEN 1 THEN video_id ELSE nb END" if by_video else "coalesce(video_id, nb)"} AS key,
               count(*) AS frames,
               count(*) FILTER (WHERE n > 0) AS labeled,
               count(*) FILTER (WHERE n = 0 AND reviewed) AS empty,
               count(*) FILTER (WHERE n = 0 AND NOT reviewed) AS unlabeled,
               count(*) FILTER (WHERE reviewed) AS reviewed,
               coalesce(sum(n), 0) AS boxes
        FROM (SELECT *, least(n, {BPF_CAP}) AS nb FROM ff)
        GROUP BY {"GROUPING SETS ((video_id), (video_id, nb))" if by_video else "GROUPING SETS ((video_id), (nb), ())"}
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
    SELECT {"vid, " if by_video else ""}gset, key, frames, labeled, empty, unlabeled, reviewed, boxes,
           NULL AS first, NULL AS last
    FROM agg
    UNION ALL
    SELECT * FROM (
        SELECT {"video_id, " if by_video else ""}'gap', video_id, len, NULL, NULL, NULL, NULL, NULL, first, last
        FROM gaps ORDER BY len DESC, video_id, first
    )
    """
    return cur.execute(sql, [*vargs, *cargs, *fargs, min_gap]).fetchall()


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


def video_revisions(cur: duckdb.DuckDBPyConnection, project_id: int) -> tuple[list[tuple], tuple]:
    """Per-video figures that change whenever that video's boxes, frames or size change, and the
    project-wide rest, for per-video partial results and for the project revision.

    Rows (video_id, width, height, boxes, last_update, rev_sum, frames, reviewed, reviewed_idx)
    per video of the project, by id; reviewed_idx is an order-free checksum of the reviewed frame
    indices, so moving a reviewed mark changes it. The tuple is (last edit id, classes).
    """
    lo, hi = cur.execute("SELECT min(id), max(id) FROM videos WHERE project_id = ?", [project_id]).fetchone()
    if lo is None:
        return [], tuple(_project_rest(cur, project_id))
    # Boxes and frames are grouped by video over the project's id range, not joined with its
    # videos first: a range filter keeps the grouping a perfect hash on video_id, a join does not
    # (the join costs twice as much on 1M boxes).
    rows = cur.execute(
        """
        WITH bx AS (SELECT video_id, count(*) AS n, max(updated_at) AS last, sum(rev) AS revs
                    FROM boxes WHERE video_id BETWEEN ? AND ? GROUP BY video_id),
        fr AS (SELECT video_id, count(*) AS n, count(*) FILTER (WHERE reviewed) AS reviewed,
                      bit_xor(hash(idx)) FILTER (WHERE reviewed) AS ridx
               FROM frames WHERE video_id BETWEEN ? AND ? GROUP BY video_id)
        SELECT v.id, v.width, v.height, coalesce(bx.n, 0), bx.last, coalesce(bx.revs, 0),
               coalesce(fr.n, 0), coalesce(fr.reviewed, 0), fr.ridx
        FROM videos v LEFT JOIN bx ON bx.video_id = v.id LEFT JOIN fr ON fr.video_id = v.id
        WHERE v.project_id = ?
        ORDER BY v.id
        """,
        [lo, hi, lo, hi, project_id],
    ).fetchall()
    return rows, tuple(_project_rest(cur, project_id))


def _project_rest(cur: duckdb.DuckDBPyConnection, project_id: int) -> tuple:
    return cur.execute(
        "SELECT (SELECT max(id) FROM edits WHERE project_id = ?), "
        "(SELECT count(*) FROM label_classes WHERE project_id = ?)",
        [project_id, project_id],
    ).fetchone()
