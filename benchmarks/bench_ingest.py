"""Ingest speed vs a bare decode loop over the same file, measured in the same run.

For each clip it prints:
  bare cv2     cv2.VideoCapture.read() loop (decode + BGR conversion, what most tools do)
  bare av      PyAV decode + to_ndarray("bgr24") loop (the decode work ingest cannot avoid)
  ingest       app.video.decode_to_store() at full resolution (decode + BGR + JPEG q90 + write)
  ratio        ingest fps / the faster bare loop  (goal >= 0.7)
  x real time  ingest fps / the video's fps      (goal >= 5 for 1080p30 on 2 cores)

Clips: the real ones in ../shared/data plus a generated 1080p30 H.264 video (5 minutes, or
20 s with --quick) built from the real 1080p traffic frames played back and forth, cached under
/tmp/tpod_bench. Run: .venv/bin/python benchmarks/bench_ingest.py [--quick] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "tpod_bench"
REAL = [
    SHARED / "otb_crossing" / "crossing_h264.mp4",
    SHARED / "uav123_person11" / "person11_first100_10fps_h264.mp4",
    SHARED / "opencv_vtest" / "vtest.avi",
    SHARED / "cvat_coco_traffic" / "traffic_first90_1080p_h264.mp4",
]


def synthetic_1080p(seconds: int) -> Path:
    """A 1080p30 H.264 file (x264 veryfast, crf 23, default GOP) of real street footage."""
    import av

    out = CACHE / f"traffic_1080p30_{seconds}s.mp4"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    src = SHARED / "cvat_coco_traffic" / "traffic_first90_1080p_h264.mp4"
    with av.open(str(src)) as c:
        frames = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
    cycle = frames + frames[-2:0:-1]  # forward then backward: no jump cut
    total = seconds * 30
    tmp = out.with_suffix(".part.mp4")
    print(f"generating {out.name} ({total} frames; cached for later runs)...", flush=True)
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "23"})
        s.width, s.height, s.pix_fmt = 1920, 1080, "yuv420p"
        s.codec_context.time_base = Fraction(1, 30)
        for i in range(total):
            frame = av.VideoFrame.from_ndarray(cycle[i % len(cycle)], format="yuv420p")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    tmp.rename(out)
    return out


def bare_cv2(path: Path) -> tuple[int, float]:
    import cv2

    t = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n, time.perf_counter() - t


def bare_av(path: Path) -> tuple[int, float]:
    import av

    t = time.perf_counter()
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            frame.to_ndarray(format="bgr24")
            n += 1
    return n, time.perf_counter() - t


def ingest(path: Path, threads: int | None, max_side: int | None) -> tuple[int, float, int]:
    from app.video import decode_to_store

    out = Path(tempfile.mkdtemp(prefix="tpod_bench_ingest_"))
    try:
        t = time.perf_counter()
        summary = decode_to_store(path, out / "v", threads=threads, max_side=max_side)
        return summary["frame_count"], time.perf_counter() - t, summary["bytes"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 s synthetic video instead of 5 minutes")
    ap.add_argument("--threads", type=int, default=None, help="JPEG pool size (default: cores, min 2)")
    ap.add_argument("--max-side", type=int, default=None, help="also store at this working resolution")
    args = ap.parse_args()

    from app.video import probe

    clips = [p for p in REAL if p.exists()] + [synthetic_1080p(20 if args.quick else 300)]
    print(f"cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}  (shared machine: figures vary run to run)")
    print(f"{'clip':38} {'frames':>6} {'size':>10} {'cv2 fps':>8} {'av fps':>8} {'ingest':>8} "
          f"{'ratio':>6} {'x real':>7} {'MB/frame':>8}")
    for clip in clips:
        info = probe(clip, count=False)
        n1, t1 = bare_cv2(clip)
        n2, t2 = bare_av(clip)
        n3, t3, nbytes = ingest(clip, args.threads, args.max_side)
        assert n1 == n2 == n3, f"{clip.name}: frame counts differ cv2={n1} av={n2} ingest={n3}"
        cv2_fps, av_fps, ing_fps = n1 / t1, n2 / t2, n3 / t3
        ratio = ing_fps / max(cv2_fps, av_fps)
        size = f"{info.width}x{info.height}"
        print(f"{clip.name[:38]:38} {n3:6d} {size:>10} {cv2_fps:8.1f} {av_fps:8.1f} {ing_fps:8.1f} "
              f"{ratio:6.2f} {ing_fps / info.fps:7.1f} {nbytes / n3 / 1e6:8.2f}", flush=True)


if __name__ == "__main__":
    main()
