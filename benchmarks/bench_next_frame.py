"""Next-frame latency on the Label page, in a real Chromium, on the 1080p traffic clip.

Measures key press (Right arrow) -> the new frame's pixels drawn on the canvas background,
p50/p95 over consecutive frames (goal: 150/300 ms), and counts presses lost (no new frame
within 8 s; pressed again, the latency counts from the first press). Same run, for comparison, a minimal page
with only the canvas and a Next shortcut, sending the frame as display-size JPEG bytes (what
the Label page does, app/display.py), as the full-size stored JPEG (the baseline: what the
Label page sent before) and, without --quick, as a PIL image (the component re-encodes it to
PNG each rerun).

Where the time goes, from browser-side timestamps: key down -> first websocket message of the
rerun (the server starts answering) -> last message before the frame is drawn (server done,
transfer included) -> frame drawn (browser: React, the component, image decode, Fabric).

    .venv/bin/python benchmarks/bench_next_frame.py [--quick] [--frames N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLIP = ROOT.parent / "shared" / "data" / "cvat_coco_traffic" / "traffic_first90_1080p_h264.mp4"

MINIMAL = '''
import io, sys
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas
from app import framestore

from app import display

mode, vid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ss = st.session_state
ss.setdefault("f", 0)
def nxt():
    ss["f"] = (ss["f"] + 1) % n
st.button("Next", key="next", on_click=nxt, shortcut="Right")
st.markdown(f"Frame {ss['f']} / {n - 1}")
if mode == "display":
    bg = display.display_jpeg(vid, ss["f"], 680)
    display.prefetch(vid, range(ss["f"] + 1, min(n, ss["f"] + 5)), 680)
else:
    jpeg = framestore.read_jpeg(vid, ss["f"])
    bg = Image.open(io.BytesIO(jpeg)) if mode == "pil" else jpeg
st_canvas(background_image=bg, width=680, height=383, drawing_mode="labeled_rect", label="car",
          initial_drawing={"objects": []}, key="canvas")
'''

SIG_JS = """() => {
  function find(root) {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('dc-background-canvas')) return el;
      if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; }
    }
    return null;
  }
  if (!window.__bg || !window.__bg.isConnected) window.__bg = find(document);
  const c = window.__bg;
  if (!c || !c.width) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0;
  for (let i = 0; i < d.length; i += 4 * 997) s = (s * 31 + d[i] + 3 * d[i + 1] + 7 * d[i + 2]) % 1000000007;
  return s;
}"""


# Browser-side clock: key downs and websocket messages (time, bytes), before the app loads.
TAP_JS = """(() => {
  window.__keys = []; window.__ws = [];
  document.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
  const Orig = window.WebSocket;
  function Tapped(...args) {
    const ws = new Orig(...args);
    ws.addEventListener('message', (e) => {
      const d = e.data; window.__ws.push([performance.now(), d.byteLength || d.size || d.length || 0]);
    });
    return ws;
  }
  Tapped.prototype = Orig.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Tapped[k] = Orig[k];
  window.WebSocket = Tapped;
})();"""


def make_data(data_dir: Path, frames: int) -> int:
    """A project and a ready 1080p video of `frames` frames with 5 boxes each."""
    import cv2

    os.environ["TPOD_DATA_DIR"] = str(data_dir)
    from app import framestore, labels
    from app.projects import create_project
    from app.store import db

    project = create_project("traffic", ["car", "bus"])
    cap = cv2.VideoCapture(str(CLIP))
    out_dir = None
    with db.connect() as cur:
        vid = int(cur.execute(
            "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count) "
            "VALUES (?, 'traffic', 'ready', 1920, 1080, 29.97, ?) RETURNING id", [project.id, frames]).fetchone()[0])
        cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts) SELECT ?, i, i, i / 29.97 FROM range(?) t(i)",
                    [vid, frames])
    out_dir = framestore.video_dir(vid) / "frames"
    out_dir.mkdir(parents=True)
    for i in range(frames):
        ok, img = cap.read()
        assert ok, f"could not decode frame {i} of {CLIP}"
        cv2.imwrite(str(out_dir / f"{i:06d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    (framestore.video_dir(vid) / "meta.json").write_text(json.dumps(
        {"width": 1920, "height": 1080, "work_width": 1920, "work_height": 1080, "fps": 29.97,
         "frames": [[i, i / 29.97] for i in range(frames)]}))
    car = project.classes[0].id
    tracks = [labels.create_box(vid, 0, car, (100 + 300 * k, 500, 300 + 300 * k, 650), "bench") for k in range(5)]
    labels.propagate(vid, None, 0, frames - 1, tracker="medianflow", author="bench")
    db.release()
    kb = np.mean([p.stat().st_size for p in out_dir.iterdir()]) / 1024
    print(f"video: {frames} frames 1920x1080, JPEG {kb:.0f} KB/frame, {len(tracks)} tracks")
    return vid


def serve(argv: list[str], env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    from tests.conftest import free_port, wait_for
    from tests.e2e.conftest import _healthy

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", *argv[:1], "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false", "--", *argv[1:]],
        cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url) or proc.poll() is not None, timeout=90, what="streamlit")
    return proc, url


def measure(page, url: str, presses: int, nav: str | None, total: int) -> tuple[list[float], list[dict]]:
    """Per press: the wall time in ms, and the browser-side split (see the module doc)."""
    from tests.e2e.conftest import wait_idle

    page.add_init_script(TAP_JS)
    page.goto(url)
    if nav:
        page.get_by_role("link", name=nav).first.click()
    page.get_by_text(f"Frame 0 / {total - 1}").first.wait_for(timeout=60000)
    page.wait_for_function(f"() => ({SIG_JS})() > 0", timeout=60000)
    page.wait_for_timeout(1500)
    page.get_by_text(f"Frame 0 / {total - 1}").first.click()  # focus the page, not a widget
    out, split = [], []
    drops = [0]
    for _ in range(presses):
        sig = page.evaluate(SIG_JS)
        t0 = time.perf_counter()
        for _attempt in range(5):
            page.keyboard.press("ArrowRight")
            try:
                page.wait_for_function(
                    f"(s) => {{ const v = ({SIG_JS})(); if (v > 0 && v !== s) {{ window.__drawn = performance.now(); "
                    "return true; } return false; }", arg=sig, polling="raf", timeout=8000)
                break
            except Exception:  # noqa: BLE001 - playwright's TimeoutError: the press was lost
                drops[0] += 1
                wait_idle(page)
                if page.evaluate(SIG_JS) != sig:  # it was only slow
                    drops[0] -= 1
                    break
        out.append((time.perf_counter() - t0) * 1000)
        split.append(page.evaluate("""() => {
          const k = window.__keys[window.__keys.length - 1], d = window.__drawn;
          const m = window.__ws.filter(([t]) => t >= k && t <= d);
          return {first: m.length ? m[0][0] - k : null, last: m.length ? m[m.length - 1][0] - k : null,
                  drawn: d - k, bytes: m.reduce((a, [, n]) => a + n, 0)};
        }"""))
        # A press while the script still runs can be merged into that rerun: wait until it is done.
        wait_idle(page)
        page.wait_for_timeout(150)
    print(f"  {nav or 'minimal page'}: {drops[0]} of {presses + drops[0]} presses lost (no new frame in 8 s)")
    return out, split


LABEL = "Label page (display-size JPEG)"
MIN_DISPLAY = "minimal canvas, display-size JPEG"
MIN_FULL = "minimal canvas, full-size JPEG (baseline)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="12 presses per page instead of 40, no PIL run")
    ap.add_argument("--frames", type=int, default=None)
    args = ap.parse_args()
    presses = args.frames or (12 if args.quick else 40)
    frames = presses + 2
    from playwright.sync_api import sync_playwright

    from tests.conftest import stop_process
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    tmp = Path(tempfile.mkdtemp(prefix="tpod-bench-next-"))
    try:
        vid = make_data(tmp / "data", frames)
        env = {**os.environ, "TPOD_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT)}
        (tmp / "minimal.py").write_text(MINIMAL)
        minimal = [str(tmp / "minimal.py")]
        runs = [(LABEL, [str(ROOT / "streamlit_app.py")], "Label"),
                (MIN_DISPLAY, [*minimal, "display", str(vid), str(frames)], None),
                (MIN_FULL, [*minimal, "jpeg", str(vid), str(frames)], None)]
        if not args.quick:
            runs.append(("minimal canvas, PIL image", [*minimal, "pil", str(vid), str(frames)], None))
        results, splits = {}, {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, argv, nav in runs:
                proc, url = serve(argv, env, tmp / "serve.log")
                try:
                    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
                    results[name], splits[name] = measure(ctx.new_page(), url, presses, nav, frames)
                    ctx.close()
                finally:
                    stop_process(proc, signal.SIGINT)
            browser.close()
        print(f"\nkey press -> new frame drawn, {presses} presses each (goal p50 <= 150 ms, p95 <= 300 ms)")
        for name, ms in results.items():
            print(f"  {name:44s} p50 {np.percentile(ms, 50):6.0f} ms   p95 {np.percentile(ms, 95):6.0f} ms")
        print("\nwhere the time goes (browser clock, medians, ms after key down):")
        print(f"  {'':44s} {'1st msg':>8s} {'last msg':>9s} {'drawn':>7s} {'KB/step':>8s}")
        for name, rows in splits.items():
            def med(k, rows=rows):
                vals = [r[k] for r in rows if r[k] is not None]
                return float(np.median(vals)) if vals else float("nan")
            print(f"  {name:44s} {med('first'):8.0f} {med('last'):9.0f} {med('drawn'):7.0f} {med('bytes') / 1024:8.0f}")
        full = np.percentile(results[MIN_FULL], 50)
        small = np.percentile(results[MIN_DISPLAY], 50)
        page = np.percentile(results[LABEL], 50)
        print(f"\n  ratio full-size / display-size (minimal page, p50): {full / small:.2f}x;  "
              f"Label page / minimal display-size: {page / small:.2f}x;  Label page / minimal full-size "
              f"(the old Label page's floor): {page / full:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
