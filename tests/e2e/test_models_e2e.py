"""A user renders a model's preview clip on the Models page and Chromium plays it: the H.264 mp4
that app.predict writes is decoded by a real browser (readyState HAVE_ENOUGH_DATA, currentTime
advances, the decoded frame is a picture)."""
from __future__ import annotations

import pytest

from app import ingest
from app.projects import create_project
from app.store import db
from tests._tiny_model import add_model_row, tiny_model
from tests.conftest import SHARED
from tests.e2e.conftest import shot, wait_idle

pytestmark = pytest.mark.e2e

CLIP = SHARED / "otb_crossing" / "crossing_h264.mp4"

# What the <video> element says about itself, and a few statistics of its current frame drawn
# onto a canvas (a broken decode shows as a blank or black picture).
VIDEO_STATE = """v => {
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    let mean = 0, spread = 0;
    if (c.width) {
        const ctx = c.getContext('2d');
        ctx.drawImage(v, 0, 0);
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        let sum = 0, sq = 0;
        for (let i = 0; i < px.length; i += 4) {
            const g = (px[i] + px[i + 1] + px[i + 2]) / 3;
            sum += g; sq += g * g;
        }
        const n = px.length / 4;
        mean = sum / n; spread = Math.sqrt(sq / n - mean * mean);
    }
    return {ready: v.readyState, time: v.currentTime, duration: v.duration, paused: v.paused,
            error: v.error && v.error.code, width: v.videoWidth, height: v.videoHeight,
            mean, spread, src: v.currentSrc};
}"""


@pytest.fixture(scope="module")
def weights():
    return tiny_model()  # cached under /tmp after its first training


def test_preview_clip_plays_in_chromium(server, page, weights) -> None:
    project = create_project("crossing", ["person"])
    [video] = ingest.ingest_now(project.id, [(CLIP.name, CLIP)])
    add_model_row(project.id, weights, ["person"], name="tiny")
    db.release()

    page.goto(server.url)
    page.get_by_role("link", name="Models").first.click()
    wait_idle(page)
    page.get_by_role("tab", name="Preview").click()
    # the lowest confidence, so that the tiny model's boxes are surely drawn
    page.get_by_role("slider").first.focus()
    page.keyboard.press("Home")
    wait_idle(page)
    page.get_by_text("0.01").first.wait_for()
    assert page.get_by_role("combobox", name="Video").input_value() == video["name"]
    page.get_by_role("button", name="Render preview").click()
    caption = page.get_by_text("boxes over 60 frames")
    caption.wait_for(timeout=120000)
    assert int(caption.inner_text().split()[0]) > 0, caption.inner_text()
    wait_idle(page)

    player = page.locator("[data-testid='stVideo']")
    player.wait_for()
    assert player.evaluate("v => v.tagName") == "VIDEO"
    page.wait_for_function("v => v.readyState >= 4", arg=player.element_handle(), timeout=30000)
    before = player.evaluate(VIDEO_STATE)
    assert before["error"] is None and (before["width"], before["height"]) == (360, 240), before
    assert abs(before["duration"] - 2.0) < 0.1, before  # 60 frames at 30 fps
    assert before["mean"] > 20 and before["spread"] > 10, before  # a picture, not a blank frame

    player.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0.5", arg=player.element_handle(), timeout=30000)
    playing = player.evaluate(VIDEO_STATE)
    assert not playing["paused"] and playing["time"] > before["time"] and playing["error"] is None, playing
    player.evaluate("v => v.pause()")
    player.scroll_into_view_if_needed()
    shot(page, "models_preview_playing")
