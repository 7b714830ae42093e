"""Video and image decoding into the frame store (app/framestore.py documents the layout).

Decoding uses PyAV: on the same file it yields the same pixels as OpenCV's FFmpeg backend
(both convert through swscale with the same defaults; measured identical on the 1080p H.264
clip), decodes 1080p H.264 faster, gives each frame its own PTS (variable frame rate stays
right) and reports a truncated or corrupt file instead of silently stopping early.

The frame count is always what was decoded. Containers lie about it (edit lists, B-frame
reordering, VFR), so the container's figure is used only as a progress estimate and to notice a
file that ends before its own index does (truncated upload).

Speed: the decoding thread only decodes; range conversion, resizing and JPEG encoding happen
in a small thread pool (swscale and libjpeg-turbo release the GIL), with a bounded number of
frames in flight so memory stays flat. Frames are JPEG-encoded straight from YUV 4:2:0 planes
(simplejpeg): JPEG stores YCbCr anyway, so a BGR round trip only costs a colour conversion each
way and a second chroma subsampling (~10% of the encode). The JPEG encode of a 1080p frame
(~8.5 ms of CPU here) still costs almost twice its H.264 decode (~5 ms), so on saturated cores
ingest runs at about a third of a bare decode; benchmarks/bench_ingest.py measures both.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.domain import VideoInfo
from app.errors import BadInput, JobFailed

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# 90 keeps fine texture (labels, training) at ~40% of the size of 95; below 85 block artefacts
# show on edges people draw boxes against. Frames are encoded once and read many times.
JPEG_QUALITY = 90

# probe() decodes the whole file to count frames only below this many decoded pixels
# (about 10 s of 1080p, or 3 minutes of 360p): above it the container's estimate is returned.
PROBE_DECODE_PIXELS = 600_000_000

Report = Callable[..., None]
ShouldStop = Callable[[], bool]


class IngestCancelled(JobFailed):
    """should_stop() said stop: the caller removes what was written."""


@dataclass(frozen=True)
class ProbeInfo(VideoInfo):
    """VideoInfo plus whether frame_count was decoded (exact) or read from the container."""

    exact: bool = False


def work_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Stored (working) size for an original size: longest side <= max_side, even dims kept."""
    if not max_side or max(width, height) <= max_side:
        return int(width), int(height)
    scale = max_side / float(max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(path: Path) -> Any:
    import av

    if not path.exists():
        raise BadInput(f"{path.name}: file not found")
    if path.stat().st_size == 0:
        raise BadInput(f"{path.name}: the file is empty")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path.name}: not a readable video (corrupt, truncated, or not a video file): "
                       f"{_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).split(";")[0]
    return text.split("] ", 1)[-1].split(": '", 1)[0][:120]


def _video_stream(container: Any, name: str) -> Any:
    if not len(container.streams):
        raise BadInput(f"{name}: not a readable video (no streams found: corrupt, truncated, or not a video file)")
    streams = container.streams.video
    if not streams:
        raise BadInput(f"{name}: contains no video stream (zero frames)")
    stream = streams[0]
    if stream.codec_context is None:
        raise BadInput(f"{name}: unsupported video codec (this FFmpeg build has no decoder for it)")
    return stream


def _fps_of(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return 0.0


def _container_estimate(container: Any, stream: Any, fps: float) -> int:
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * fps))
    if container.duration and fps:
        return int(round(container.duration / 1_000_000 * fps))
    return 0


class _Decoded:
    """Every frame of a stream in display order, with the checks the container cannot be
    trusted to make: truncation (the file ends before its own index does) and corrupt packets."""

    def __init__(self, container: Any, stream: Any, name: str) -> None:
        self.container, self.stream, self.name = container, stream, name
        self.declared = int(stream.frames or 0)
        self.packets = self.errors = 0
        self.last_corrupt = False
        self.finished = False

    def __iter__(self) -> Iterator[Any]:
        import av

        for packet in self.container.demux(self.stream):
            if packet.size:
                self.packets += 1
                self.last_corrupt = bool(packet.is_corrupt)
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                self.errors += 1
                log.warning("%s: undecodable packet %d: %s", self.name, self.packets, _short(exc))
                # A few damaged packets in a long recording are survivable (FFmpeg conceals
                # them); many mean the file is broken.
                if self.errors > max(3, self.packets // 100):
                    raise BadInput(f"{self.name}: corrupt video ({self.errors} undecodable packets "
                                   f"by packet {self.packets})") from None
                continue
            yield from frames
        self.finished = True

    def check_complete(self) -> None:
        """Raise BadInput if the file ended before the frames its index lists (call after a full pass)."""
        missing = self.declared - self.packets
        if self.declared > 0 and missing > 0 and (self.last_corrupt or missing > max(2, self.declared // 100)):
            raise BadInput(f"{self.name}: truncated or corrupt: the file ends after {self.packets} of the "
                           f"{self.declared} frames its index lists")


def probe(path: Path, *, count: bool | None = None) -> ProbeInfo:
    """Size, fps, frame count, duration and codec of a video file, after checking it decodes.

    count=True decodes every frame to count them (exact); False decodes only the first frame and
    takes the count from the container (flagged exact=False); None (default) decodes everything
    when that is cheap (PROBE_DECODE_PIXELS). Raises BadInput for a file FFmpeg cannot open or
    decode, a truncated file, or one without frames.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path.name)
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        fps = _fps_of(stream)
        estimate = _container_estimate(container, stream, fps)
        width, height = int(cc.width or 0), int(cc.height or 0)
        exhaustive = count is True or (count is None and estimate * max(1, width * height) <= PROBE_DECODE_PIXELS)
        frames = _Decoded(container, stream, path.name)
        t0 = last = None
        decoded = 0
        try:
            for frame in frames:
                decoded += 1
                if t0 is None:
                    t0 = frame.time or 0.0
                    width, height = _shown_size(frame)
                last = frame.time if frame.time is not None else last
                if not exhaustive:
                    break
        except BadInput:
            raise
        except Exception as exc:  # noqa: BLE001 - FFmpeg errors come in many types; all mean "bad file"
            raise BadInput(f"{path.name}: could not decode frame {decoded} ({_short(exc)})") from None
        if exhaustive:
            frames.check_complete()
        if t0 is None:
            raise BadInput(f"{path.name}: the video has zero decodable frames")
        if exhaustive:
            duration = ((last or t0) - t0) + (1.0 / fps if fps else 0.0)
            frame_count = decoded
        else:
            frame_count = estimate
            duration = (float(stream.duration * stream.time_base) if stream.duration
                        else (container.duration or 0) / 1_000_000)
        return ProbeInfo(width=width, height=height, fps=fps, frame_count=frame_count,
                         duration=round(duration, 6), codec=cc.name, name=path.name, exact=exhaustive)


class _Throttle:
    """Calls report() at most every `every_s` seconds, with fps and eta computed from the start."""

    def __init__(self, report: Report | None, total: int, every_s: float = 0.5) -> None:
        self.report, self.total, self.every_s = report, total, every_s
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, force: bool = False, **extra: Any) -> None:
        if self.report is None:
            return
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-6)
        fps = done / elapsed
        total = max(self.total, done)
        eta = (total - done) / fps if fps > 0 else None
        eta = None if eta is None else round(eta, 1)
        self.report(done=done, total=total, fps=round(fps, 1), eta=eta, eta_s=eta, **extra)


def _write_jpeg(path: Path, bgr: np.ndarray, quality: int) -> int:
    import cv2

    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise BadInput(f"could not encode {path.name} as JPEG")
    path.write_bytes(buf.tobytes())
    return int(buf.size)


_ROTATE = {1: 2, 2: 1, 3: 0}  # quarter turns counter-clockwise -> cv2.ROTATE_* code


def _quarter_turns(frame: Any) -> int:
    """Display rotation of a frame (phone videos) in counter-clockwise quarter turns, 0..3."""
    try:
        return round(float(frame.rotation or 0) / 90.0) % 4
    except (AttributeError, TypeError, ValueError):
        return 0


def _shown_size(frame: Any) -> tuple[int, int]:
    """Width and height as a player shows the frame (after display rotation)."""
    if _quarter_turns(frame) % 2:
        return frame.height, frame.width
    return frame.width, frame.height


_local = threading.local()


def _reformatter() -> Any:
    """One swscale context per pool thread: PyAV's frame.to_ndarray() builds a new one (with its
    own thread pool) for every frame."""
    fmt = getattr(_local, "reformatter", None)
    if fmt is None:
        from av.video.reformatter import VideoReformatter

        fmt = _local.reformatter = VideoReformatter()
    return fmt


def _planes(frame: Any) -> list[np.ndarray]:
    """Zero-copy views of a planar 8-bit frame's planes (row padding cut off)."""
    return [np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)[:, :pl.width]
            for pl in frame.planes]


def _jpeg_from_yuv(frame: Any, size: tuple[int, int] | None, turns: int, quality: int) -> bytes:
    """JPEG bytes of a frame, encoded straight from YUV 4:2:0 planes (no BGR round trip).

    JFIF stores full-range BT.601 YCbCr, so one swscale pass brings the frame there: it expands
    limited range (what H.264/MPEG-4 deliver; left as is, blacks turn grey), converts other
    matrices (BT.709 ...), bit depths and pixel formats, and scales to the working size. Where
    the frame already is full-range BT.601 4:2:0 at the right size the pass is a no-op.
    """
    import simplejpeg
    from av.video.reformatter import ColorRange, Colorspace

    fmt = _reformatter()
    if size is None:
        yuv = fmt.reformat(frame, format="yuv420p", dst_colorspace=Colorspace.ITU601,
                           dst_color_range=ColorRange.JPEG, threads=1)
    else:
        w, h = (size[1], size[0]) if turns % 2 else size  # scale in coded orientation
        yuv = fmt.reformat(frame, width=w, height=h, format="yuv420p", dst_colorspace=Colorspace.ITU601,
                           dst_color_range=ColorRange.JPEG, interpolation="AREA", threads=1)
    planes = _planes(yuv)
    if turns:
        # The same turn OpenCV and players apply, so boxes match what users saw elsewhere;
        # turning each plane turns the 4:2:0 picture.
        import cv2

        planes = [cv2.rotate(p, _ROTATE[turns]) for p in planes]
    return simplejpeg.encode_jpeg_yuv_planes(*planes, quality=int(quality))


def _jpeg_from_bgr(frame: Any, size: tuple[int, int] | None, turns: int, quality: int) -> bytes:
    """The slower, general path: swscale to BGR, OpenCV encodes (for what the YUV path refuses)."""
    import cv2

    if size is None:
        bgr = _reformatter().reformat(frame, format="bgr24", threads=1).to_ndarray()
    else:
        w, h = (size[1], size[0]) if turns % 2 else size
        bgr = _reformatter().reformat(frame, width=w, height=h, format="bgr24", interpolation="AREA",
                                      threads=1).to_ndarray()
    if turns:
        bgr = cv2.rotate(bgr, _ROTATE[turns])
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise BadInput("could not encode a frame as JPEG")
    return buf.tobytes()


def _convert_and_write(frame: Any, path: Path, size: tuple[int, int] | None, quality: int) -> int:
    """Runs in the pool: convert, scale, rotate, JPEG-encode and write one frame; returns its size.

    swscale and libjpeg-turbo (simplejpeg) release the GIL, so pool threads encode while the
    decoder decodes. No fsync per frame: the frames land in a temporary folder that is renamed
    only after the whole ingest succeeded.
    """
    import av

    turns = _quarter_turns(frame)
    try:
        data = _jpeg_from_yuv(frame, size, turns, quality)
    except (av.error.FFmpegError, ValueError) as exc:
        log.debug("%s: YUV encode refused (%s); encoding through BGR", path.name, exc)
        data = _jpeg_from_bgr(frame, size, turns, quality)
    with open(path, "wb") as out:
        out.write(data)
    return len(data)


def _usable_cores() -> int:
    """Cores this process may run on (a cpuset or taskset limits it below os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pool_size(threads: int | None) -> int:
    return threads or max(2, min(8, _usable_cores()))


class _Pipeline:
    """A thread pool with a bounded number of tasks in flight (back-pressure on the decoder)."""

    def __init__(self, threads: int | None) -> None:
        n = _pool_size(threads)
        self.pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tpod-jpeg")
        self.pending: deque[Future] = deque()
        self.limit = n * 3
        self.bytes = 0

    def submit(self, fn: Callable[..., int], *args: Any) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > self.limit:
            self.bytes += self.pending.popleft().result()

    def drain(self) -> None:
        while self.pending:
            self.bytes += self.pending.popleft().result()

    def close(self) -> None:
        for fut in self.pending:
            fut.cancel()
        self.pool.shutdown(wait=True)


def _prepare_out(out_dir: Path) -> tuple[Path, bool]:
    created = not out_dir.exists()
    frames = out_dir / "frames"
    if frames.exists():
        shutil.rmtree(frames)
    frames.mkdir(parents=True)
    return frames, created


def _clean_out(out_dir: Path, created: bool) -> None:
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
    else:
        shutil.rmtree(out_dir / "frames", ignore_errors=True)
        (out_dir / "meta.json").unlink(missing_ok=True)


def _write_meta(out_dir: Path, meta: dict) -> None:
    tmp = out_dir / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, separators=(",", ":")))
    tmp.replace(out_dir / "meta.json")


def _check_stop(should_stop: ShouldStop | None, name: str) -> None:
    if should_stop is not None and should_stop():
        raise IngestCancelled(f"ingest of {name} was cancelled")


def decode_to_store(src: Path, out_dir: Path, *, stride: int = 1, max_side: int | None = None,
                    start_s: float | None = None, end_s: float | None = None,
                    report: Report | None = None, should_stop: ShouldStop | None = None,
                    max_frames: int | None = None, quality: int = JPEG_QUALITY,
                    threads: int | None = None) -> dict:
    """Decode a video into out_dir/frames/<idx:06d>.jpg and out_dir/meta.json; returns the meta
    without its "frames" list plus "frame_count" and "elapsed_s".

    Every `stride`-th decoded frame whose timestamp lies in [start_s, end_s) is stored, longest
    side scaled to at most `max_side`. `report(done=, total=, fps=, eta=)` is called about twice
    a second; `should_stop()` is polled per frame (raises IngestCancelled when it says stop). Raises
    BadInput for a file FFmpeg cannot decode, a truncated file, zero frames, or more than
    `max_frames` frames to store. On any failure nothing is left in out_dir.
    """
    import av

    src = Path(src)
    out_dir = Path(out_dir)
    if stride < 1:
        raise BadInput(f"stride must be >= 1, not {stride}")
    if max_side is not None and max_side < 16:
        raise BadInput(f"max working resolution must be >= 16 pixels, not {max_side}")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise BadInput(f"time range {start_s}-{end_s} s is empty")
    started = time.monotonic()
    container = _open(src)
    frames_dir, created = _prepare_out(out_dir)
    pipe = _Pipeline(threads)
    try:
        stream = _video_stream(container, src.name)
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        fps = _fps_of(stream)
        estimate = _container_estimate(container, stream, fps)
        span = estimate
        if fps and (start_s is not None or end_s is not None):
            lo = (start_s or 0.0) * fps
            hi = end_s * fps if end_s is not None else estimate
            span = max(0, int(min(hi, estimate) - lo))
        progress = _Throttle(report, max(1, -(-span // stride)))

        rows: list[list[float]] = []
        width = height = 0
        size: tuple[int, int] | None = None
        t0: float | None = None
        last_ts = 0.0
        decoded = in_range = 0
        frames = _Decoded(container, stream, src.name)
        decoding = iter(frames)
        while True:
            try:
                frame = next(decoding, None)
            except av.error.FFmpegError as exc:
                raise BadInput(f"{src.name}: corrupt video, decoding stopped at frame {decoded} "
                               f"({_short(exc)})") from None
            if frame is None:
                break
            source_idx = decoded
            decoded += 1
            ts = frame.time
            if ts is None:
                ts = last_ts + (1.0 / fps if fps else 0.0)
            if t0 is None:
                t0 = ts
                width, height = _shown_size(frame)
                ww, wh = work_size(width, height, max_side)
                size = None if (ww, wh) == (width, height) else (ww, wh)
            # Timestamps count from the first frame, as a player shows them.
            ts = ts - t0
            last_ts = ts
            if start_s is not None and ts < start_s - 1e-6:
                continue
            if end_s is not None and ts >= end_s - 1e-6:
                break
            take = in_range % stride == 0
            in_range += 1
            if not take:
                continue
            idx = len(rows)
            if max_frames is not None and idx >= max_frames:
                raise BadInput(f"{src.name}: more than {max_frames} frames to store; use a larger "
                               "stride or a time range (limit TPOD_MAX_VIDEO_FRAMES)")
            _check_stop(should_stop, src.name)
            pipe.submit(_convert_and_write, frame, frames_dir / f"{idx:06d}.jpg", size, quality)
            rows.append([source_idx, round(ts, 6)])
            progress(len(rows))
        pipe.drain()
        if frames.finished:
            frames.check_complete()
        if decoded == 0:
            raise BadInput(f"{src.name}: the video has zero decodable frames")
        if not rows:
            raise BadInput(f"{src.name}: no frames in the time range {start_s or 0}-{end_s or 'end'} s "
                           f"(the video lasts {last_ts:.2f} s)")
        ww, wh = size or (width, height)
        meta = {
            "kind": "video",
            "width": width, "height": height, "work_width": ww, "work_height": wh,
            "fps": fps, "codec": cc.name, "stride": stride,
            "start_s": start_s, "end_s": end_s,
            "source_frame_count": decoded,
            "duration": round(last_ts + (1.0 / fps if fps else 0.0), 6) if frames.finished else
                        round((container.duration or 0) / 1_000_000, 6),
            "jpeg_quality": quality,
            "bytes": pipe.bytes,
            "frames": rows,
        }
        _write_meta(out_dir, meta)
        progress(len(rows), force=True)
    except BaseException:
        pipe.close()
        container.close()
        _clean_out(out_dir, created)
        raise
    pipe.close()
    container.close()
    elapsed = time.monotonic() - started
    summary = {k: v for k, v in meta.items() if k != "frames"}
    summary.update(frame_count=len(rows), elapsed_s=round(elapsed, 3),
                   ingest_fps=round(len(rows) / elapsed, 1) if elapsed > 0 else None)
    log.info("%s: %d frames stored (%d decoded) in %.1fs", src.name, len(rows), decoded, elapsed)
    return summary


def _load_image(path: Path, name: str, out: Path, max_side: int | None, quality: int) -> tuple[int, int, int, int, int]:
    """Runs in the pool: decode (EXIF orientation applied), scale, write. Returns (w, h, ww, wh, bytes).

    A JPEG that needs no change is copied byte for byte (no second generation of loss).
    """
    import cv2

    data = path.read_bytes()
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise BadInput(f"{name}: not a readable image (corrupt, or not a {path.suffix or 'image'} file)")
    h, w = img.shape[:2]
    ww, wh = work_size(w, h, max_side)
    if (ww, wh) == (w, h) and _plain_jpeg(path):
        out.write_bytes(data)
        return w, h, ww, wh, len(data)
    if (ww, wh) != (w, h):
        img = cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA)
    return w, h, ww, wh, _write_jpeg(out, img, quality)


def _plain_jpeg(path: Path) -> bool:
    """A JPEG a browser shows exactly as cv2 decodes it: RGB/grey, no EXIF rotation."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format != "JPEG" or im.mode not in ("RGB", "L"):
                return False
            return im.getexif().get(0x0112, 1) == 1
    except Exception:  # noqa: BLE001 - anything odd: re-encode instead of copying
        return False


def images_to_store(paths: Sequence[Path], out_dir: Path, *, names: Sequence[str] | None = None,
                    max_side: int | None = None, report: Report | None = None,
                    should_stop: ShouldStop | None = None, max_frames: int | None = None,
                    quality: int = JPEG_QUALITY, threads: int | None = None) -> dict:
    """Store an image set: each image one frame, in the given order. Returns the meta summary.

    Images may differ in size: meta then carries "sizes" ([[w, h], ...] original) and
    "work_sizes"; width/height are those of the first image. Raises BadInput for an unreadable
    image or an empty set; nothing is left in out_dir on failure.
    """
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.name for p in paths]
    if not paths:
        raise BadInput("the image set has zero images")
    if max_frames is not None and len(paths) > max_frames:
        raise BadInput(f"{len(paths)} images is more than the limit of {max_frames} frames "
                       "(TPOD_MAX_VIDEO_FRAMES)")
    started = time.monotonic()
    out_dir = Path(out_dir)
    frames_dir, created = _prepare_out(out_dir)
    progress = _Throttle(report, len(paths))
    pool = ThreadPoolExecutor(max_workers=_pool_size(threads), thread_name_prefix="tpod-img")
    try:
        futures: deque[Future] = deque()
        results: list[tuple[int, int, int, int, int]] = []
        limit = _pool_size(threads) * 3
        for idx, (path, name) in enumerate(zip(paths, names, strict=True)):
            _check_stop(should_stop, name)
            futures.append(pool.submit(_load_image, path, name, frames_dir / f"{idx:06d}.jpg", max_side, quality))
            while len(futures) > limit:
                results.append(futures.popleft().result())
                progress(len(results))
        while futures:
            results.append(futures.popleft().result())
        sizes = [[w, h] for w, h, _, _, _ in results]
        work = [[ww, wh] for _, _, ww, wh, _ in results]
        w0, h0 = sizes[0]
        ww0, wh0 = work[0]
        meta: dict[str, Any] = {
            "kind": "images",
            "width": w0, "height": h0, "work_width": ww0, "work_height": wh0,
            "fps": None, "codec": "images", "stride": 1,
            "source_frame_count": len(paths), "duration": 0.0, "jpeg_quality": quality,
            "bytes": sum(r[4] for r in results),
            "frames": [[i, 0.0] for i in range(len(paths))],
            "names": names,
        }
        if any(s != sizes[0] for s in sizes) or any(s != work[0] for s in work):
            meta["sizes"] = sizes
            meta["work_sizes"] = work
        _write_meta(out_dir, meta)
        progress(len(results), force=True)
    except BaseException:
        for fut in futures:
            fut.cancel()
        pool.shutdown(wait=True)
        _clean_out(out_dir, created)
        raise
    pool.shutdown(wait=True)
    elapsed = time.monotonic() - started
    summary = {k: v for k, v in meta.items() if k not in ("frames", "names", "sizes", "work_sizes")}
    summary.update(frame_count=len(paths), elapsed_s=round(elapsed, 3))
    return summary


def make_strip(jpegs: Sequence[Path], height: int = 90, quality: int = 80) -> bytes:
    """One JPEG holding small copies of the given frames side by side (a thumbnail strip)."""
    import cv2

    tiles = []
    for path in jpegs:
        # IMREAD_REDUCED_* decodes at 1/2, 1/4 or 1/8 size: a 1080p frame costs a few ms
        img = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
        if img is None:
            continue
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        tiles.append(cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA))
    if not tiles:
        raise BadInput("no frames to make a thumbnail strip from")
    gap = np.full((height, 4, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    ok, buf = cv2.imencode(".jpg", np.hstack(row), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BadInput("could not encode the thumbnail strip")
    return buf.tobytes()


def is_video_name(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_EXTS


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTS
