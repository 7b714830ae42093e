"""Box propagation with OpenCV single-object trackers: pure functions, no database.

Boxes come in and go out in ORIGINAL video pixel coordinates; frames come from a `get_frame(i)`
callable at the stored (working) resolution, `scale` = original / stored. Every frame is read
once for all tracks. A track ends where its tracker reports failure, where the box leaves the
frame, or (``fb_check``) where a cheap forward-backward optical-flow check says the tracker
moved away from what the pixels in its box did.

Figures behind the choices here: benchmarks/bench_propagation.py (speed against the bare OpenCV
loop) and benchmarks/bench_effort.py (manual boxes a simulated annotator needs).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from app.domain import Box
from app.errors import BadInput

log = logging.getLogger(__name__)

TRACKERS: tuple[str, ...] = ("csrt", "kcf", "medianflow", "mil")
# bench_effort.py, manual boxes per 100 in forward tracking (OTB / UAV / traffic): CSRT 5.8 / 9.0
# / 13.2, MedianFlow 12.5 / 8.0 / 12.5, KCF 16.7 / 33.0 / 14.3, MIL 49.2 / 9.0 / -. CSRT is never
# far behind and far ahead on the small occluded pedestrian; MedianFlow is 10-25x faster per
# update and the choice when speed matters more (large, steadily moving objects).
DEFAULT_TRACKER: str = "csrt"

# A box mostly outside the frame is gone: the tracker would otherwise cling to the border.
MIN_VISIBLE_FRACTION = 0.5
# Forward-backward check: a step whose tracker motion disagrees with the optical flow of the
# box's own pixels by more than this fraction of the box size is suspect (on the real sequences
# in ../shared/data good steps stay under 0.15, jumps onto another object score 0.3-0.8)...
FB_MAX_DISAGREEMENT = 0.3
# ...and this many suspect steps in a row end the track, the suspect boxes dropped.
FB_SUSPECT_STEPS = 1
_FB_GRID = 6
_FB_SIDE = 40.0  # flow is computed on the box crop shrunk so its longer side is about this
_LK: dict[str, Any] = {
    "winSize": (9, 9),
    "maxLevel": 2,
    "criteria": (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 10, 0.03),
}


def make_tracker(name: str) -> Any:
    """A fresh OpenCV tracker by its tpod name (one of TRACKERS)."""
    if name == "csrt":
        return cv2.TrackerCSRT_create()
    if name == "kcf":
        return cv2.TrackerKCF_create()
    if name == "medianflow":
        return cv2.legacy.TrackerMedianFlow_create()
    if name == "mil":
        return cv2.TrackerMIL_create()
    raise BadInput(f"unknown tracker {name!r}: choose one of {', '.join(TRACKERS)}")


def _init_rect(name: str, xyxy: tuple[float, float, float, float]) -> tuple:
    x1, y1, x2, y2 = xyxy
    if name == "medianflow":  # legacy API takes Rect2d floats
        return (float(x1), float(y1), float(x2 - x1), float(y2 - y1))
    x, y = round(x1), round(y1)
    return (x, y, max(1, round(x2) - x), max(1, round(y2) - y))


def visible_fraction(xyxy: tuple[float, float, float, float], width: int, height: int) -> float:
    """Share of the box area that lies inside a width x height frame."""
    x1, y1, x2, y2 = xyxy
    area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    if area <= 0:
        return 0.0
    iw = min(x2, width) - max(x1, 0.0)
    ih = min(y2, height) - max(y1, 0.0)
    return max(0.0, iw) * max(0.0, ih) / area


def flow_disagreement(
    prev: np.ndarray, cur: np.ndarray, old: tuple[float, float, float, float], new: tuple[float, float, float, float]
) -> float:
    """How far a tracker's step old -> new strays from the optical flow of the old box's pixels.

    Points on a grid in `old` are tracked prev -> cur -> prev with pyramidal Lucas-Kanade; the
    half with the smallest forward-backward error gives the pixels' median motion. Returns the
    distance between that motion and the tracker's, as a fraction of the box's longer side
    (0 = agree), or inf when the flow itself is unreliable. Works on a small crop, so its cost
    does not grow with the frame size.
    """
    h, w = prev.shape[:2]
    ox1, oy1, ox2, oy2 = old
    bw, bh = max(1.0, ox2 - ox1), max(1.0, oy2 - oy1)
    side = max(bw, bh)
    margin = 0.5 * side
    cx1 = int(max(0, min(ox1, new[0]) - margin))
    cy1 = int(max(0, min(oy1, new[1]) - margin))
    cx2 = int(min(w, max(ox2, new[2]) + margin))
    cy2 = int(min(h, max(oy2, new[3]) + margin))
    if cx2 - cx1 < 4 or cy2 - cy1 < 4:
        return float("inf")
    f = min(1.0, _FB_SIDE / side)
    a = prev[cy1:cy2, cx1:cx2]
    b = cur[cy1:cy2, cx1:cx2]
    if f < 1.0:
        size = (max(8, int((cx2 - cx1) * f)), max(8, int((cy2 - cy1) * f)))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / (cx2 - cx1), size[1] / (cy2 - cy1)
    else:
        fx = fy = 1.0
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)
        b = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY)
    gx = (np.linspace(ox1, ox2, _FB_GRID + 2)[1:-1] - cx1) * fx
    gy = (np.linspace(oy1, oy2, _FB_GRID + 2)[1:-1] - cy1) * fy
    pts = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 1, 2).astype(np.float32)
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, **_LK)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, fwd, None, **_LK)
    ok = (st1[:, 0] == 1) & (st2[:, 0] == 1)
    if ok.sum() < len(pts) // 4:
        return float("inf")
    fb = np.linalg.norm((pts - back)[:, 0], axis=1)[ok]
    motion = (fwd - pts)[:, 0][ok]
    best = fb <= np.median(fb)
    if np.median(fb) > 0.25 * side * max(fx, fy):  # the box's own pixels cannot be followed
        return float("inf")
    dx = float(np.median(motion[best, 0])) / fx
    dy = float(np.median(motion[best, 1])) / fy
    tx = (new[0] + new[2] - ox1 - ox2) / 2.0
    ty = (new[1] + new[3] - oy1 - oy2) / 2.0
    return float(np.hypot(tx - dx, ty - dy)) / side


@dataclass
class _Track:
    start: Box
    tracker: Any
    xyxy: tuple[float, float, float, float]  # stored-frame coordinates
    suspect: int = 0
    alive: bool = True


@dataclass(frozen=True)
class Step:
    """One frame of propagation: the boxes found, and the tracks that ended on it.

    `ended` maps a track id to how many of its boxes handed out on EARLIER steps to take back:
    0 for a tracker failure or a box leaving the frame, FB_SUSPECT_STEPS - 1 when the
    forward-backward check ended it (those steps were already suspect).
    """

    frame: int
    boxes: dict[int, Box]
    ended: dict[int, int]


def track_steps(
    get_frame: Callable[[int], np.ndarray],
    starts: list[Box],
    start: int,
    stop: int,
    *,
    tracker: str = DEFAULT_TRACKER,
    scale: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
    fb_check: bool = True,
) -> Iterator[Step]:
    """Yield one Step per frame after `start` up to `stop` (inclusive) while any track lives.

    The lazy form of `propagate_many`: a caller that stops consuming stops the tracking (the
    effort benchmark corrects at the first bad frame this way). `starts` are boxes on frame
    `start` in original coordinates, each with a distinct track_id.
    """
    if tracker not in TRACKERS:
        make_tracker(tracker)  # raises BadInput naming the choices
    if scale <= 0:
        raise BadInput(f"scale must be > 0, got {scale}")
    ids = [b.track_id for b in starts]
    if len(set(ids)) != len(ids):
        raise BadInput(f"propagation needs distinct track ids on frame {start}, got {ids}")
    if not starts or stop == start:
        return
    step = 1 if stop > start else -1
    frame = get_frame(start)
    fh, fw = frame.shape[:2]
    # MedianFlow's own update already rejects steps by forward-backward error; a second check
    # would only cost time.
    check = fb_check and tracker != "medianflow"
    tracks: list[_Track] = []
    for b in starts:
        xyxy = (b.x1 / scale, b.y1 / scale, b.x2 / scale, b.y2 / scale)
        t = make_tracker(tracker)
        t.init(frame, _init_rect(tracker, xyxy))
        tracks.append(_Track(start=b, tracker=t, xyxy=xyxy))
    prev = frame
    for i in range(start + step, stop + step, step):
        if should_stop is not None and should_stop():
            return
        live = [t for t in tracks if t.alive]
        if not live:
            return
        frame = get_frame(i)
        found: dict[int, Box] = {}
        ended: dict[int, int] = {}
        for t in live:
            tid = t.start.track_id
            ok, (x, y, w, h) = t.tracker.update(frame)
            new = (float(x), float(y), float(x + w), float(y + h))
            if not ok or w < 1 or h < 1 or visible_fraction(new, fw, fh) < MIN_VISIBLE_FRACTION:
                t.alive = False
                ended[tid] = 0  # type: ignore[index]
                log.debug("track %s ends on frame %d: %s", tid, i, "left the frame" if ok else "tracker lost it")
                continue
            if check:
                if flow_disagreement(prev, frame, t.xyxy, new) > FB_MAX_DISAGREEMENT:
                    t.suspect += 1
                    if t.suspect >= FB_SUSPECT_STEPS:
                        t.alive = False
                        ended[tid] = FB_SUSPECT_STEPS - 1  # type: ignore[index]
                        log.debug("track %s ends on frame %d: drift", tid, i)
                        continue
                else:
                    t.suspect = 0
            t.xyxy = new
            sb = t.start
            found[tid] = Box(  # type: ignore[index]
                max(0.0, new[0]) * scale, max(0.0, new[1]) * scale,
                min(float(fw), new[2]) * scale, min(float(fh), new[3]) * scale,
                frame=i, label=sb.label, track_id=tid, source="tracked", class_id=sb.class_id,
            )
        prev = frame
        yield Step(i, found, ended)


def propagate_many(
    get_frame: Callable[[int], np.ndarray],
    starts: list[Box],
    start: int,
    stop: int,
    *,
    tracker: str = DEFAULT_TRACKER,
    scale: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    fb_check: bool = True,
) -> dict[int, list[Box]]:
    """Track every box of `starts` (on frame `start`) towards `stop`, inclusive; stop < start goes back.

    Returns {track_id: [Box on each frame after start, in order of tracking]} with
    source="tracked" and label/class_id/track_id copied. A list ends where its track ended
    (tracker failure, box mostly outside the frame, forward-backward drift; for drift the
    suspect boxes just before are dropped too). When should_stop() turns True the boxes done so
    far come back. on_progress(done, total) counts frames.
    """
    out: dict[int, list[Box]] = {b.track_id: [] for b in starts}  # type: ignore[misc]
    total = abs(stop - start)
    steps = track_steps(
        get_frame, starts, start, stop, tracker=tracker, scale=scale, should_stop=should_stop, fb_check=fb_check
    )
    for done, st in enumerate(steps, 1):
        for tid, box in st.boxes.items():
            out[tid].append(box)
        for tid, drop in st.ended.items():
            if drop:
                del out[tid][max(0, len(out[tid]) - drop):]
        if on_progress is not None:
            on_progress(done, total)
    return out
