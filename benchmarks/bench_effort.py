"""Labeling effort: manual boxes a simulated annotator needs per 100 boxes, per method.

Real sequences from ../shared/data: OTB Crossing (120 JPEG frames), UAV123 person11 (derived
100-frame mp4) and the CVAT traffic export (the 19 tracks in the derived 90-frame 1080p mp4).
The annotator draws the ground-truth box wherever the tool's box has IoU below --iou (0.7):

- forward <tracker>: draw on the track's first frame, propagate to its last; at the first bad
  frame draw and re-propagate from there (the frames before stay).
- interpolation: keyframes on the first and last frames; in every span with a bad frame add a
  keyframe at the first bad frame ("first") or the worst one ("worst"); repeat.
- fill_between <tracker>: the same keyframe loop (worst frame) with app.interpolate.fill_between.

Also prints ms per tracked box per tracker. `--quick` keeps 5 traffic tracks and two trackers.
Run: .venv/bin/python benchmarks/bench_effort.py [--quick]
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
from app.interpolate import fill_between, interpolate  # noqa: E402
from app.tracking import TRACKERS, track_steps  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="subset: fewer traffic tracks and trackers")
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--sequences", default="otb,uav,traffic")
    ap.add_argument("--trackers", default=None, help="comma list (default: all, or csrt,medianflow with --quick)")
    args = ap.parse_args()
    trackers = args.trackers.split(",") if args.trackers else (["csrt", "medianflow"] if args.quick else list(TRACKERS))
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
        getf = seq.frames.__getitem__
        for name in trackers:
            t0 = time.perf_counter()
            res = [sim_forward(seq, g, name, args.iou) for g in seq.tracks.values()]
            dt = time.perf_counter() - t0
            ups = sum(r[1] for r in res)
            speed.setdefault(name, {})[seq.name] = f"{1e3 * dt / max(1, ups):.1f}"
            put(f"forward {name}", seq, sum(r[0] for r in res))
        for strategy in ("first", "worst"):
            put(f"interpolation ({strategy} bad)", seq,
                sum(sim_keyframes(g, interpolate, args.iou, strategy) for g in seq.tracks.values()))
        for name in trackers:
            def fill(a: Box, b: Box, name: str = name, getf: Callable = getf) -> list[Box]:
                return fill_between(getf, a, b, tracker=name)
            put(f"fill_between {name} (worst)", seq,
                sum(sim_keyframes(g, fill, args.iou, "worst") for g in seq.tracks.values()))

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
