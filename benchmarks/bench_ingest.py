"""Ingest speed vs bare decode loops over the same file, measured in the same run.

For each clip it prints frames per second (best of --repeat runs) and CPU milliseconds per frame:
  cv2 bgr     cv2.VideoCapture(CAP_FFMPEG, N_THREADS=cores).read() loop (decode + BGR)
  av bgr      PyAV decode (thread_type AUTO) + one reused swscale context to bgr24 ndarray
  av yuv      PyAV decode (thread_type AUTO) + frame.to_ndarray() in its own YUV format: the
              least work that still yields every frame's pixels
  ingest      app.video.decode_to_store() at full resolution (decode + YUV range conversion +
              JPEG from YUV planes + write), the shipped path
  old         the same pipeline with the previous encoder (swscale to BGR, cv2.imencode): the
              "before" figure, skipped with --no-old
  ratio       ingest fps / the fastest bare loop  (goal >= 0.7); "old" the same for the old encoder
  x real      ingest fps / the video's fps        (goal >= 5 for 1080p30 on 2 cores)
  cpu ratio   CPU ms per frame of the fastest bare loop / of ingest: what the ratio becomes when
              the cores are saturated, and much steadier than wall clock on a shared machine
  cpu x real  cores * 1000 / ingest CPU ms per frame / fps: real-time factor if every core
              worked for ingest alone (an upper bound; the wall-clock figure is the measured one)

Clips: the real ones in ../shared/data plus a generated 1080p30 H.264 video (5 minutes, or 20 s
with --quick) built from the real 1080p traffic frames played back and forth, cached under
/tmp/tpod_bench. Pin to 2 cores with `taskset -c 0,1` on a bigger machine.
Run: .venv/bin/python benchmarks/bench_ingest.py [--quick] [--repeat N] [--quality Q]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "tpod_bench"
STORED = {"bytes": 0}  # JPEG bytes the last ingest() wrote
REAL = [
    SHARED / "otb_crossing" / "crossing_h264.mp4",
    SHARED / "uav123_person11" / "person11_first100_10fps_h264.mp4",
    SHARED / "opencv_vtest" / "vtest.avi",
    SHARED / "cvat_coco_traffic" / "traffic_first90_1080p_h264.mp4",
]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


def bare_cv2(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, cores()])
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def bare_av_bgr(path: Path) -> int:
    import av
    from av.video.reformatter import VideoReformatter

    fmt = VideoReformatter()
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            fmt.reformat(frame, format="bgr24").to_ndarray()
            n += 1
    return n


def bare_av_yuv(path: Path) -> int:
    import av

    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            frame.to_ndarray()
            n += 1
    return n


def ingest(path: Path, quality: int) -> int:
    from app.video import decode_to_store

    out = Path(tempfile.mkdtemp(prefix="tpod_bench_ingest_"))
    try:
        summary = decode_to_store(path, out / "v", quality=quality)
        STORED["bytes"] = summary["bytes"]
        return summary["frame_count"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def ingest_old(path: Path, quality: int) -> int:
    """The pipeline with the encoder it had before (BGR + cv2.imencode) for a same-run 'before'."""
    import app.video as video

    saved = video._jpeg_from_yuv
    video._jpeg_from_yuv = video._jpeg_from_bgr
    try:
        return ingest(path, quality)
    finally:
        video._jpeg_from_yuv = saved


def timed(repeat: int, fn: Callable[..., int], *fn_args: object) -> tuple[int, float, float]:
    """(frames, best fps, CPU ms per frame of the best run) of fn(*fn_args)."""
    best = (0, 0.0, 0.0)
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        n = fn(*fn_args)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if n / wall > best[1]:
            best = (n, n / wall, cpu / n * 1000)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 s synthetic video instead of 5 minutes")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best counts")
    ap.add_argument("--quality", type=int, default=None, help="JPEG quality (default: app.video.JPEG_QUALITY)")
    ap.add_argument("--no-old", action="store_true", help="skip the previous encoder's figure")
    ap.add_argument("--only", default=None, help="only clips whose name contains this")
    args = ap.parse_args()

    from app.video import JPEG_QUALITY, probe

    quality = args.quality or JPEG_QUALITY
    clips = [p for p in REAL if p.exists()] + [synthetic_1080p(20 if args.quick else 300)]
    if args.only:
        clips = [c for c in clips if args.only in c.name]
    print(f"cores: {cores()}  load: {os.getloadavg()[0]:.1f}  JPEG quality {quality}  best of {args.repeat}")
    print("fps (CPU ms per frame)")
    print(f"{'clip':34} {'frames':>6} {'size':>9} {'cv2 bgr':>13} {'av bgr':>13} {'av yuv':>13} "
          f"{'ingest':>13} {'old':>13} {'ratio':>5} {'old':>5} {'x real':>6} {'cpu ratio':>9} {'cpu x real':>10} "
          f"{'KB/fr':>5}")
    for clip in clips:
        info = probe(clip, count=False)
        runs = {
            "cv2": timed(args.repeat, bare_cv2, clip),
            "av_bgr": timed(args.repeat, bare_av_bgr, clip),
            "av_yuv": timed(args.repeat, bare_av_yuv, clip),
            "ingest": timed(args.repeat, ingest, clip, quality),
        }
        nbytes = STORED["bytes"]
        if not args.no_old:
            runs["old"] = timed(args.repeat, ingest_old, clip, quality)
        counts = {k: v[0] for k, v in runs.items()}
        assert len(set(counts.values())) == 1, f"{clip.name}: frame counts differ {counts}"
        n = counts["ingest"]
        fastest = max(("cv2", "av_bgr", "av_yuv"), key=lambda k: runs[k][1])
        bare = runs[fastest][1]
        cpu_ratio = min(runs[k][2] for k in ("cv2", "av_bgr", "av_yuv")) / runs["ingest"][2]
        cpu_real = cores() * 1000 / runs["ingest"][2] / info.fps
        cells = [f"{runs[k][1]:6.1f} ({runs[k][2]:4.1f})" if k in runs else f"{'-':>13}"
                 for k in ("cv2", "av_bgr", "av_yuv", "ingest", "old")]
        old_ratio = f"{runs['old'][1] / bare:5.2f}" if "old" in runs else "    -"
        print(f"{clip.name[:34]:34} {n:6d} {info.width:>4}x{info.height:<4} {' '.join(cells)} "
              f"{runs['ingest'][1] / bare:5.2f} {old_ratio} {runs['ingest'][1] / info.fps:6.1f} "
              f"{cpu_ratio:9.2f} {cpu_real:10.1f} {nbytes / n / 1e3:5.0f}", flush=True)


if __name__ == "__main__":
    main()
