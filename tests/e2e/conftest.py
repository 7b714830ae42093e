"""A real tpod (`python -m app serve`: Streamlit + huey_consumer) and a real Chromium."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, ROOT, free_port, stop_process, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen
    env: dict


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_server(data_dir: Path, extra_env: dict | None = None, worker: bool = True) -> Server:
    port = free_port()
    env = {**os.environ, "TPOD_DATA_DIR": str(data_dir), **(extra_env or {})}
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    argv = [sys.executable, "-m", "app", "serve", "--port", str(port), "--address", "127.0.0.1"]
    if not worker:
        argv.append("--no-worker")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url) or proc.poll() is not None, timeout=90, what="tpod server")
    assert proc.poll() is None, (data_dir / "serve.log").read_text()[-3000:]
    return Server(url, data_dir, proc, env)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """tpod serving a fresh data dir; this test process points at the same data dir."""
    from app.store import db

    data = tmp_path / "data"
    monkeypatch.setenv("TPOD_DATA_DIR", str(data))
    db.release()
    srv = start_server(data)
    yield srv
    stop_process(srv.proc, signal.SIGINT, timeout=20)
    db.release()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is not installed (.ci/run installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    pg = context.new_page()
    pg.set_default_timeout(90000)  # the first script run of a fresh server on a busy 2-core box is slow
    yield pg
    context.close()


def shot(page, name: str) -> Path:
    """Save a screenshot under test-artifacts/ (look at them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_idle(page, timeout: int = 90000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
