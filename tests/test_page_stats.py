"""AppTest smoke test of the Dataset health page: charts render for a labeled project, filters work."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.projects import create_project
from tests.test_stats import add_box, add_video

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "stats.py")


@pytest.fixture(autouse=True)
def _scratch(data_dir):
    """Every test here runs on the shared scratch data dir (tests/conftest.py)."""
    return data_dir


def test_charts_and_filters() -> None:
    project = create_project("health", ["car", "person"])
    car, person = (c.id for c in project.classes)
    vid = add_video(project.id, "a.mp4", 640, 480, 80)
    for i in range(5):
        add_box(vid, i, car, (10 + i, 10, 60, 50))
    add_box(vid, 2, person, (0, 0, 2, 2), author="bob")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project.id
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Dataset health"
    assert [m.label for m in at.metric][:2] == ["Boxes", "Frames"]
    assert at.metric[0].value == "6"
    assert len(at.get("vega_lite_chart")) >= 8
    assert any("tiny" in w.value for w in at.warning)
    assert any("79" in w.value and "not marked reviewed" in w.value for w in at.warning)  # the long gap
    at.multiselect(key="stats.classes").set_value([person]).run()
    assert not at.exception, at.exception
    assert at.metric[0].value == "1"


def test_empty_project_shows_a_hint() -> None:
    project = create_project("blank", ["x"])
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project.id
    at.run()
    assert not at.exception, at.exception
    assert any("No boxes" in i.value for i in at.info)
