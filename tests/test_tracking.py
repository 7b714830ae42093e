from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.domain import Box, iou
from app.errors import BadInput
from app.tracking import DEFAULT_TRACKER, TRACKERS, flow_disagreement, make_tracker, propagate_many, visible_fraction

OTB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "otb_crossing"

W, H, SIDE, STEP = 160, 120, 24, 4  # synthetic scene at ORIGINAL resolution


def _scene(n: int, x0: int = 20, y0: int = 40, dx: int = STEP, scale: int = 1) -> tuple[list[np.ndarray], list[Box]]:
    """A textured square sliding right over a textured background, stored at 1/scale."""
    rng = np.random.default_rng(7)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (H, W + 400, 3), dtype=np.uint8), (5, 5), 0)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8), (3, 3), 0)
    frames, truth = [], []
    for i in range(n):
        x = x0 + dx * i
        img = bg[:, 2 * i: 2 * i + W].copy()  # a slowly panning background
        if x + SIDE <= W:
            img[y0: y0 + SIDE, x: x + SIDE] = patch
        else:
            img[y0: y0 + SIDE, x: W] = patch[:, : max(0, W - x)]
        frames.append(cv2.resize(img, (W // scale, H // scale), interpolation=cv2.INTER_AREA) if scale > 1 else img)
        truth.append(Box(x, y0, x + SIDE, y0 + SIDE, frame=i))
    return frames, truth


def test_tracker_names() -> None:
    assert TRACKERS == ("csrt", "kcf", "medianflow", "mil")
    assert DEFAULT_TRACKER in TRACKERS
    for name in TRACKERS:
        assert hasattr(make_tracker(name), "update")


def test_unknown_tracker_is_refused() -> None:
    with pytest.raises(BadInput, match="unknown tracker 'boosting'"):
        make_tracker("boosting")
    with pytest.raises(BadInput, match="unknown tracker"):
        propagate_many(lambda i: np.zeros((8, 8, 3), np.uint8), [Box(1, 1, 4, 4, track_id=1)], 0, 3, tracker="boosting")


def test_duplicate_track_ids_are_refused() -> None:
    frames, truth = _scene(3)
    with pytest.raises(BadInput, match="distinct track ids"):
        propagate_many(frames.__getitem__, [truth[0].moved(track_id=1)] * 2, 0, 2)


@pytest.mark.parametrize("tracker", ["csrt", "medianflow"])
def test_forward_on_stored_frames_at_half_scale(tracker: str) -> None:
    frames, truth = _scene(12, scale=2)
    start = truth[0].moved(label="car", track_id=5, class_id=3)
    got = propagate_many(frames.__getitem__, [start], 0, 11, tracker=tracker, scale=2.0)[5]
    assert [b.frame for b in got] == list(range(1, 12))
    assert {(b.source, b.label, b.track_id, b.class_id) for b in got} == {("tracked", "car", 5, 3)}
    # boxes come back in ORIGINAL coordinates, not in the half-size stored ones
    assert min(iou(b, truth[b.frame]) for b in got) > 0.6


def test_backward_direction() -> None:
    frames, truth = _scene(12)
    got = propagate_many(frames.__getitem__, [truth[11].moved(track_id=1)], 11, 2, tracker="csrt")[1]
    assert [b.frame for b in got] == list(range(10, 1, -1))
    assert min(iou(b, truth[b.frame]) for b in got) > 0.6


def test_track_stops_when_the_box_leaves_the_frame() -> None:
    # the square reaches the right border around frame 30 and is half out by frame 33
    frames, truth = _scene(40, x0=8, dx=4)
    got = propagate_many(frames.__getitem__, [truth[0].moved(track_id=1)], 0, 39, tracker="medianflow")[1]
    assert got, "tracked nothing"
    assert got[-1].frame < 36
    assert all(b.x2 <= W for b in got)
    assert max(iou(b, truth[b.frame]) for b in got[:20]) > 0.6


def test_should_stop_and_progress() -> None:
    frames, truth = _scene(12)
    calls = {"n": 0}
    progress: list[tuple[int, int]] = []

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    got = propagate_many(frames.__getitem__, [truth[0].moved(track_id=1)], 0, 11, tracker="medianflow",
                         should_stop=stop, on_progress=lambda d, t: progress.append((d, t)))[1]
    assert [b.frame for b in got] == [1, 2, 3, 4]
    assert progress == [(1, 11), (2, 11), (3, 11), (4, 11)]


def test_many_tracks_share_each_frame_read() -> None:
    frames, truth = _scene(8)
    reads: list[int] = []

    def get(i: int) -> np.ndarray:
        reads.append(i)
        return frames[i]

    other = Box(100, 80, 130, 110)  # a patch of background: still trackable texture
    got = propagate_many(get, [truth[0].moved(track_id=1), other.moved(track_id=2)], 0, 7, tracker="kcf")
    assert sorted(reads) == list(range(8))
    assert set(got) == {1, 2}


def test_visible_fraction() -> None:
    assert visible_fraction((0, 0, 10, 10), 20, 20) == 1.0
    assert visible_fraction((15, 0, 25, 10), 20, 20) == pytest.approx(0.5)
    assert visible_fraction((30, 30, 40, 40), 20, 20) == 0.0


def test_flow_disagreement_spots_a_jump() -> None:
    frames, truth = _scene(3)
    good = truth[1]
    old = (truth[0].x1, truth[0].y1, truth[0].x2, truth[0].y2)
    assert flow_disagreement(frames[0], frames[1], old, (good.x1, good.y1, good.x2, good.y2)) < 0.15
    jump = (good.x1 + 20, good.y1 + 20, good.x2 + 20, good.y2 + 20)
    assert flow_disagreement(frames[0], frames[1], old, jump) > 0.3


def _otb(n: int) -> tuple[list[np.ndarray], list[Box]]:
    frames = [cv2.imread(str(OTB / "img" / f"{i:04d}.jpg")) for i in range(1, n + 1)]
    gt = []
    for i, line in enumerate((OTB / "groundtruth_rect.txt").read_text().split("\n")[:n]):
        x, y, w, h = (float(v) for v in line.replace(",", "\t").split())
        gt.append(Box.from_xywh(x, y, w, h, frame=i, track_id=1))
    return frames, gt


# Measured over frames 1-29 of OTB Crossing (frames tracked, mean IoU): csrt 29 0.83,
# medianflow 29 0.69, kcf 10 0.73 (KCF reports failure at frame 11); asserted with a margin.
@pytest.mark.parametrize(("tracker", "floor", "least"), [("csrt", 0.75, 29), ("medianflow", 0.62, 29), ("kcf", 0.65, 5)])
def test_real_pedestrian_first_30_frames(tracker: str, floor: float, least: int) -> None:
    frames, gt = _otb(30)
    got = propagate_many(frames.__getitem__, [gt[0]], 0, 29, tracker=tracker)[1]
    assert len(got) >= least
    assert np.mean([iou(b, gt[b.frame]) for b in got]) > floor
