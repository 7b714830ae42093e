"""Propagation speed at 1080p: app.tracking.propagate_many against the bare OpenCV tracker loop.

Real clip ../shared/data/cvat_coco_traffic/traffic_first90_1080p_h264.mp4, decoded once up front;
both sides read frames from the same list and track the same five vehicles of frame 0 (sizes
from 245x158 down to 24x60). The baseline is init + update per frame per tracker and nothing
else; ours adds box bookkeeping, the leave-the-frame test and the forward-backward check. Runs
alternate and the best of --repeat counts. Times are this process's CPU time with OpenCV on one
thread, so other load on a shared machine does not decide the ratio (wall time is noise there).

Run: .venv/bin/python benchmarks/bench_propagation.py [--quick] [--trackers csrt,kcf]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import Box  # noqa: E402
from app.tracking import TRACKERS, make_tracker, propagate_many  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cvat_coco_traffic"
TRACKS = (17, 19, 23, 27, 28)


def _frames(n: int) -> list:
    cap = cv2.VideoCapture(str(DATA / "traffic_first90_1080p_h264.mp4"))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def _starts() -> list[Box]:
    coco = json.loads((DATA / "instances_default.json").read_text())
    out = []
    for a in coco["annotations"]:
        tid = int(a["attributes"]["track_id"])
        if a["image_id"] == 1 and tid in TRACKS:
            out.append(Box.from_xywh(*a["bbox"], frame=0, track_id=tid, label="vehicle"))
    return sorted(out, key=lambda b: b.track_id)


def bare_loop(frames: list, starts: list[Box], name: str) -> float:
    t0 = time.process_time()
    trackers = []
    for b in starts:
        t = make_tracker(name)
        rect = (b.x1, b.y1, b.w, b.h) if name == "medianflow" else tuple(round(v) for v in (b.x1, b.y1, b.w, b.h))
        t.init(frames[0], rect)
        trackers.append(t)
    for frame in frames[1:]:
        for t in trackers:
            t.update(frame)
    return time.process_time() - t0


def ours(frames: list, starts: list[Box], name: str, fb_check: bool) -> float:
    t0 = time.process_time()
    propagate_many(frames.__getitem__, starts, 0, len(frames) - 1, tracker=name, fb_check=fb_check)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="30 frames, best of 2")
    ap.add_argument("--trackers", default=",".join(TRACKERS))
    ap.add_argument("--repeat", type=int, default=None)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    frames = _frames(30 if args.quick else 90)
    repeat = args.repeat or (2 if args.quick else 3)
    starts = _starts()
    updates = len(starts) * (len(frames) - 1)
    print(f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, {len(starts)} tracks, best of {repeat}")
    print(f"{'tracker':12s}{'bare ms/upd':>13s}{'ours ms/upd':>13s}{'ratio':>8s}{'no-fb ms/upd':>14s}{'ratio':>8s}")
    for name in args.trackers.split(","):
        base, mine, nofb = [], [], []
        for _ in range(repeat):
            base.append(bare_loop(frames, starts, name))
            mine.append(ours(frames, starts, name, fb_check=True))
            nofb.append(ours(frames, starts, name, fb_check=False))
        b, m, n = min(base), min(mine), min(nofb)
        print(f"{name:12s}{1e3 * b / updates:13.2f}{1e3 * m / updates:13.2f}{b / m:8.2f}"
              f"{1e3 * n / updates:14.2f}{b / n:8.2f}", flush=True)
    print("ratio = bare time / ours (>= 0.9 is the target; fb check on by default, MedianFlow skips it)")


if __name__ == "__main__":
    main()
