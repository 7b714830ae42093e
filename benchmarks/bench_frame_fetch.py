"""Random frame access at 1080p: the JPEG frame store vs seeking the original H.264 file.

Measured in the same run on the same frame indices:
  store bytes   app.framestore.read_jpeg()  (what the labeling page sends to the browser)
  store array   app.framestore.read_bgr()   (what trackers and pre-labeling read)
  h264 seek     cv2.VideoCapture.set(CAP_PROP_POS_FRAMES, i) + read() on an open capture
                (the baseline: no frame store, seek the original every time)

The video is the generated 1080p30 H.264 clip of bench_ingest.py (x264 default GOP of 250
frames), ingested once into a frame store cached under /tmp/tpod_bench. Frame store reads come
from the OS page cache after the first touch, as they do on a busy server.
Run: .venv/bin/python benchmarks/bench_frame_fetch.py [--quick] [--n 200]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ingest import CACHE, synthetic_1080p  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def timed(fn, indices: list[int]) -> list[float]:
    out = []
    for i in indices:
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 s video, fewer seeks")
    ap.add_argument("--n", type=int, default=None, help="random fetches from the store (default 300, quick 100)")
    args = ap.parse_args()

    import cv2

    from app import framestore
    from app.video import decode_to_store

    seconds = 20 if args.quick else 300
    src = synthetic_1080p(seconds)
    data_dir = CACHE / f"fetch_store_{seconds}s"
    store = framestore.video_dir(1, data_dir)
    if not (store / "meta.json").exists():
        print(f"ingesting {src.name} into {store} (cached for later runs)...", flush=True)
        decode_to_store(src, store)
    count = len(framestore.meta(1, data_dir)["frames"])
    n = args.n or (100 if args.quick else 300)
    rng = random.Random(7)
    indices = [rng.randrange(count) for _ in range(n)]
    seeks = indices[: max(10, n // 10)]  # seeking is slow: a tenth of the sample

    framestore.read_jpeg(1, indices[0], data_dir)  # import cv2 etc. before timing
    jpeg_ms = timed(lambda i: framestore.read_jpeg(1, i, data_dir), indices)
    bgr_ms = timed(lambda i: framestore.read_bgr(1, i, data_dir), indices)

    cap = cv2.VideoCapture(str(src))

    def seek(i: int) -> None:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        assert ok and frame.shape == (1080, 1920, 3), f"seek to {i} failed"

    seek_ms = timed(seek, seeks)
    cap.release()

    size = sum(len(framestore.read_jpeg(1, i, data_dir)) for i in indices[:50]) / 50
    print(f"1080p frame store of {count} frames, {size / 1e6:.2f} MB/frame; {n} random fetches "
          f"({len(seeks)} seeks)")
    print(f"{'method':14} {'p50 ms':>8} {'p95 ms':>8} {'p50 vs seek':>12}")
    base = pct(seek_ms, 50)
    for label, ms in (("store bytes", jpeg_ms), ("store array", bgr_ms), ("h264 seek", seek_ms)):
        print(f"{label:14} {pct(ms, 50):8.2f} {pct(ms, 95):8.2f} {base / pct(ms, 50):11.1f}x")


if __name__ == "__main__":
    main()
