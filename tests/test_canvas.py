"""Boxes <-> canvas JSON and drawing diffs, without a browser."""
from __future__ import annotations

import pytest

from app.canvas import (
    Action,
    DrawnBox,
    boxes_to_fabric,
    diff,
    drawing_generation,
    fabric_to_boxes,
)
from app.domain import Box

STORED = [
    Box(100, 50, 300, 250, frame=4, label="car", track_id=7, source="manual", id=11, class_id=1),
    Box(1000, 500, 1200, 900, frame=4, label="person", track_id=8, source="tracked", id=12, class_id=2),
]
COLORS = {1: "#00ff00", 2: "#0000ff"}


def test_boxes_to_fabric_scales_colours_and_carries_ids():
    drawing = boxes_to_fabric(STORED, scale=0.5, colors=COLORS, generation=3)
    assert drawing_generation(drawing) == 3
    rects = [o for o in drawing["objects"] if o.get("visible", True)]
    assert [(o["left"], o["top"], o["width"], o["height"]) for o in rects] == [(50, 25, 100, 100), (500, 250, 100, 200)]
    assert [o["stroke"] for o in rects] == ["#00ff00", "#0000ff"]
    assert [o["label"] for o in rects] == ["car #7", "person #8"]
    assert [o["strokeDashOffset"] for o in rects] == [11, 12]
    assert rects[0]["strokeDashArray"] is None and rects[1]["strokeDashArray"]  # tracked boxes dashed


@pytest.mark.parametrize("scale", [0.25, 0.5, 0.6667, 1.0, 2.0])
def test_round_trip_is_exact_enough(scale):
    back = fabric_to_boxes(boxes_to_fabric(STORED, scale=scale, colors=COLORS), scale=scale)
    assert [b.box_id for b in back] == [11, 12]
    for b, s in zip(back, STORED, strict=True):
        assert max(abs(a - c) for a, c in zip((b.x1, b.y1, b.x2, b.y2), (s.x1, s.y1, s.x2, s.y2), strict=True)) < 0.05
    assert diff(STORED, back) == []


def test_fabric_to_boxes_applies_object_scale_and_origin():
    js = {"objects": [
        {"type": "LabeledRect", "left": 10, "top": 20, "width": 30, "height": 40, "scaleX": 2, "scaleY": 0.5,
         "strokeDashOffset": 11, "label": "car #7"},
        {"type": "LabeledRect", "left": 50, "top": 50, "width": 20, "height": 10, "originX": "center",
         "originY": "center", "label": "person"},
        {"type": "path", "left": 0, "top": 0},
    ]}
    got = fabric_to_boxes(js, scale=0.5)
    assert got == [DrawnBox(20, 40, 140, 80, 11, "car #7"), DrawnBox(80, 90, 120, 110, None, "person")]


def test_diff_finds_created_moved_and_deleted():
    drawn = [
        DrawnBox(110, 50, 310, 250, 11, "car #7"),  # moved 10 px
        DrawnBox(5, 5, 60, 60, None, "car"),  # drawn by the user
        DrawnBox(5, 5, 7, 7, None, "car"),  # a stray click, ignored
        DrawnBox(1, 1, 9, 9, 99, "gone"),  # deleted meanwhile: not recreated
    ]
    assert diff(STORED, drawn, min_new=4) == [
        Action("update", 11, (110, 50, 310, 250), "car #7"),
        Action("create", None, (5, 5, 60, 60), "car"),
        Action("delete", 12),
    ]


def test_diff_ignores_subpixel_jitter_and_generation_marker():
    drawing = boxes_to_fabric(STORED, scale=1.0, colors=COLORS, generation=9)
    drawing["objects"][1]["left"] += 0.3
    assert diff(STORED, fabric_to_boxes(drawing, scale=1.0)) == []
    assert drawing_generation({"objects": []}) is None and drawing_generation(None) is None
