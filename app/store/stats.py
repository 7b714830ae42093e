"""SQL for dataset health statistics: every figure is an aggregate computed inside DuckDB.

The box-level figures come from ONE pass over the filtered boxes (GROUPING SETS of plain counts
keyed by small integer bins stored with each box when it is written, see fill_bins); the
frame-level figures, gaps included, from one pass over the per-frame box counts of the selected
videos. Python only reshapes the small grouped results (see app/stats.py).
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


# Stored bins (columns of boxes, see migration 2): one small integer per figure, computed from the
# box and its image size when the box is written, so the full pass groups small integers instead
# of doing per-row arithmetic. bins_rev is the box's rev they were computed at: a box whose rev
# moved (or a row written by raw SQL, bins_rev NULL) is binned inline by the same formulas, so
# the figures stay exact whoever wrote the row. Changing a constant above or a formula below
# needs a migration that sets bins_rev = NULL (and runs fill_bins_sql) for existing rows.
R_MAX = int(ASPECT_MAX / ASPECT_STEP)
R_DEGENERATE = 2 * R_MAX + 1   # aspect code of a box with zero or negative width/height


def _clamp(expr: str, lo: int, hi: int) -> str:
    return f"(CASE WHEN {expr} < {lo} THEN {lo} WHEN {expr} > {hi} THEN {hi} ELSE {expr} END)"


def _bin_exprs(b: str, iw: str, ih: str) -> dict[str, str]:
    """SQL expressions of the stored bins of box alias `b` in an image iw x ih (DOUBLE expressions).

      bin_size  = wb * SIZE_BINS + hb   (relative width/height bins, clamped)
      bin_heat  = gx * HEAT_BINS + gy   (box centre cell, clamped)
      bin_shape = (((ab * (2 R_MAX + 2) + r) * 2 + tiny) * 2 + touching) * 2 + outside_image with
                  ab the area bin and r = aspect step + R_MAX, or R_DEGENERATE for degenerate boxes
      bin_hour  = whole hours since the epoch of created_at
    """
    x1, y1, x2, y2 = (f"{b}.{c}" for c in ("x1", "y1", "x2", "y2"))
    w, h = f"({x2} - {x1})", f"({y2} - {y1})"
    top = SIZE_BINS - 1
    wb = _clamp(f"floor({w} * {SIZE_BINS} / {iw})", 0, top)
    hb = _clamp(f"floor({h} * {SIZE_BINS} / {ih})", 0, top)
    gx = _clamp(f"floor(({x1} + {x2}) * {HEAT_BINS / 2} / {iw})", 0, HEAT_BINS - 1)
    gy = _clamp(f"floor(({y1} + {y2}) * {HEAT_BINS / 2} / {ih})", 0, HEAT_BINS - 1)
    area = " ".join(f"WHEN {w} * {h} < {edge} * {iw} * {ih} THEN {i}" for i, edge in enumerate(AREA_EDGES))
    ab = f"(CASE {area} ELSE {len(AREA_EDGES)} END)"
    r = (f"(CASE WHEN {w} <= 0 OR {h} <= 0 THEN {R_DEGENERATE} "
         f"ELSE {_clamp(f'round(log2({w} / {h}) / {ASPECT_STEP})', -R_MAX, R_MAX)} + {R_MAX} END)")
    tiny = f"({w} < {TINY_PX} OR {h} < {TINY_PX})::INTEGER"
    touching = (f"({x1} <= {EDGE_TOL_PX} OR {y1} <= {EDGE_TOL_PX} OR {x2} >= {iw} - {EDGE_TOL_PX} "
                f"OR {y2} >= {ih} - {EDGE_TOL_PX})::INTEGER")
    outside = (f"({x1} < -{EDGE_TOL_PX} OR {y1} < -{EDGE_TOL_PX} OR {x2} > {iw} + {EDGE_TOL_PX} "
               f"OR {y2} > {ih} + {EDGE_TOL_PX})::INTEGER")
    return {
        "bin_size": f"({wb} * {SIZE_BINS} + {hb})::SMALLINT",
        "bin_heat": f"({gx} * {HEAT_BINS} + {gy})::SMALLINT",
        "bin_shape": f"(((({ab} * {R_DEGENERATE + 1} + {r}) * 2 + {tiny}) * 2 + {touching}) * 2 + {outside})::SMALLINT",
        "bin_hour": f"(epoch_us({b}.created_at) // 3600000000)::INTEGER",
    }


BIN_COLS = ("bin_size", "bin_heat", "bin_shape", "bin_hour")


def fill_bins_sql(where: str = "") -> list[str]:
    """The UPDATE statements that store the bins of boxes whose bins are missing or stale (one for
    videos, one for image sets, which keep a size per image in frames). `where`: more conditions
    on `boxes`, starting with AND. Boxes of images without a known size are left as they are."""
    stale = "boxes.bins_rev IS DISTINCT FROM boxes.rev"

    def sets(iw: str, ih: str) -> str:
        exprs = _bin_exprs("boxes", iw, ih)
        return ", ".join(f"{c} = {exprs[c]}" for c in BIN_COLS) + ", bins_rev = boxes.rev"

    return [
        f"UPDATE boxes SET {sets('v.width::DOUBLE', 'v.height::DOUBLE')} FROM videos v "
        f"WHERE v.id = boxes.video_id AND v.width IS NOT NULL AND v.height IS NOT NULL AND {stale}{where}",
        f"UPDATE boxes SET {sets('f.width::DOUBLE', 'f.height::DOUBLE')} FROM videos v, frames f "
        f"WHERE v.id = boxes.video_id AND v.width IS NULL AND f.video_id = boxes.video_id "
        f"AND f.idx = boxes.frame_idx AND f.width IS NOT NULL AND f.height IS NOT NULL AND {stale}{where}",
    ]


def fill_bins(cur: duckdb.DuckDBPyConnection, *, video_ids: Sequence[int] | None = None,
              box_ids: Sequence[int] | None = None) -> None:
    """Store the bins of the given boxes (or of every box of the given videos, or of all boxes)
    whose bins are missing or older than the box. Writers call it in their transaction after
    inserting or moving boxes; it leaves up-to-date boxes alone, so over-asking is cheap."""
    where, args = "", []
    if box_ids is not None:
        where, args = _in("boxes.id", box_ids)
    elif video_ids is not None:
        where, args = _in("boxes.video_id", video_ids)
    if where == " AND false":
        return
    for sql in fill_bins_sql(where):
        cur.execute(sql, args)


def box_aggregates(cur: duckdb.DuckDBPyConnection, project_id: int,
                   video_ids: Sequence[int] | None, class_ids: Sequence[int] | None, *,
                   by_video: bool = False, image_sets: bool | None = None) -> list[tuple]:
    """One grouped pass over the visible boxes of the selection.

    Rows: (set, class_id, source, author, hour, size, heat, shape, n) with set one of
      'main'   grouped by (class_id, source, author, hour);
      'size'   by bin_size;  'heat' by bin_heat;  'shape' by bin_shape
    (codes as documented in _bin_exprs; decode them with size_bins/heat_cell/shape_bits);
    columns outside a row's grouping are NULL. hour = whole hours since the epoch.
    The bins are the stored ones; boxes whose stored bins are missing or stale (bins_rev is not
    their rev: written by raw SQL or moved since) are binned here by the same formulas, so the
    figures never depend on who wrote a box.
    With by_video every row is prefixed with its video_id: the same sets, one per video, so a
    caller can keep per-video partial results and recompute only the videos that changed.
    """
    vsql, vargs = _selected_videos(project_id, video_ids)
    cwhere, cargs = _box_filter(video_ids, class_ids)
    # The image-set branch joins frames: leave it out when there are no image sets
    # (image_sets: whether the selection has any, when the caller already knows).
    if image_sets is None:
        image_sets = cur.execute(f"SELECT count(*) FROM ({vsql}) WHERE width IS NULL", vargs).fetchone()[0] > 0
    cols = "b.class_id, b.source, coalesce(b.author, '') AS author"
    if by_video:
        cols = "b.video_id, " + cols

    def inline(iw: str, ih: str) -> str:
        exprs = _bin_exprs("b", iw, ih)
        return ", ".join(f"{exprs[c]} AS {c}" for c in BIN_COLS)

    stale = "b.bins_rev IS DISTINCT FROM b.rev"
    # The inline branch costs ~15 ms on 1M boxes even when it finds nothing (a second scan and
    # join): ask first (~3 ms), and leave it out when every box has its bins stored.
    any_stale = cur.execute(
        f"SELECT EXISTS (SELECT 1 FROM boxes b WHERE b.video_id IN (SELECT id FROM ({vsql})) AND NOT b.outside "
        f"AND {stale}{cwhere})", [*vargs, *cargs]).fetchone()[0]
    image_set_branch = f"""
        UNION ALL
        SELECT {cols}, {inline("f.width::DOUBLE", "f.height::DOUBLE")}
        FROM boxes b JOIN v ON v.id = b.video_id AND v.width IS NULL
        JOIN frames f ON f.video_id = b.video_id AND f.idx = b.frame_idx
        WHERE NOT b.outside AND {stale}{cwhere}""" if image_sets else ""
    inline_branch = f"""
        UNION ALL
        SELECT {cols}, {inline("v.width::DOUBLE", "v.height::DOUBLE")}
        FROM boxes b JOIN v ON v.id = b.video_id
        WHERE v.width IS NOT NULL AND NOT b.outside AND {stale}{cwhere}
        {image_set_branch}""" if any_stale else ""
    vid = "video_id, " if by_video else ""
    sql = f"""
    WITH v AS (SELECT id, width, height FROM ({vsql})),
    k AS (
        SELECT {cols}, {", ".join(f"b.{c}" for c in BIN_COLS)}
        FROM boxes b SEMI JOIN v ON v.id = b.video_id
        WHERE NOT b.outside AND b.bins_rev = b.rev{cwhere}
        {inline_branch}
    )
    SELECT {vid}CASE GROUPING(class_id, source, author, bin_hour, bin_size, bin_heat, bin_shape)
             WHEN {_gmask(0, 1, 2, 3)} THEN 'main' WHEN {_gmask(4)} THEN 'size'
             WHEN {_gmask(5)} THEN 'heat' ELSE 'shape' END AS gset,
           class_id, source, author, bin_hour, bin_size, bin_heat, bin_shape, count(*) AS n
    FROM k
    GROUP BY {vid}GROUPING SETS ((class_id, source, author, bin_hour), (bin_size), (bin_heat), (bin_shape))
    """
    args = [*vargs, *cargs] + ([*cargs, *(cargs if image_sets else [])] if any_stale else [])
    return cur.execute(sql, args).fetchall()


def size_bins(code: int) -> tuple[int, int]:
    """(width bin, height bin) of a bin_size code."""
    return divmod(int(code), SIZE_BINS)


def heat_cell(code: int) -> tuple[int, int]:
    """(x, y) heat map cell of a bin_heat code."""
    return divmod(int(code), HEAT_BINS)


def shape_bits(code: int) -> tuple[int, int | None, bool, bool, bool, bool]:
    """(area bin, aspect step or None when degenerate, tiny, degenerate, touching, outside_image)
    of a bin_shape code."""
    code = int(code)
    ab, r = divmod(code >> 3, R_DEGENERATE + 1)
    degenerate = r == R_DEGENERATE
    return ab, None if degenerate else r - R_MAX, bool(code & 4), degenerate, bool(code & 2), bool(code & 1)


_GCOLS = 7


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
