"""labels.fill_track on a real frame store (OTB Crossing frames) with real trackers."""
from __future__ import annotations

import numpy as np
import pytest

from app import labels
from app.domain import Box, iou
from app.errors import BadInput
from app.projects import create_project
from tests.test_labels import OTB, make_video, otb_gt


@pytest.fixture
def otb(data_dir):
    """(video id, person class id) on the first 40 OTB Crossing frames."""
    project = create_project("crossing", ["person", "car"])
    vid = make_video(project.id, sorted((OTB / "img").glob("*.jpg"))[:40])
    return vid, project.classes[0].id


def _gt(f: int) -> Box:
    return Box(*otb_gt(f), frame=f)


def test_fill_track_replaces_derived_boxes_and_keeps_manual_ones(otb):
    vid, person = otb
    a = labels.create_box(vid, 0, person, otb_gt(0), "ann")
    labels.propagate(vid, [a.track_id], 0, 10, tracker="medianflow", author="ann")
    k = labels.create_box(vid, 25, person, otb_gt(25), "ann", track_id=a.track_id)
    res = labels.fill_track(a.track_id, "ann", tracker="csrt")
    # frames 1-24 between the keys, 26-39 after the last one; the 10 propagated boxes replaced
    assert (res["keyframes"], res["replaced"], res["written"], res["stopped"]) == (2, 10, 38, False)
    assert labels.timeline(vid) == ["manual"] + ["tracked"] * 24 + ["manual"] + ["tracked"] * 14
    assert [b.id for b in labels.frame_boxes(vid, 25)] == [k.id]
    boxes = [labels.frame_boxes(vid, f)[0] for f in range(1, 40) if f != 25]
    assert {(b.track_id, b.source, b.label) for b in boxes} == {(a.track_id, "tracked", "person")}
    ious = [iou(b, _gt(b.frame)) for b in boxes]
    assert np.mean(ious) > 0.75  # measured 0.81
    # again: replaces, does not duplicate; one undo step brings the propagated boxes back
    labels.fill_track(a.track_id, "ann", tracker="csrt")
    assert all(len(labels.frame_boxes(vid, f)) == 1 for f in range(40))
    assert labels.undo_last(vid, "ann") == "fill_track"
    assert labels.undo_last(vid, "ann") == "fill_track"
    assert labels.timeline(vid)[:12] == ["manual"] + ["tracked"] * 10 + ["none"]


def test_fill_track_without_extension_leaves_the_rest(otb):
    vid, person = otb
    a = labels.create_box(vid, 5, person, otb_gt(5), "ann")
    labels.create_box(vid, 9, person, otb_gt(9), "ann", track_id=a.track_id)
    seen: list[tuple[int, int]] = []
    res = labels.fill_track(a.track_id, "ann", tracker="medianflow", to_end=False,
                            on_progress=lambda d, t: seen.append((d, t)))
    assert res["written"] == 3
    assert [f for f, s in enumerate(labels.timeline(vid)) if s != "none"] == [5, 6, 7, 8, 9]
    assert seen and seen[-1][1] == 8 and all(d <= t for d, t in seen)


def test_fill_track_refuses_what_it_cannot_do(otb):
    vid, person = otb
    a = labels.create_box(vid, 0, person, otb_gt(0), "ann")
    with pytest.raises(BadInput, match="unknown tracker"):
        labels.fill_track(a.track_id, "ann", tracker="nope")
    assert labels.fill_track(a.track_id, "ann", tracker="csrt", should_stop=lambda: True)["stopped"] is True
    assert labels.timeline(vid)[1] == "none"
