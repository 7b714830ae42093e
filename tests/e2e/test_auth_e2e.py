"""Login gate in a real browser: anonymous refused on every page, wrong password, login, logout."""
from __future__ import annotations

import signal

import pytest

from tests.conftest import stop_process
from tests.e2e.conftest import shot, start_server, wait_idle

pytestmark = pytest.mark.e2e

PAGES = ["", "projects", "queue", "upload", "label", "stats", "datasets", "transfer", "train", "models"]


@pytest.fixture
def locked_server(tmp_path, monkeypatch):
    from app import auth
    from app.store import db

    data = tmp_path / "data"
    monkeypatch.setenv("TPOD_DATA_DIR", str(data))
    db.release()
    auth.add_user("ana", "correct horse", role="admin")
    srv = start_server(data, worker=False)
    yield srv
    stop_process(srv.proc, signal.SIGINT, timeout=20)
    db.release()


def test_login_gate(locked_server, page) -> None:
    for path in PAGES:
        page.goto(f"{locked_server.url}/{path}")
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.get_by_text("Open access").count() == 0
        assert page.get_by_role("heading", name="Projects").count() == 0
    shot(page, "login_gate")
    page.goto(locked_server.url)
    page.get_by_label("User name").fill("ana")
    page.get_by_role("textbox", name="Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong user name or password.").wait_for()
    page.get_by_role("textbox", name="Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    page.get_by_text("tpod — painless object detection").wait_for()
    shot(page, "logged_in")
    page.get_by_role("button", name="Sign out").click()
    wait_idle(page)
    page.get_by_role("button", name="Sign in").wait_for()
