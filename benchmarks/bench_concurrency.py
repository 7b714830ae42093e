"""Ten labelers at once on one project, through the real UI, on loopback.

One Chromium, N browser contexts (separate Streamlit sessions) on one tpod server. Each session
steps through the video with the Right arrow and, on its own frames (frame % N == session),
draws a box and waits until the page shows it saved. After a bounded time the server stops and
the store is checked: every box a session saw acknowledged must be stored (no lost updates).
Prints p50/p95 of a step (key press -> "Frame i" shown) and of a save (mouse up -> box count
shown). Baseline in the same run: the same loop with ONE session, so the ratio shows what
sharing the server costs.

    .venv/bin/python benchmarks/bench_concurrency.py [--quick] [--sessions 10] [--seconds 60]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FRAMES = 120  # the OTB crossing clip, 360x240


from benchmarks.bench_next_frame import SIG_JS  # noqa: E402 - the canvas background's pixel signature

IDLE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


@dataclass
class Session:
    idx: int
    steps: list[float] = field(default_factory=list)
    saves: list[float] = field(default_factory=list)
    acked: list[tuple[int, tuple[float, float, float, float]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def make_data(data_dir: Path) -> int:
    os.environ["TPOD_DATA_DIR"] = str(data_dir)
    from app.projects import create_project
    from app.store import db
    from tests.test_labels import OTB, make_video

    project = create_project("concurrency", ["person", "car"])
    vid = make_video(project.id, sorted((OTB / "img").glob("*.jpg"))[:FRAMES])
    db.release()
    return vid


def box_for(session: int, n_sessions: int) -> tuple[float, float, float, float]:
    """A distinct box per session (ORIGINAL px), so saves can be matched back to sessions."""
    w = 300 / n_sessions
    x1 = 20 + session * w
    return round(x1, 1), 80.0, round(x1 + max(12.0, w - 6), 1), 150.0


@dataclass
class Start:
    """All sessions load the page first; the timed part starts when the last one is ready."""

    n: int
    seconds: float
    event: asyncio.Event = field(default_factory=asyncio.Event)
    ready: int = 0
    deadline: float = 0.0

    async def arrive(self) -> float:
        self.ready += 1
        if self.ready == self.n:
            self.deadline = time.monotonic() + self.seconds
            self.event.set()
        await self.event.wait()
        return self.deadline


async def run_session(browser, url: str, s: Session, n_sessions: int, start: Start) -> None:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 950})
    page = await ctx.new_page()
    page.set_default_timeout(90000)
    arrived = False
    try:
        await page.goto(url)
        await page.get_by_role("link", name="Label").first.click()
        await page.get_by_text(f"Frame 0 / {FRAMES - 1} · ").first.wait_for()
        canvas = page.locator("canvas.upper-canvas").first
        await canvas.wait_for()
        await page.wait_for_function(f"() => ({SIG_JS})() > 0", polling=100)
        await page.wait_for_function(IDLE_JS)
        arrived = True
        deadline = await start.arrive()
        frame = 0
        while time.monotonic() < deadline and frame < FRAMES - 1:
            if frame % n_sessions == s.idx:
                shown = await page.get_by_text(f"Frame {frame} / {FRAMES - 1} · ").first.inner_text()
                before = int(shown.split("·")[1].split()[0])
                cb = await canvas.bounding_box()
                k = cb["width"] / 360
                x1, y1, x2, y2 = box_for(s.idx, n_sessions)
                await page.mouse.move(cb["x"] + x1 * k, cb["y"] + y1 * k)
                await page.mouse.down()
                for j in range(1, 6):
                    await page.mouse.move(cb["x"] + (x1 + (x2 - x1) * j / 5) * k, cb["y"] + (y1 + (y2 - y1) * j / 5) * k)
                t0 = time.perf_counter()
                await page.mouse.up()
                try:
                    await page.get_by_text(f"Frame {frame} / {FRAMES - 1} · {before + 1} boxes").wait_for()
                    s.saves.append((time.perf_counter() - t0) * 1000)
                    s.acked.append((frame, (x1, y1, x2, y2)))
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    s.errors.append(f"save on frame {frame}: {type(exc).__name__}")
            # A key pressed while this session's script still runs can be merged into that rerun:
            # press when it is idle, as a person reading the frame would.
            await page.wait_for_function(IDLE_JS)
            await page.get_by_role("heading", name="Label").click()  # keys to the page, not a widget
            sig = await page.evaluate(SIG_JS)
            t0 = time.perf_counter()
            target = page.get_by_text(f"Frame {frame + 1} / {FRAMES - 1} · ").first
            for attempt in range(3):
                await page.keyboard.press("ArrowRight")
                try:
                    await target.wait_for(timeout=30000)
                    break
                except Exception:  # noqa: BLE001 - a press lost in a rerun: counted, pressed again
                    s.errors.append(f"step from frame {frame}: press {attempt + 1} lost")
                    await page.wait_for_function(IDLE_JS)
            else:
                break
            s.steps.append((time.perf_counter() - t0) * 1000)
            frame += 1
            # A box drawn before the canvas took the new frame's drawing belongs to the old one and
            # is dropped by the page's generation guard: draw only once the new frame is shown.
            await page.wait_for_function(f"(s) => {{ const v = ({SIG_JS})(); return v > 0 && v !== s; }}",
                                         arg=sig, polling=100)
            await page.wait_for_function(IDLE_JS)
    except Exception as exc:  # noqa: BLE001
        s.errors.append(f"session: {type(exc).__name__}: {str(exc)[:120]}")
        if not arrived:
            await start.arrive()  # never leave the others waiting
    finally:
        await ctx.close()


async def drive(url: str, n_sessions: int, seconds: float) -> list[Session]:
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        sessions = [Session(i) for i in range(n_sessions)]
        start = Start(n_sessions, seconds)
        # a hard stop too: a wedged session must not keep the benchmark running
        await asyncio.wait_for(
            asyncio.gather(*(run_session(browser, url, s, n_sessions, start) for s in sessions)),
            timeout=seconds + 300)
        await browser.close()
    return sessions


def check_stored(vid: int, sessions: list[Session]) -> tuple[int, int, int]:
    """(acknowledged, lost, stored) boxes."""
    from app import labels
    from app.store import db

    lost = 0
    stored = 0
    by_frame: dict[int, list] = {}
    for f in range(FRAMES):
        by_frame[f] = labels.frame_boxes(vid, f)
        stored += len(by_frame[f])
    db.release()
    acked = 0
    for s in sessions:
        for frame, want in s.acked:
            acked += 1
            if not any(max(abs(a - w) for a, w in zip((b.x1, b.y1, b.x2, b.y2), want, strict=True)) <= 2
                       for b in by_frame[frame]):
                lost += 1
                print(f"  LOST: session {s.idx} frame {frame} {want}")
    return acked, lost, stored


def one_round(tmp: Path, name: str, n_sessions: int, seconds: float) -> dict:
    from tests.conftest import stop_process
    from tests.e2e.conftest import start_server

    data = tmp / name
    vid = make_data(data)
    srv = start_server(data, worker=False)
    try:
        t0 = time.monotonic()
        sessions = asyncio.run(drive(srv.url, n_sessions, seconds))
        wall = time.monotonic() - t0
    finally:
        stop_process(srv.proc, signal.SIGINT, timeout=30)
    acked, lost, stored = check_stored(vid, sessions)
    steps = [x for s in sessions for x in s.steps]
    saves = [x for s in sessions for x in s.saves]
    errors = [e for s in sessions for e in s.errors]
    return {"sessions": n_sessions, "wall": wall, "steps": steps, "saves": saves, "acked": acked, "lost": lost,
            "stored": stored, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 s instead of 60 s")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=None)
    args = ap.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    tmp = Path(tempfile.mkdtemp(prefix="tpod-bench-conc-"))
    try:
        rounds = [one_round(tmp, "one", 1, seconds), one_round(tmp, "many", args.sessions, seconds)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def pct(xs: list[float], q: int) -> float:
        return float(np.percentile(xs, q)) if xs else float("nan")

    print(f"\n{seconds:.0f} s per round, one tpod server on loopback, one Chromium")
    for r in rounds:
        print(f"  {r['sessions']:2d} session(s): {len(r['steps'])} steps  p50 {pct(r['steps'], 50):6.0f} ms  "
              f"p95 {pct(r['steps'], 95):6.0f} ms | {len(r['saves'])} saves  p50 {pct(r['saves'], 50):6.0f} ms  "
              f"p95 {pct(r['saves'], 95):6.0f} ms | acknowledged {r['acked']}, stored {r['stored']}, "
              f"LOST {r['lost']} | errors {len(r['errors'])}")
        for e in r["errors"][:5]:
            print(f"      {e}")
    one, many = rounds
    print(f"  ratio {many['sessions']} sessions / 1 session (p50): step {pct(many['steps'], 50) / pct(one['steps'], 50):.2f}x, "
          f"save {pct(many['saves'], 50) / pct(one['saves'], 50):.2f}x; "
          f"throughput {len(many['steps']) / max(1, len(one['steps'])):.2f}x steps")
    if any(r["lost"] for r in rounds):
        sys.exit("lost updates")


if __name__ == "__main__":
    main()
