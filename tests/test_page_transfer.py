"""AppTest smoke test of the Import / Export page, with a real import through its widgets' app calls."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.projects import create_project
from app.store import db
from app.transfer import import_annotations

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "transfer.py")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("TPOD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TPOD_USERS_FILE", raising=False)
    p = create_project("page-transfer")
    yield p
    db.release()


def test_page_shows_import_and_export(project):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["project_id"] = project.id
    at.run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Import annotations", "Export dataset"]
    assert set(at.selectbox(key="transfer.in_format").options) == {
        "CVAT XML 1.1 (for video or for images)", "COCO detection JSON",
        "YOLO (Ultralytics data.yaml, or darknet obj.data)", "Pascal VOC XML"}
    assert at.button(key="transfer.import").disabled  # nothing uploaded yet
    assert at.checkbox(key="transfer.create_classes").value is True
    at.button(key="transfer.export").click().run()  # an empty project: a clear error, no exception
    assert not at.exception
    assert "nothing to export" in at.error[0].value


def test_page_exports_a_labeled_image_set(project):
    import_annotations(DATA / "cvat_images_xml_real" / "street_job4", project.id, "cvat")
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["project_id"] = project.id
    at.run()
    target = at.selectbox(key="transfer.target")
    assert len(target.options) == 2  # a new image set, or the imported one
    at.selectbox(key="transfer.out_format").set_value("coco")
    at.button(key="transfer.export").click().run()
    assert not at.exception and not at.error
    assert any("12 images, 125 boxes" in m.value for m in at.markdown)
