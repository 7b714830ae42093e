"""Labeling effort: manual boxes a simulated annotator needs per 100 boxes, per method.

Real sequences from ../shared/data: OTB Crossing (120 JPEG frames), UAV123 person11 (derived
100-frame mp4) and the CVAT traffic export (the 19 tracks in the derived 90-frame 1080p mp4).
The annotator draws the ground-truth box wherever the tool's box has IoU below --iou (0.7):

- forward <tracker>: draw on the track's first frame, propagate to its last; at the first bad
  frame draw and re-propagate from there (the frames before stay).
- interpolation: keyframes on the first and last frames; in every span with a bad frame add a
  keyframe at the first bad frame ("first") or the worst one ("worst"); repeat.
- interpolation (oracle keys): the fewest keyframes that make interpolation good everywhere
  (dynamic programming over GT; a lower bound no annotator reaches by scrubbing).
- fill_between <tracker>: the same keyframe loop (worst frame) with app.interpolate.fill_between.
- fill_track <tracker> (what the Label page's "Fill track" runs, app.labels.fill_track): draw the
  first frame, the tool runs app.interpolate.fill_track (tracker centres, sizes from the
  keyframes, the last keyframe followed to the track's end); the annotator plays from the start,
  steps through the first run of bad frames and redraws its worst one; the tool refills; repeat.
- fill_track (true centres): the same with a "tracker" that returns the ground-truth boxes, so
  only the sizes come from the keyframes: the floor of that size model (mode "floor").
- with --oracle-span N: fill_between (oracle) places its keyframes optimally like the
  interpolation oracle (spans up to N frames), and "fill | interp (oracle)" also picks, per span,
  interpolation or fill_between (what a UI offering both per span allows). Costs N tracker
  updates per frame and direction: meant for OTB and UAV.

Also prints ms per tracked box per tracker. `--quick` keeps 5 traffic tracks; fill_between runs with --fill-trackers.
Run: .venv/bin/python benchmarks/bench_effort.py [--quick]  (about 12 min on 2 busy cores; CSRT on the
1080p traffic clip is most of it. KCF and MIL (14-49 per 100 forward) run with --trackers all;
keyframe fill_between with --modes ...,fill.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import Box, iou  # noqa: E402
from app.interpolate import blend, fill_track, interpolate  # noqa: E402
from app.tracking import TRACKERS, propagate_many, track_steps  # noqa: E402

QUICK_TRAFFIC_TRACKS = (1, 17, 22, 23, 28)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass
class Sequence:
    name: str
    frames: list[np.ndarray]
    tracks: dict[int, dict[int, Box]]  # track id -> frame -> GT box


def _read_video(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while limit is None or len(out) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def _xywh_rows(path: Path, n: int) -> dict[int, Box]:
    rows = {}
    for i, line in enumerate(path.read_text().split("\n")[:n]):
        x, y, w, h = (float(v) for v in line.replace(",", "\t").split())
        rows[i] = Box.from_xywh(x, y, w, h, frame=i, track_id=1, label="target")
    return rows


def load_sequences(quick: bool = False, names: list[str] | None = None) -> list[Sequence]:
    names = names or ["otb", "uav", "traffic"]
    out = []
    if "otb" in names:
        d = DATA / "otb_crossing"
        frames = [cv2.imread(str(d / "img" / f"{i:04d}.jpg")) for i in range(1, 121)]
        out.append(Sequence("otb_crossing", frames, {1: _xywh_rows(d / "groundtruth_rect.txt", 120)}))
    if "uav" in names:
        d = DATA / "uav123_person11"
        frames = _read_video(d / "person11_first100_10fps_h264.mp4")
        out.append(Sequence("uav123_person11", frames, {1: _xywh_rows(d / "groundtruth_rect.txt", len(frames))}))
    if "traffic" in names:
        d = DATA / "cvat_coco_traffic"
        frames = _read_video(d / "traffic_first90_1080p_h264.mp4")
        coco = json.loads((d / "instances_default.json").read_text())
        names_by_id = {c["id"]: c["name"] for c in coco["categories"]}
        tracks: dict[int, dict[int, Box]] = {}
        for a in coco["annotations"]:
            f = a["image_id"] - 1  # CVAT video export: image_id = frame index + 1
            if f >= len(frames):
                continue
            tid = int(a["attributes"]["track_id"])
            tracks.setdefault(tid, {})[f] = Box.from_xywh(
                *a["bbox"], frame=f, track_id=tid, label=names_by_id[a["category_id"]], class_id=a["category_id"]
            )
        out.append(Sequence("cvat_coco_traffic", frames, dict(sorted(tracks.items()))))
    return out


def first_bad(gt: dict[int, Box], frames: list[int], boxes: dict[int, Box], thr: float) -> int | None:
    for f in frames:
        b = boxes.get(f)
        if b is None or iou(b, gt[f]) < thr:
            return f
    return None


def sim_forward(seq: Sequence, gt: dict[int, Box], tracker: str, thr: float) -> tuple[int, int]:
    """Manual boxes and tracker updates: draw on the first frame, propagate, correct the first bad frame."""
    frames = sorted(gt)
    last = frames[-1]
    pos, manual, updates = frames[0], 1, 0
    while pos < last:
        bad = None
        recent: list[Box] = []
        for st in track_steps(seq.frames.__getitem__, [gt[pos]], pos, last, tracker=tracker):
            updates += 1
            tid = gt[pos].track_id
            if tid in st.ended:
                drop = st.ended[tid]
                bad = recent[-drop].frame if drop else st.frame
                break
            box = st.boxes[tid]
            if iou(box, gt[st.frame]) < thr:
                bad = st.frame
                break
            recent.append(box)
        else:
            if not recent or recent[-1].frame < last:  # ended without saying so
                bad = (recent[-1].frame if recent else pos) + 1
        if bad is None:
            break
        manual += 1
        pos = bad
    return manual, updates


def sim_keyframes(gt: dict[int, Box], fill, thr: float, strategy: str) -> int:
    """Keyframes at both ends; the annotator adds one per bad segment (its worst or first bad frame)."""
    frames = sorted(gt)
    keys = [frames[0], frames[-1]]
    cache: dict[tuple[int, int], dict[int, Box]] = {}
    while True:
        added = []
        for a, b in zip(keys, keys[1:], strict=False):
            if b - a < 2:
                continue
            if (a, b) not in cache:
                cache[(a, b)] = {x.frame: x for x in fill(gt[a], gt[b])}
            got = cache[(a, b)]
            inner = list(range(a + 1, b))
            scores = [(iou(got[f], gt[f]) if f in got else 0.0, f) for f in inner]
            bad = [s for s in scores if s[0] < thr]
            if bad:
                added.append(min(bad)[1] if strategy == "worst" else bad[0][1])
        if not added:
            return len(keys)
        keys = sorted(set(keys) | set(added))


class TrackCache:
    """Tracks from keyframes, reused: fill_between(a, b) == blend(a, b, fwd from a, bwd from b).

    Tracking is causal, so the track from a keyframe to a nearer stop is a prefix of the one to
    a farther stop: each keyframe is tracked once per direction, not once per span it bounds.
    """

    def __init__(self, seq: Sequence, tracker: str, reach: int = 0) -> None:
        self.get = seq.frames.__getitem__
        self.last = len(seq.frames) - 1
        self.tracker = tracker
        self.reach = reach  # track at least this far, so growing spans do not re-track
        # (track id, frame, direction) -> (stop, boxes)
        self.done: dict[tuple[int | None, int, int], tuple[int, list[Box]]] = {}

    def track(self, box: Box, stop: int) -> list[Box]:
        d = 1 if stop > box.frame else -1
        got = self.done.get((box.track_id, box.frame, d))
        if got is None or (got[0] - stop) * d < 0:
            stop = min(self.last, max(0, box.frame + d * max(self.reach, abs(stop - box.frame))))
            boxes = propagate_many(self.get, [box], box.frame, stop, tracker=self.tracker)[box.track_id]
            self.done[(box.track_id, box.frame, d)] = got = (stop, boxes)
        return got[1]

    def track_upto(self, box: Box, stop: int) -> list[Box]:
        """Like propagate_many from box to stop: the cached track cut at stop."""
        d = 1 if stop > box.frame else -1
        return [x for x in self.track(box, stop) if (stop - x.frame) * d >= 0]

    def fill(self, a: Box, b: Box) -> list[Box]:
        return blend(a, b, self.track(a, b.frame), self.track(b, a.frame))


def gt_tracker(gt: dict[int, Box]) -> Callable[[Box, int], list[Box]]:
    """A perfect tracker for one track: the ground truth from box.frame towards stop."""
    def track(box: Box, stop: int) -> list[Box]:
        d = 1 if stop > box.frame else -1
        return [gt[f] for f in range(box.frame + d, stop + d, d) if f in gt]
    return track


def sim_fill_track(gt: dict[int, Box], cache: TrackCache | Callable[[Box, int], list[Box]], thr: float) -> int:
    """Manual boxes with fill_track: start from the first frame, redraw the worst frame of the first bad run."""
    frames = sorted(gt)
    keys = {frames[0]: gt[frames[0]]}
    while True:
        track = cache.track_upto if isinstance(cache, TrackCache) else cache
        got = {x.frame: x for x in fill_track(None, list(keys.values()), last=frames[-1], track=track)}
        scores = {f: iou(got[f], gt[f]) if f in got else -1.0 for f in frames if f not in keys}
        run: list[int] = []
        for f in frames:
            if f in keys:
                if run:
                    break
                continue
            if scores[f] < thr:
                run.append(f)
            elif run:
                break
        if not run:
            return len(keys)
        worst = min(run, key=scores.__getitem__)
        keys[worst] = gt[worst]


def sim_optimal(gt: dict[int, Box], fills: list[Callable[[Box, Box], list[Box]]], thr: float, span: int) -> int:
    """Fewest keyframes (spans up to `span` frames) such that on every span one of `fills` is good."""
    frames = sorted(gt)

    def good(fill: Callable[[Box, Box], list[Box]], i: int, j: int) -> bool:
        got = {x.frame: x for x in fill(gt[frames[i]], gt[frames[j]])}
        return all(f in got and iou(got[f], gt[f]) >= thr for f in frames[i + 1: j])

    def ok(i: int, j: int) -> bool:
        return any(good(fill, i, j) for fill in fills)

    best = [0] + [len(frames) + 1] * (len(frames) - 1)  # keyframes placed before index j, j excluded
    for j in range(1, len(frames)):
        for i in range(j - 1, max(-1, j - span - 1), -1):
            if best[i] + 1 < best[j] and ok(i, j):
                best[j] = best[i] + 1
    return best[-1] + 1


def sim_interp_optimal(gt: dict[int, Box], thr: float) -> int:
    """Fewest keyframes for which interpolation is good everywhere (an oracle's placement)."""
    frames = sorted(gt)

    def ok(i: int, j: int) -> bool:
        a, b = gt[frames[i]], gt[frames[j]]
        return all(iou(x, gt[x.frame]) >= thr for x in interpolate(a, b))

    best = [0] + [len(frames) + 1] * (len(frames) - 1)  # keyframes needed up to frame index j
    for j in range(1, len(frames)):
        for i in range(j - 1, -1, -1):
            if best[i] + 1 < best[j] and ok(i, j):
                best[j] = best[i] + 1
    return best[-1] + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="subset: fewer traffic tracks and trackers")
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--sequences", default="otb,uav,traffic")
    ap.add_argument("--trackers", default="medianflow,csrt", help="forward tracking with these, or 'all'")
    ap.add_argument("--fill-trackers", default="medianflow,csrt", help="fill_between with these")
    ap.add_argument("--modes", default="forward,interp,track,floor", help="also: fill")
    ap.add_argument("--track-trackers", default="csrt,medianflow", help="fill_track with these")
    ap.add_argument("--oracle-span", type=int, default=0,
                    help="also place fill_between keyframes optimally, spans up to N frames (slow: N tracks per frame)")
    args = ap.parse_args()
    # fastest first, so a long run shows its cheap figures early
    order = sorted(TRACKERS, key=["medianflow", "kcf", "csrt", "mil"].index)
    trackers = order if args.trackers == "all" else args.trackers.split(",")
    fill_trackers = args.fill_trackers.split(",")
    seqs = load_sequences(names=args.sequences.split(","))
    if args.quick:
        for s in seqs:
            if len(s.tracks) > 1:
                s.tracks = {t: s.tracks[t] for t in QUICK_TRAFFIC_TRACKS}
    rows: dict[str, dict[str, str]] = {}
    speed: dict[str, dict[str, str]] = {}

    def put(method: str, seq: Sequence, manual: int) -> None:
        total = sum(len(g) for g in seq.tracks.values())
        rows.setdefault(method, {})[seq.name] = f"{100.0 * manual / total:.1f}"
        print(f"  {seq.name:18s} {method:28s} {manual:4d} manual / {total} boxes = {100.0 * manual / total:5.1f} per 100",
              flush=True)

    for seq in seqs:
        for name in trackers if "forward" in args.modes else []:
            t0 = time.perf_counter()
            res = [sim_forward(seq, g, name, args.iou) for g in seq.tracks.values()]
            dt = time.perf_counter() - t0
            ups = sum(r[1] for r in res)
            speed.setdefault(name, {})[seq.name] = f"{1e3 * dt / max(1, ups):.1f}"
            put(f"forward {name}", seq, sum(r[0] for r in res))
        for strategy in ("first", "worst") if "interp" in args.modes else []:
            put(f"interpolation ({strategy} bad)", seq,
                sum(sim_keyframes(g, interpolate, args.iou, strategy) for g in seq.tracks.values()))
        if "interp" in args.modes:
            put("interpolation (oracle keys)", seq, sum(sim_interp_optimal(g, args.iou) for g in seq.tracks.values()))
        for name in fill_trackers if "fill" in args.modes else []:
            cache = TrackCache(seq, name)
            put(f"fill_between {name} (worst)", seq,
                sum(sim_keyframes(g, cache.fill, args.iou, "worst") for g in seq.tracks.values()))
            if args.oracle_span:
                cache = TrackCache(seq, name, reach=args.oracle_span)
                put(f"fill_between {name} (oracle)", seq,
                    sum(sim_optimal(g, [cache.fill], args.iou, args.oracle_span) for g in seq.tracks.values()))
                put(f"fill {name} | interp (oracle)", seq,
                    sum(sim_optimal(g, [interpolate, cache.fill], args.iou, args.oracle_span)
                        for g in seq.tracks.values()))

        for name in args.track_trackers.split(",") if "track" in args.modes else []:
            cache = TrackCache(seq, name)
            t0 = time.perf_counter()
            put(f"fill_track {name}", seq, sum(sim_fill_track(g, cache, args.iou) for g in seq.tracks.values()))
            print(f"    ({time.perf_counter() - t0:.1f} s)", flush=True)

        if "floor" in args.modes:
            put("fill_track (true centres)", seq,
                sum(sim_fill_track(g, gt_tracker(g), args.iou) for g in seq.tracks.values()))

    names = [s.name for s in seqs]
    print(f"\nManual boxes per 100 boxes (annotator redraws where IoU < {args.iou}); CVAT human on traffic: 11.2")
    print(f"{'method':30s}" + "".join(f"{n:>20s}" for n in names))
    for method, vals in rows.items():
        print(f"{method:30s}" + "".join(f"{vals.get(n, '-'):>20s}" for n in names))
    print("\nms per tracked box (update + checks, forward mode, frames in memory)")
    for name, vals in speed.items():
        print(f"{name:30s}" + "".join(f"{vals.get(n, '-'):>20s}" for n in names))


if __name__ == "__main__":
    main()
