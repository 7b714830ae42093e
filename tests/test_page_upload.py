"""AppTest smoke tests for the Upload page."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app import ingest
from app.projects import create_project

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "datumaro_format_fixtures" / "cvat_dataset" / "test.mp4"


def _run(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "upload.py"), default_timeout=30)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def test_empty_project_shows_uploader_options_and_limit(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("TPOD_MAX_UPLOAD_MB", "300")
    p = create_project("up")
    at = _run(project_id=p.id)
    assert not at.exception
    assert [t.value for t in at.title] == ["Upload"]
    assert "Up to 300 MB per file" in at.caption[0].value
    assert at.number_input(key="upload.stride").value == 1
    assert at.selectbox(key="upload.max_side").value == "Original"
    assert at.number_input(key="upload.start") and at.number_input(key="upload.end")
    assert any("No videos in this project yet" in i.value for i in at.info)
    # submitting without files says so instead of failing
    at.button[0].click().run()
    assert not at.exception
    assert any("Choose at least one file" in w.value for w in at.warning)


def test_videos_are_listed_and_deleted_after_confirmation(data_dir: Path) -> None:
    p = create_project("up")
    [video] = ingest.ingest_now(p.id, [("clip one.mp4", CLIP)])
    at = _run(project_id=p.id)
    assert not at.exception
    text = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "clip one" in text and "240×180" in text and "30 frames" in text and "15.00 fps" in text
    assert len(at.get("image")) == 1  # the thumbnail strip
    at.button(key=f"upload.delete.{video['id']}").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key=f"upload.no.{video['id']}").click().run()
    assert ingest.list_videos(p.id)
    at.button(key=f"upload.delete.{video['id']}").click().run()
    at.button(key=f"upload.yes.{video['id']}").click().run()
    assert not at.exception
    assert ingest.list_videos(p.id) == []
    assert any("No videos in this project yet" in i.value for i in at.info)


def test_no_project_points_to_projects_page(data_dir: Path) -> None:
    at = _run()
    assert not at.exception
    assert any("Create a project first" in i.value for i in at.info)
