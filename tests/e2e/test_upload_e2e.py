"""A user uploads the OTB clip through the real file input, the real worker ingests it, and the
video shows up with its 120 frames and a thumbnail strip; a text file named .mp4 is refused."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import ingest, jobstate
from app.projects import create_project
from app.store import db
from tests.conftest import SHARED
from tests.e2e.conftest import shot, wait_idle

pytestmark = pytest.mark.e2e

CLIP = SHARED / "otb_crossing" / "crossing_h264.mp4"


def read(fn: Callable[[], Any]) -> Any:
    """Read the store, then let go of the DuckDB file so the server can take it."""
    try:
        return fn()
    finally:
        db.release()


def open_upload(page, url: str) -> None:
    page.goto(url)
    page.get_by_text("Worker online").wait_for(timeout=60000)
    page.get_by_role("link", name="Upload").first.click()
    wait_idle(page)
    page.get_by_role("heading", name="Upload").wait_for()


def choose_file(page, path: Path) -> None:
    """Through the uploader's real <input type=file>, as a file picker would."""
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for()  # listed in the uploader: the bytes reached the server
    wait_idle(page)


def test_upload_a_video_and_see_it_ingested(server, page) -> None:
    project = create_project("crossing", ["person"])
    db.release()
    open_upload(page, server.url)
    page.get_by_text("No videos in this project yet").wait_for()

    choose_file(page, CLIP)
    page.get_by_role("button", name="Upload and ingest").click()
    page.get_by_text("Started 1 ingest job").wait_for()
    # the progress line is a fragment polling the job that the worker runs
    page.get_by_text("ingest crossing_h264.mp4 — done").wait_for(timeout=120000)
    wait_idle(page)
    page.get_by_text("crossing_h264.mp4").first.wait_for()
    facts = page.get_by_text("120 frames")
    facts.wait_for()
    assert "360×240" in facts.inner_text() and "30.00 fps" in facts.inner_text()
    # the thumbnail strip is an image the browser decoded, not a broken link
    thumbs = page.locator("[data-testid='stImage'] img")
    thumbs.first.wait_for()
    size = thumbs.first.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size[0] and size[1] > 4 * size[2] > 0, size  # 8 frames side by side
    thumbs.first.scroll_into_view_if_needed()
    shot(page, "upload_ingested")

    [video] = read(lambda: ingest.list_videos(project.id))
    assert video["status"] == "ready" and video["frame_count"] == 120 and video["name"] == "crossing_h264.mp4"
    [job] = read(lambda: jobstate.list_jobs(project_id=project.id, kinds=("ingest",)))
    assert job["state"] == "done"


def test_a_text_file_named_mp4_is_refused(server, page, tmp_path: Path) -> None:
    project = create_project("crossing", ["person"])
    db.release()
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video, just some text that pretends to be one\n" * 20)
    open_upload(page, server.url)

    choose_file(page, fake)
    page.get_by_role("button", name="Upload and ingest").click()
    wait_idle(page)
    error = page.locator("[data-testid='stAlertContentError']").first
    error.wait_for()
    message = error.inner_text()
    assert "holiday.mp4" in message and "not a readable video" in message, message
    shot(page, "upload_refused")
    assert page.get_by_text("Started").count() == 0
    page.get_by_text("No videos in this project yet").wait_for()

    assert read(lambda: ingest.list_videos(project.id)) == []
    assert read(lambda: jobstate.list_jobs(project_id=project.id)) == []
    staged = server.data_dir / "uploads"
    assert not staged.exists() or not [p for p in staged.rglob("*") if p.is_file()]
