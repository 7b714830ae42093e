"""Boxes between two keyframes: linear interpolation, and tracker fill with a fallback.

`interpolate` is CVAT's default for a track's frames between keyframes. `fill_between` tracks
forward from the first keyframe and backward from the second, corrects each direction's drift
with what it reached at the far keyframe, blends the two by distance, and falls back to
interpolation where neither direction holds or neither reached the other keyframe. `fill_track`
does that for every span of a track's keyframes and follows the last keyframe with the tracker.
benchmarks/bench_effort.py measures how many manual boxes each costs a simulated annotator.

Trackers give the box's centre; its size comes from the keyframes (linear between two, held
after the last). Trackers' scale estimates were the main IoU killer: on OTB Crossing, CSRT's
centres from frame 0 keep IoU >= 0.68 on all 119 frames when given the true size, but its own
sizes fall below 0.7 on a quarter of them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.domain import Box, iou
from app.errors import BadInput
from app.tracking import DEFAULT_TRACKER, propagate_many

# The two directions count as agreeing on a frame above this IoU; then both are blended.
AGREE_IOU = 0.5
# A direction's drift is corrected towards the far keyframe only when it ended near it: a track
# that reached the far end on the wrong object would be dragged across the frame. When neither
# direction gets there, the trackers are not trusted at all: interpolation is the better guess.
# bench_effort.py, MedianFlow fill with the trackers' own sizes, manual boxes per 100 on OTB / UAV
# / traffic: without that fallback 9.2 / 8.0 / 10.7, with it at 0.3 10.8 / 8.0 / 5.4, at 0.5 10.0 /
# 12.0 / 5.1. With sizes from the keyframes (now): 10.8 / 7.0 on OTB / UAV, CSRT 5.8 / 9.0.
REACH_IOU = 0.3


def _check_pair(a: Box, b: Box) -> None:
    if b.frame <= a.frame:
        raise BadInput(f"keyframes out of order: frame {a.frame} then frame {b.frame}")


def _lerp(a: Box, b: Box, t: float) -> tuple[float, float, float, float]:
    return (
        a.x1 + (b.x1 - a.x1) * t,
        a.y1 + (b.y1 - a.y1) * t,
        a.x2 + (b.x2 - a.x2) * t,
        a.y2 + (b.y2 - a.y2) * t,
    )


def interpolate(a: Box, b: Box) -> list[Box]:
    """Linear interpolation of xyxy for every frame strictly between a.frame and b.frame."""
    _check_pair(a, b)
    n = b.frame - a.frame
    return [
        Box(*_lerp(a, b, k / n), frame=a.frame + k, label=a.label, track_id=a.track_id,
            source="interpolated", class_id=a.class_id)
        for k in range(1, n)
    ]


def _xyxy(b: Box) -> np.ndarray:
    return np.array([b.x1, b.y1, b.x2, b.y2], dtype=float)


def fill_between(
    get_frame: Callable[[int], np.ndarray],
    a: Box,
    b: Box,
    *,
    tracker: str = DEFAULT_TRACKER,
    scale: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
) -> list[Box]:
    """Boxes for the frames strictly between keyframes a and b, from trackers run both ways.

    Forward from a and backward from b (each ending early on tracker failure, the box leaving
    the frame or forward-backward drift). A direction that reached the far keyframe close to it
    (IoU >= REACH_IOU) has its drift spread linearly over the span and removed; when neither
    did, the whole span is the linear interpolation. Otherwise, on each frame: both directions
    agreeing are blended with weights by distance to their keyframe; disagreeing, the one
    nearer its own keyframe wins; one alone is used as is; none gives the linear interpolation.
    Only the centres come from the trackers: sizes are interpolated between a's and b's.
    Returns source="tracked" boxes in frame order (only what was done if should_stop fires).
    """
    _check_pair(a, b)
    if b.frame - a.frame < 2:
        return []
    key = 0  # one track at a time: the caller's track id may be None
    fwd = propagate_many(get_frame, [a.moved(track_id=key)], a.frame, b.frame,
                         tracker=tracker, scale=scale, should_stop=should_stop)[key]
    if should_stop is not None and should_stop():
        return []
    bwd = propagate_many(get_frame, [b.moved(track_id=key)], b.frame, a.frame,
                         tracker=tracker, scale=scale, should_stop=should_stop)[key]
    if should_stop is not None and should_stop():
        return []
    return blend(a, b, fwd, bwd)


def _sized(xyxy: np.ndarray, size: Box) -> tuple[float, float, float, float]:
    """xyxy's centre with the width and height of `size`."""
    cx, cy = (xyxy[0] + xyxy[2]) / 2.0, (xyxy[1] + xyxy[3]) / 2.0
    hw, hh = (size.x2 - size.x1) / 2.0, (size.y2 - size.y1) / 2.0
    return (float(cx - hw), float(cy - hh), float(cx + hw), float(cy + hh))


def blend(a: Box, b: Box, fwd: list[Box], bwd: list[Box], *, keep_tracker_size: bool = False) -> list[Box]:
    """Combine a forward track from keyframe a and a backward one from b (see fill_between).

    The trackers place each box's centre; its width and height are interpolated linearly
    between a's and b's (`keep_tracker_size` keeps the trackers' own sizes instead).
    Pure: `fwd` may run past b and `bwd` past a (boxes outside the span are ignored beyond the
    far keyframe itself), so callers holding longer tracks from a keyframe can reuse them.
    """
    _check_pair(a, b)
    n = b.frame - a.frame
    lin = interpolate(a, b)
    f = {x.frame: _xyxy(x) for x in fwd if a.frame < x.frame <= b.frame}
    g = {x.frame: _xyxy(x) for x in bwd if a.frame <= x.frame < b.frame}
    # Drift at the far end, spread linearly: zero at the own keyframe, all of it at the far one.
    f_err = _xyxy(b) - f[b.frame] if b.frame in f and iou(tuple(f[b.frame]), b) >= REACH_IOU else None
    g_err = _xyxy(a) - g[a.frame] if a.frame in g and iou(tuple(g[a.frame]), a) >= REACH_IOU else None
    if f_err is None and g_err is None:
        return [x.moved(source="tracked") for x in lin]
    out: list[Box] = []
    for k in range(1, n):
        fr = a.frame + k
        wf = (n - k) / n  # weight of the forward track: 1 next to a, 0 next to b
        fb = f.get(fr)
        gb = g.get(fr)
        if fb is not None and f_err is not None:
            fb = fb + f_err * (k / n)
        if gb is not None and g_err is not None:
            gb = gb + g_err * ((n - k) / n)
        if fb is not None and gb is not None:
            if iou(tuple(fb), tuple(gb)) >= AGREE_IOU:
                xyxy = wf * fb + (1 - wf) * gb
            else:
                xyxy = fb if wf >= 0.5 else gb
        elif fb is not None:
            xyxy = fb
        elif gb is not None:
            xyxy = gb
        else:
            out.append(lin[k - 1].moved(source="tracked"))
            continue
        if keep_tracker_size:
            x1, y1, x2, y2 = (float(v) for v in xyxy)
        else:
            x1, y1, x2, y2 = _sized(xyxy, lin[k - 1])
        out.append(Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), frame=fr, label=a.label,
                       track_id=a.track_id, source="tracked", class_id=a.class_id))
    return out


def extend(a: Box, fwd: list[Box]) -> list[Box]:
    """Boxes after the last keyframe a: the tracker's centres with a's width and height."""
    return [Box(*_sized(_xyxy(x), a), frame=x.frame, label=a.label, track_id=a.track_id, source="tracked",
                class_id=a.class_id, confidence=x.confidence) for x in fwd]


# track(box, stop) -> boxes after box.frame towards stop (inclusive), ending where tracking ended.
TrackFn = Callable[[Box, int], list[Box]]


def fill_track(
    get_frame: Callable[[int], np.ndarray] | None,
    keys: Sequence[Box],
    *,
    last: int | None = None,
    tracker: str = DEFAULT_TRACKER,
    scale: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
    track: TrackFn | None = None,
) -> list[Box]:
    """Every derived box of one track from its keyframes: `blend` in each span, `extend` after.

    `keys` are the track's manual boxes (any order, distinct frames). Spans of adjacent keys
    are skipped; after the last key the tracker runs on to `last` (None: no extension) and
    stops where it loses the object. `track` replaces the tracking (a cache, in the effort
    benchmark); by default each keyframe is tracked with `propagate_many` on `get_frame`.
    Returns source="tracked" boxes in frame order; when should_stop fires, those done so far.
    """
    ks = sorted(keys, key=lambda k: k.frame)
    if len({k.frame for k in ks}) != len(ks):
        raise BadInput(f"two keyframes on one frame in {[k.frame for k in ks]}")
    if track is None:
        if get_frame is None:
            raise BadInput("fill_track needs frames (get_frame) or a track function")

        def track(box: Box, stop: int) -> list[Box]:
            key = 0  # one track at a time: the caller's track id may be None
            got = propagate_many(get_frame, [box.moved(track_id=key)], box.frame, stop, tracker=tracker,
                                 scale=scale, should_stop=should_stop)[key]
            return [x.moved(track_id=box.track_id) for x in got]

    out: list[Box] = []
    for a, b in zip(ks, ks[1:], strict=False):
        if b.frame - a.frame < 2:
            continue
        fwd, bwd = track(a, b.frame), track(b, a.frame)
        if should_stop is not None and should_stop():
            return out
        out += blend(a, b, fwd, bwd)
    if ks and last is not None and last > ks[-1].frame:
        fwd = track(ks[-1], last)
        if should_stop is not None and should_stop():
            return out
        out += extend(ks[-1], fwd)
    return out
