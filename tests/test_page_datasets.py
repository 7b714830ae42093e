"""AppTest smoke test of the Datasets page: create a version from the form, list it, delete it with confirmation."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import datasets
from app.projects import create_project
from tests.test_datasets import add_video

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "datasets.py")


@pytest.fixture(autouse=True)
def _scratch(data_dir):
    """Every test here runs on the shared scratch data dir (tests/conftest.py)."""
    return data_dir


def _app(project_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project_id
    return at.run()


def test_create_list_and_delete() -> None:
    project = create_project("ds", ["car"])
    add_video(project.id, "only.mp4", 30, class_id=project.classes[0].id)
    at = _app(project.id)
    assert not at.exception, at.exception
    assert any("No dataset version yet" in i.value for i in at.info)
    assert at.text_input(key="datasets.name") and at.slider(key="datasets.val")

    # one video split by video: refused with advice, nothing created
    at.text_input(key="datasets.name").input("first")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert any("split='blocks'" in e.value for e in at.error)
    assert datasets.list_versions(project.id) == []

    at.radio(key="datasets.split").set_value("blocks")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Created" in s.value for s in at.success)
    [version] = datasets.list_versions(project.id)
    assert version["name"] == "first" and version["params"]["split"] == "blocks"
    assert len(at.dataframe) == 1 and len(at.expander) == 1

    at.button(key=f"datasets.delete.{version['id']}").click().run()
    assert any("Delete version" in w.value for w in at.warning)
    assert datasets.list_versions(project.id) != []  # not before confirming
    at.button(key=f"datasets.delete_yes.{version['id']}").click().run()
    assert not at.exception, at.exception
    assert datasets.list_versions(project.id) == []
    assert not Path(version["path"]).exists()
