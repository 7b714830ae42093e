"""AppTest smoke test of the Label page; the canvas wrapper is replaced by a scripted 'user'."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import labels
from app.projects import create_project
from tests.test_labels import OTB, make_video, otb_gt

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "label.py")


class ScriptedCanvas:
    """Stands in for the browser: returns the drawing it was given, plus what the 'user' drew."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.draw: list[dict] = []

    def __call__(self, *, background, drawing, width, height, label, stroke):
        assert background[:3] == b"\xff\xd8\xff"  # JPEG bytes, not a PIL image
        self.calls.append({"drawing": drawing, "width": width, "height": height, "label": label})
        objects = list(drawing["objects"]) + self.draw
        self.draw = []
        return {"version": "6.0.0", "objects": objects}


@pytest.fixture
def fake_canvas(monkeypatch):
    fake = ScriptedCanvas()
    monkeypatch.setattr("pages.components.canvas.frame_canvas", fake)
    return fake


@pytest.fixture
def video(data_dir):
    project = create_project("crossing", ["person", "car"])
    vid = make_video(project.id, sorted((OTB / "img").glob("*.jpg"))[:12])
    return project, vid


def _app(project_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project_id
    return at


def test_page_renders_with_key_widgets(video, fake_canvas):
    project, vid = video
    labels.create_box(vid, 0, project.classes[0].id, otb_gt(0), "local")
    at = _app(project.id).run()
    assert not at.exception, at.exception
    keys = {b.key for b in at.button}
    assert {"label.prev", "label.next", "label.undo", "label.propagate", "label.review", "label.del_track"} <= keys
    assert at.selectbox(key="label.video").value == vid
    assert at.session_state["label.frame"] == 0 and at.slider(key=f"label.slider.{vid}.0").value == 0
    # the canvas got the frame scaled to fit, the stored box in display pixels, the class as label
    call = fake_canvas.calls[-1]
    assert (call["width"], call["height"], call["label"]) == (680, 453, "person")
    rect = call["drawing"]["objects"][1]
    assert rect["label"].startswith("person #") and abs(rect["left"] - otb_gt(0)[0] * 680 / 360) < 0.01


def test_drawing_on_the_canvas_saves_a_box_and_navigation_moves(video, fake_canvas):
    project, vid = video
    at = _app(project.id).run()
    assert not at.exception, at.exception
    gen_mark = fake_canvas.calls[-1]["drawing"]["objects"][0]
    assert gen_mark["visible"] is False
    # the 'user' drags a 85x34 display-px box: 45x18 original px at scale 680/360
    fake_canvas.draw = [{"type": "LabeledRect", "left": 188.89, "top": 75.56, "width": 85, "height": 34,
                         "scaleX": 1, "scaleY": 1, "label": "person"}]
    at.run()
    assert not at.exception, at.exception
    [box] = labels.frame_boxes(vid, 0)
    assert [round(v, 1) for v in (box.x1, box.y1, box.x2, box.y2)] == [100, 40, 145, 58]
    assert box.source == "manual"
    at.button(key="label.next").click().run()
    assert at.session_state["label.frame"] == 1
    assert at.slider(key=f"label.slider.{vid}.1").value == 1
    assert at.number_input(key=f"label.num.{vid}.1").value == 1
    # moving the slider goes there; a stale value of the frame it showed changes nothing
    at.slider(key=f"label.slider.{vid}.1").set_value(5).run()
    assert at.session_state["label.frame"] == 5
    at.button(key="label.undo").click().run()
    assert not at.exception, at.exception
    assert labels.frame_boxes(vid, 0) == []


def test_stale_drawing_is_never_saved(video, fake_canvas):
    """After the frame changes, the component returns the previous frame's drawing once: ignored."""
    project, vid = video
    labels.create_box(vid, 0, project.classes[0].id, otb_gt(0), "local")
    at = _app(project.id).run()
    old = fake_canvas.calls[-1]["drawing"]
    fake_canvas.__class__ = type("Stale", (ScriptedCanvas,), {
        "__call__": lambda self, **kw: (self.calls.append(kw), old)[1]})
    at.button(key="label.next").click().run()
    assert not at.exception, at.exception
    assert labels.frame_boxes(vid, 1) == [] and len(labels.frame_boxes(vid, 0)) == 1


def test_propagate_button_tracks_the_selected_box(video, fake_canvas):
    project, vid = video
    labels.create_box(vid, 0, project.classes[0].id, otb_gt(0), "local")
    at = _app(project.id).run()
    at.number_input(key="label.n_frames").set_value(5)
    at.button(key="label.propagate").click().run()
    assert not at.exception, at.exception
    assert [len(labels.frame_boxes(vid, f)) for f in range(7)] == [1, 1, 1, 1, 1, 1, 0]
    assert any("Propagated 1 track" in s.value for s in at.success)


def test_fill_button_tracks_between_keyframes_and_on(video, fake_canvas):
    project, vid = video
    first = labels.create_box(vid, 0, project.classes[0].id, otb_gt(0), "local")
    labels.create_box(vid, 6, project.classes[0].id, otb_gt(6), "local", track_id=first.track_id)
    at = _app(project.id).run()
    at.selectbox(key="label.tracker").set_value("medianflow")
    at.button(key="label.fill").click().run()
    assert not at.exception, at.exception
    boxes = [labels.frame_boxes(vid, f) for f in range(12)]
    assert all(len(b) == 1 and b[0].track_id == first.track_id for b in boxes)
    assert [b[0].source for b in boxes[:7]] == ["manual"] + ["tracked"] * 5 + ["manual"]
    assert all(b[0].source == "tracked" for b in boxes[7:])
    assert any("Filled track" in s.value for s in at.success)
