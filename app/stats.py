"""Dataset health statistics for a project (a Roboflow "Health Check" for video labels).

`project_stats()` answers from a few grouped DuckDB passes (app/store/stats.py); nothing here
loops over boxes. `stats_revision()` is a cheap figure that changes whenever a box, a frame's
reviewed flag, a class or the edit log changes, so pages can cache stats keyed by it.

Every box and frame figure is a sum over videos, so the cached path keeps per-video partial
results, each stamped with that video's own revision: after an edit only the edited video is
counted again and its old partial is swapped for the new one in a running sum.

Definitions used throughout:
  - a box counts when it is not `outside` (a track's "not visible here" marker);
  - a frame is *labeled* when it has a counted box of the selected classes, *empty* when it has
    none but is marked reviewed (confirmed background), *unlabeled* otherwise.
"""
from __future__ import annotations

import logging
import math
import pickle
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import NotFound
from app.settings import get_settings
from app.store import projects as project_sql
from app.store import stats as sql
from app.store.db import connect

log = logging.getLogger(__name__)

# A class with fewer boxes than this is flagged: a detector needs many examples per class.
MIN_CLASS_BOXES = 50
# Runs of this many consecutive unlabeled frames inside a labeled video are flagged.
MIN_GAP_FRAMES = 50
# min/max class share ratios for the balance rating.
BALANCED_RATIO = 0.5
IMBALANCED_RATIO = 0.1
# Boxes and edits without an author (imports, predictions) are listed under this name.
UNKNOWN_AUTHOR = "(unknown)"


def stats_revision(project_id: int) -> str:
    """A short text that changes whenever anything the stats of this project read changes."""
    with connect() as cur:
        return "|".join("" if v is None else str(v) for v in sql.revision(cur, project_id))


def _balance(counts: list[int]) -> dict[str, Any]:
    if len(counts) < 2:
        return {"classes": len(counts), "min_max_ratio": None, "entropy": None, "rating": "single class"}
    total = sum(counts)
    biggest = max(counts)
    ratio = min(counts) / biggest if biggest else None
    entropy = None
    if total:
        probs = [c / total for c in counts if c]
        entropy = -sum(p * math.log(p) for p in probs) / math.log(len(counts))
    if ratio is None:
        rating = "no boxes"
    elif ratio >= BALANCED_RATIO:
        rating = "balanced"
    elif ratio >= IMBALANCED_RATIO:
        rating = "imbalanced"
    else:
        rating = "severely imbalanced"
    return {"classes": len(counts), "min_max_ratio": ratio, "entropy": entropy, "rating": rating}


def _aspect_label(step: int) -> str:
    ratio = 2 ** (step * sql.ASPECT_STEP)
    if ratio >= 1:
        return f"{ratio:.3g}:1"
    return f"1:{1 / ratio:.3g}"


def _area_labels() -> list[str]:
    edges = sql.AREA_EDGES
    out = [f"< {edges[0]:.2%}"]
    out += [f"{lo:.2%} - {hi:.2%}" for lo, hi in zip(edges, edges[1:], strict=False)]
    out.append(f">= {edges[-1]:.0%}")
    return out


# Results of recent calls keyed by (database, project, filters, gap length, revision): a
# project whose revision has not moved answers without touching its boxes again.
_CACHE_SIZE = 16
_cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def _copy(result: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a stats dict (plain JSON-able values): a pickle round trip is ~5x faster than
    copy.deepcopy on the ~5,000 small objects of a result."""
    return pickle.loads(pickle.dumps(result, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes


def clear_cache() -> None:
    """Forget every cached result and per-video partial (benchmarks use it to time the uncached path)."""
    with _cache_lock:
        _cache.clear()
    with _partials_lock:
        _selections.clear()


@dataclass
class _Part:
    """One video's share of the figures, as of its revision."""
    rev: tuple
    boxes: Counter = field(default_factory=Counter)    # normalised box row key -> boxes
    bpf: Counter = field(default_factory=Counter)      # boxes in a frame (capped) -> frames
    video: tuple | None = None                         # its frame_aggregates 'video' row
    gaps: list[tuple] = field(default_factory=list)


@dataclass
class _Selection:
    """Per-video partials of one (project, filters) selection and their running sum."""
    parts: dict[int, _Part] = field(default_factory=dict)
    boxes: Counter = field(default_factory=Counter)
    bpf: Counter = field(default_factory=Counter)

    def drop(self, vid: int) -> None:
        part = self.parts.pop(vid)
        self.boxes.subtract(part.boxes)
        self.bpf.subtract(part.bpf)

    def add(self, vid: int, part: _Part) -> None:
        self.parts[vid] = part
        self.boxes.update(part.boxes)
        self.bpf.update(part.bpf)

    def rows(self) -> tuple[list[tuple], list[tuple]]:
        """The summed partials in the row shapes of box_aggregates/frame_aggregates."""
        box_rows = [(*k, n) for k, n in self.boxes.items() if n]
        video_rows = [p.video for _, p in sorted(self.parts.items()) if p.video is not None]
        totals = [sum(int(r[i]) for r in video_rows) for i in range(2, 8)]
        frame_rows = [*video_rows, ("total", None, *totals, None, None)]
        frame_rows += [("bpf", nb, n, None, None, None, None, None, None, None)
                       for nb, n in sorted(self.bpf.items()) if n]
        gaps = [g for p in self.parts.values() for g in p.gaps]
        frame_rows += sorted(gaps, key=lambda g: (-g[2], g[1], g[8]))
        return box_rows, frame_rows


# Partials per selection, oldest first; a page switching filters back and forth keeps both.
_SELECTIONS = 8
_selections: OrderedDict[tuple, _Selection] = OrderedDict()
_partials_lock = threading.Lock()


def _selection(skey: tuple) -> _Selection:
    """The partials of one selection (call with _partials_lock held)."""
    sel = _selections.get(skey)
    if sel is None:
        sel = _selections[skey] = _Selection()
        while len(_selections) > _SELECTIONS:
            _selections.popitem(last=False)
    _selections.move_to_end(skey)
    return sel


def _count_videos(cur: Any, sel: _Selection, project_id: int, stale: list[int], all_videos: bool,
                  class_ids: Sequence[int] | None, revs: dict[int, tuple]) -> None:
    """Count `stale` videos again into `sel` (call with _partials_lock held)."""
    ids = None if all_videos else stale   # all of an unfiltered project: no IN list of every video id
    fresh = {vid: _Part(revs[vid]) for vid in stale}
    image_sets = any(revs[vid][0] is None for vid in stale)   # no video size: an image set
    for vid, *row, n in sql.box_aggregates(cur, project_id, ids, class_ids, by_video=True, image_sets=image_sets):
        fresh[vid].boxes[tuple(row)] = n   # integer keys: one row per key
    for vid, *row in sql.frame_aggregates(cur, project_id, ids, class_ids, MIN_GAP_FRAMES, by_video=True):
        part = fresh[vid]
        if row[0] == "video":
            part.video = tuple(row)
        elif row[0] == "bpf":
            part.bpf[int(row[1])] += int(row[2])
        else:
            part.gaps.append(tuple(row))
    for vid, part in fresh.items():
        sel.add(vid, part)


def _fill_later(skey: tuple, project_id: int, selected: list[int], all_videos: bool,
                class_ids: Sequence[int] | None, revs: dict[int, tuple]) -> None:
    """Build a selection's partials in the background, stamped with `revs` (older than the data
    they count, so a write in between only makes the next call count that video again)."""
    done = threading.Event()

    def run() -> None:
        try:
            with connect(Path(skey[0])) as cur, _partials_lock:   # the file it was asked for
                sel = _selection(skey)
                stale = sorted(set(selected) - sel.parts.keys())
                if stale:
                    _count_videos(cur, sel, project_id, stale, all_videos and len(stale) == len(selected),
                                  class_ids, revs)
        except Exception:  # noqa: BLE001 - an optimisation: the next call counts in the foreground
            log.warning("stats: background count of per-video partials failed", exc_info=True)
        finally:
            with _partials_lock:
                _filling.pop(skey, None)
            done.set()

    with _partials_lock:
        if skey in _filling:
            return
        _filling[skey] = done
    # Not a daemon: a process that exits meanwhile waits for it (DuckDB must not be cut off mid-query).
    threading.Thread(target=run, name="stats-partials").start()


# Selections whose partials are being built: the next call waits for them instead of a second pass.
_filling: dict[tuple, threading.Event] = {}


def settle(timeout: float = 60.0) -> None:
    """Wait until the per-video partials being built in the background are done."""
    for event in list(_filling.values()):
        event.wait(timeout)


def _from_partials(cur: Any, project_id: int, selected: list[int], vkey: tuple | None, ckey: tuple | None,
                   class_ids: Sequence[int] | None, revs: dict[int, tuple],
                   video_ids: Sequence[int] | None) -> tuple[list[tuple], list[tuple]]:
    """Box and frame rows of the selection, counting again only the videos whose revision moved.

    Nothing kept yet for the selection (a fresh process, new filters): one plain pass answers,
    which is ~40 % cheaper than counting per video, and the partials are built in the background
    for the edits to come."""
    skey = (str(get_settings().db_path), project_id, vkey, ckey, MIN_GAP_FRAMES)
    all_videos = vkey is None and len(selected) == len(revs)
    filling = _filling.get(skey)
    if filling is not None:
        filling.wait(timeout=60)
    with _partials_lock:
        sel = _selection(skey)
        wanted = set(selected)
        for vid in [v for v, p in sel.parts.items() if v not in wanted or p.rev != revs.get(v)]:
            sel.drop(vid)
        stale = sorted(wanted - sel.parts.keys())
        if not stale:
            return sel.rows()
        if sel.parts or len(stale) < 2:
            _count_videos(cur, sel, project_id, stale, all_videos and len(stale) == len(selected), class_ids, revs)
            return sel.rows()
    rows = _full_pass(cur, project_id, video_ids, class_ids, image_sets=any(revs[v][0] is None for v in selected))
    _fill_later(skey, project_id, selected, all_videos, class_ids, revs)
    return rows


def _full_pass(cur: Any, project_id: int, video_ids: Sequence[int] | None, class_ids: Sequence[int] | None,
               image_sets: bool) -> tuple[list[tuple], list[tuple]]:
    """Box and frame rows of the selection in one pass each, the two queries side by side: each
    has stretches DuckDB runs on one thread (hash tables' finalisation, the window over frames)."""
    side = cur.cursor()
    try:
        frames = _pool.submit(sql.frame_aggregates, side, project_id, video_ids, class_ids, MIN_GAP_FRAMES)
        box_rows = sql.box_aggregates(cur, project_id, video_ids, class_ids, image_sets=image_sets)
        return box_rows, frames.result()
    finally:
        side.close()


_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stats")


def _revision_text(videos: list[tuple], rest: tuple) -> str:
    """The project revision (as stats_revision words it) from the per-video figures."""
    lasts = [r[4] for r in videos if r[4] is not None]
    figures = (len(videos), sum(r[3] for r in videos), max(lasts) if lasts else None,
               sum(r[7] for r in videos), sum(r[6] for r in videos), *rest)
    return "|".join("" if v is None else str(v) for v in figures)


def project_stats(project_id: int, *, video_ids: Sequence[int] | None = None,
                  class_ids: Sequence[int] | None = None, use_cache: bool = True) -> dict[str, Any]:
    """Health statistics of a project's labels, optionally restricted to videos and/or classes.

    Returns a JSON-able dict: boxes, frames, classes (count and share per class), balance
    (min/max ratio, normalised entropy, rating), per_video (frames labeled/empty/unlabeled),
    frames_summary, boxes_per_frame, width_hist/height_hist (relative to the image),
    area_hist, aspect_hist, heatmap (normalised 2-D histogram of box centres), sources,
    reviewed_share, authors (boxes, edits, active hours, boxes per hour), warnings, revision.

    While the project's revision (see stats_revision) is unchanged, a repeated call answers
    from an in-process cache (a fresh copy each time); after a change, only the videos whose
    boxes or frames changed are counted again. use_cache=False recomputes everything in one pass.
    """
    vkey = None if video_ids is None else tuple(sorted(int(v) for v in video_ids))
    ckey = None if class_ids is None else tuple(sorted(int(c) for c in class_ids))
    with connect() as cur:
        project = project_sql.project_by_id(cur, project_id)
        if project is None:
            raise NotFound(f"no project {project_id}")
        if use_cache:
            video_revs, rest = sql.video_revisions(cur, project_id)
            revision = _revision_text(video_revs, rest)
        else:
            revision = "|".join("" if v is None else str(v) for v in sql.revision(cur, project_id))
        key = (str(get_settings().db_path), project_id, vkey, ckey, MIN_GAP_FRAMES, revision)
        if use_cache:
            with _cache_lock:
                hit = _cache.get(key)
                if hit is not None:
                    _cache.move_to_end(key)
                    return _copy(hit)
        videos = sql.videos_of(cur, project_id, video_ids)
        if use_cache:
            revs = {r[0]: tuple(r[1:]) for r in video_revs}
            videos = [v for v in videos if v[0] in revs]   # one added since the revision query: next time
            box_rows, frame_rows = _from_partials(cur, project_id, [v[0] for v in videos], vkey, ckey,
                                                  class_ids, revs, video_ids)
        else:
            box_rows, frame_rows = _full_pass(cur, project_id, video_ids, class_ids,
                                              image_sets=any(v[2] is None for v in videos))
        edit_rows = sql.author_edits(cur, project_id, video_ids)
    result = _assemble(project_id, project, video_ids, class_ids, revision, videos, box_rows,
                       frame_rows, edit_rows)
    with _cache_lock:
        _cache[key] = _copy(result)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def _assemble(project_id: int, project: Any, video_ids: Sequence[int] | None,
              class_ids: Sequence[int] | None, revision: str, videos: list[tuple],
              box_rows: list[tuple], frame_rows: list[tuple], edit_rows: list[tuple]) -> dict[str, Any]:
    """Reshape the few grouped rows from SQL into the stats dict."""
    classes = [c for c in project.classes if class_ids is None or c.id in set(class_ids)]
    n_boxes = 0
    class_counts: dict[int, int] = {}
    source_counts: dict[str, int] = {}
    author_boxes: dict[str, list[int]] = {}   # author -> [boxes, manual boxes]
    author_hours: dict[str, set[int]] = {}
    w_counts: dict[int, int] = {}
    h_counts: dict[int, int] = {}
    heat_counts: dict[tuple[int, int], int] = {}
    a_counts: dict[int, int] = {}
    r_counts: dict[int, int] = {}
    tiny = touching = outside_image = degenerate = 0
    r_max = sql.R_MAX
    for gset, class_id, source, name, hour, size, heat, shape, n in box_rows:
        n = int(n)
        if gset == "main":
            n_boxes += n
            class_counts[class_id] = class_counts.get(class_id, 0) + n
            source_counts[source] = source_counts.get(source, 0) + n
            counts = author_boxes.setdefault(name, [0, 0])
            counts[0] += n
            if source == "manual":
                counts[1] += n
            author_hours.setdefault(name, set()).add(int(hour))
        elif size is None and heat is None and shape is None:
            continue   # the bins of a box in an image of unknown size
        elif gset == "size":
            w, h = sql.size_bins(size)
            w_counts[w] = w_counts.get(w, 0) + n
            h_counts[h] = h_counts.get(h, 0) + n
        elif gset == "heat":
            cell = sql.heat_cell(heat)
            heat_counts[cell] = heat_counts.get(cell, 0) + n
        else:
            ab, r, is_tiny, is_degenerate, is_touching, is_outside = sql.shape_bits(shape)
            a_counts[ab] = a_counts.get(ab, 0) + n
            if r is not None:   # not degenerate: w/h is positive and finite
                r_counts[r] = r_counts.get(r, 0) + n
            tiny += n if is_tiny else 0
            degenerate += n if is_degenerate else 0
            touching += n if is_touching else 0
            outside_image += n if is_outside else 0

    def share(n: int) -> float:
        return n / n_boxes if n_boxes else 0.0

    class_list = [
        {"class_id": c.id, "name": c.name, "color": c.color, "boxes": class_counts.get(c.id, 0),
         "share": share(class_counts.get(c.id, 0))}
        for c in classes
    ]
    sources = sorted(
        ({"source": s, "boxes": n, "share": share(n)} for s, n in source_counts.items()),
        key=lambda d: (-d["boxes"], d["source"]),   # ties by name: row order from SQL is arbitrary
    )

    step = 1 / sql.SIZE_BINS
    width_hist = [{"bin_start": round(i * step, 4), "bin_end": round((i + 1) * step, 4),
                   "boxes": w_counts.get(i, 0)} for i in range(sql.SIZE_BINS)]
    height_hist = [{"bin_start": round(i * step, 4), "bin_end": round((i + 1) * step, 4),
                    "boxes": h_counts.get(i, 0)} for i in range(sql.SIZE_BINS)]
    area_hist = [{"bin": i, "label": label, "boxes": a_counts.get(i, 0)}
                 for i, label in enumerate(_area_labels())]
    aspect_hist = [{"log2": s * sql.ASPECT_STEP, "label": _aspect_label(s), "boxes": r_counts.get(s, 0)}
                   for s in range(-r_max, r_max + 1)]

    heat_max = max(heat_counts.values(), default=0)
    heatmap = {
        "bins": sql.HEAT_BINS,
        "cells": [
            {"x": gx, "y": gy, "boxes": heat_counts.get((gx, gy), 0),
             "density": heat_counts.get((gx, gy), 0) / heat_max if heat_max else 0.0}
            for gy in range(sql.HEAT_BINS) for gx in range(sql.HEAT_BINS)
        ],
    }

    # authors: boxes (current, by source) from boxes.author; activity hours from boxes created
    # and from the edit log, whichever shows the author at work
    authors: dict[str, dict[str, Any]] = {}

    def author(name: str) -> dict[str, Any]:
        name = name or UNKNOWN_AUTHOR
        return authors.setdefault(name, {"author": name, "boxes": 0, "manual_boxes": 0, "edits": 0,
                                         "hours": set(), "first": None, "last": None})

    for name, (n, manual) in author_boxes.items():
        a = author(name)
        a["boxes"] += n
        a["manual_boxes"] += manual
    for name, hours in author_hours.items():
        author(name)["hours"].update(hours)
    for name, n_edits, hour, first, last in edit_rows:
        a = author(name)
        a["edits"] += int(n_edits)
        a["hours"].add(int(hour))
        a["first"] = first if a["first"] is None else min(a["first"], first)
        a["last"] = last if a["last"] is None else max(a["last"], last)
    author_list = []
    for a in sorted(authors.values(), key=lambda d: (-d["boxes"], d["author"])):
        hours = len(a.pop("hours"))
        a["active_hours"] = hours
        a["boxes_per_hour"] = a["boxes"] / hours if hours else None
        a["first"] = a["first"].isoformat() if a["first"] is not None else None
        a["last"] = a["last"].isoformat() if a["last"] is not None else None
        author_list.append(a)

    names = {v[0]: v[1] for v in videos}
    per_video_rows = {int(r[1]): r for r in frame_rows if r[0] == "video"}
    per_video = []
    for vid, name, *_ in videos:
        r = per_video_rows.get(vid)
        f = [int(x) for x in r[2:8]] if r else [0] * 6
        per_video.append({"video_id": vid, "name": name, "frames": f[0], "labeled": f[1], "empty": f[2],
                          "unlabeled": f[3], "reviewed": f[4], "boxes": f[5]})
    gaps = [r for r in frame_rows if r[0] == "gap"]
    t = next((r for r in frame_rows if r[0] == "total"), None)
    f = [int(x) for x in t[2:8]] if t else [0] * 6
    frames_summary = {"frames": f[0], "labeled": f[1], "empty": f[2], "unlabeled": f[3], "reviewed": f[4],
                      "reviewed_share": f[4] / f[0] if f[0] else 0.0}
    bpf_counts = {int(r[1]): int(r[2]) for r in frame_rows if r[0] == "bpf"}
    boxes_per_frame = [
        {"boxes": str(i) if i < sql.BPF_CAP else f"{sql.BPF_CAP}+", "n": i, "frames": bpf_counts.get(i, 0)}
        for i in range(sql.BPF_CAP + 1)
    ]

    warnings: list[dict[str, Any]] = []

    def warn(kind: str, level: str, count: int, message: str, **extra: Any) -> None:
        warnings.append({"kind": kind, "level": level, "count": count, "message": message, **extra})

    if degenerate:
        warn("degenerate", "error", degenerate, f"{degenerate} boxes have zero or negative width/height")
    if outside_image:
        warn("outside_image", "error", outside_image,
             f"{outside_image} boxes extend outside the image; they will be clipped in datasets")
    if tiny:
        warn("tiny", "warning", tiny,
             f"{tiny} boxes are tiny (shorter side < {sql.TINY_PX:g} px); the detector can barely see them")
    if touching:
        warn("touching_edge", "info", touching,
             f"{touching} boxes touch the image border ({share(touching):.0%}); fine for objects cut by the frame")
    for c in class_list:
        if c["boxes"] < MIN_CLASS_BOXES:
            warn("few_examples", "warning", c["boxes"],
                 f"class {c['name']!r} has only {c['boxes']} boxes (fewer than {MIN_CLASS_BOXES})",
                 class_id=c["class_id"])
    for pv in per_video:
        if pv["frames"] and not pv["labeled"]:
            warn("video_unlabeled", "info", pv["frames"], f"video {pv['name']!r} has no boxes yet",
                 video_id=pv["video_id"])
    for _, vid, length, *_, first, last in gaps:
        warn("unlabeled_gap", "warning", int(length),
             f"video {names.get(vid, vid)!r}: frames {first}-{last} ({length} frames) have no boxes "
             "and are not marked reviewed", video_id=int(vid), first=int(first), last=int(last))

    return {
        "project_id": project_id,
        "filters": {"video_ids": None if video_ids is None else [int(v) for v in video_ids],
                    "class_ids": None if class_ids is None else [int(c) for c in class_ids]},
        "revision": revision,
        "videos": len(videos),
        "boxes": n_boxes,
        "frames": frames_summary["frames"],
        "classes": class_list,
        "balance": _balance([c["boxes"] for c in class_list]),
        "sources": sources,
        "per_video": per_video,
        "frames_summary": frames_summary,
        "reviewed_share": frames_summary["reviewed_share"],
        "boxes_per_frame": boxes_per_frame,
        "width_hist": width_hist,
        "height_hist": height_hist,
        "area_hist": area_hist,
        "aspect_hist": aspect_hist,
        "heatmap": heatmap,
        "authors": author_list,
        "warnings": warnings,
    }
