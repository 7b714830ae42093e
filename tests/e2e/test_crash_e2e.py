"""Crash safety through the real UI: SIGKILL tpod while a labeler saves boxes, restart it, and
every box the page acknowledged is still in the store (DuckDB replays its WAL)."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from app import labels
from app.projects import create_project
from app.store import db
from tests.conftest import stop_process
from tests.e2e.conftest import shot, start_server, wait_idle
from tests.e2e.test_label_e2e import canvas_box, drag, frame_drawn
from tests.test_labels import OTB, make_video

pytestmark = pytest.mark.e2e

ACKED = 5  # boxes drawn one after another, each waited for on the page


def _box(k: int) -> tuple[float, float, float, float]:
    """Non-overlapping boxes in ORIGINAL px of the 360x240 frames."""
    return 10 + 58 * k, 60, 50 + 58 * k, 140


def _count_on_page(page, n: int) -> None:
    page.get_by_text(f"Frame 0 / 19 · {n} boxes").wait_for()


def test_acknowledged_boxes_survive_a_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TPOD_DATA_DIR", str(data))
    db.release()
    project = create_project("crash", ["car"])
    vid = make_video(project.id, sorted((OTB / "img").glob("*.jpg"))[:20])
    db.release()

    srv = start_server(data)
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    page = ctx.new_page()
    page.set_default_timeout(30000)
    try:
        page.goto(srv.url)
        page.get_by_role("link", name="Label").first.click()
        _count_on_page(page, 0)
        frame_drawn(page)
        cb = canvas_box(page)
        s = cb["width"] / 360

        def draw(k: int) -> None:
            x1, y1, x2, y2 = _box(k)
            drag(page, cb["x"] + x1 * s, cb["y"] + y1 * s, cb["x"] + x2 * s, cb["y"] + y2 * s)

        for k in range(ACKED):
            draw(k)
            _count_on_page(page, k + 1)  # acknowledged: the page read it back from the store
        # one more in flight, then kill Streamlit and the worker (the whole process group) at once
        draw(ACKED)
        stop_process(srv.proc, signal.SIGKILL)
        assert srv.proc.returncode == -signal.SIGKILL
    finally:
        ctx.close()
        stop_process(srv.proc, signal.SIGKILL)

    # restart on the same data dir: the page shows at least every acknowledged box
    srv = start_server(data)
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    page = ctx.new_page()
    page.set_default_timeout(30000)
    try:
        page.goto(srv.url)
        page.get_by_role("link", name="Label").first.click()
        page.get_by_text("Frame 0 / 19 · ").first.wait_for()
        wait_idle(page)
        shot(page, "crash_after_restart")
        shown = page.get_by_text("Frame 0 / 19 · ").first.inner_text()
    finally:
        ctx.close()
        stop_process(srv.proc, signal.SIGINT, timeout=20)
    db.release()

    boxes = labels.frame_boxes(vid, 0)
    db.release()
    assert ACKED <= len(boxes) <= ACKED + 1, boxes
    assert f"· {len(boxes)} boxes" in shown
    # each acknowledged box is stored where it was drawn (1 display px is ~0.5 original px)
    stored = sorted((round(b.x1), round(b.y1), round(b.x2), round(b.y2)) for b in boxes)
    for k in range(ACKED):
        want = _box(k)
        assert any(max(abs(a - w) for a, w in zip(got, want, strict=True)) <= 2 for got in stored), (want, stored)
    assert all(b.source == "manual" for b in boxes)
