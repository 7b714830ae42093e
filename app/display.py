"""Display-size frames for the browser: the labeling canvas never needs the stored resolution.

A 1080p frame is ~580 KB as stored; the canvas shows it 680-1280 px wide, so the page sends a
JPEG resized to the canvas width (~40-90 KB at quality 80) instead. Each one is made once and
kept on disk next to the frames, and the last few in memory:

    videos/<video_id>/display_<width>/<idx:06d>.jpg

Boxes stay in ORIGINAL coordinates; the canvas scales them by display width / original width.
Deleting a video removes videos/<id>/, display folders included. `prefetch()` warms the next
frames in a small background pool so that stepping forward finds them ready.
"""
from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app import framestore
from app.errors import BadInput, NotFound
from app.settings import get_settings

log = logging.getLogger(__name__)

QUALITY = 80
MIN_WIDTH, MAX_WIDTH = 16, 4096
LRU_SIZE = 64  # ~64 x 60 KB: a few seconds of stepping for a handful of users
PREFETCH_WORKERS = 2

_lru: OrderedDict[tuple[str, int, int], tuple[int, bytes]] = OrderedDict()
_lru_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_prefetching: set[tuple[str, int]] = set()


def display_file(video_id: int, idx: int, width: int, data_dir: Path | None = None) -> Path:
    """Where the display-size JPEG of one frame is cached."""
    return framestore.video_dir(video_id, data_dir) / f"display_{int(width)}" / f"{int(idx):06d}.jpg"


def _resize(src: bytes, width: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(src)) as im:
        w, h = im.size
        height = max(1, round(h * width / w))
        # JPEG DCT scaling: decode at 1/2, 1/4 or 1/8 size when that is still >= the target.
        im.draft("RGB", (width, height))
        img = im.convert("RGB")
        if img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=QUALITY, optimize=False)
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a partial one (tmp + rename)."""
    # Not parents=True: a prefetch finishing after the video was deleted must not bring back its folder.
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def display_jpeg(video_id: int, idx: int, width: int, data_dir: Path | None = None) -> bytes:
    """The frame `idx` of `video_id` as a JPEG `width` px wide (height keeps the aspect ratio).

    Served from memory, else from the disk cache, else made from the stored frame and cached.
    A stored frame narrower than `width` is resized up (the canvas would stretch it anyway).
    Raises NotFound when the frame is not in the frame store, BadInput for an absurd width.
    """
    width = int(width)
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise BadInput(f"display width {width} is outside {MIN_WIDTH}..{MAX_WIDTH} px")
    src = framestore.frame_file(video_id, idx, data_dir)
    try:
        # The stored frame's mtime keys both caches: a re-ingested video never shows old pixels.
        stamp = src.stat().st_mtime_ns
    except FileNotFoundError:
        raise NotFound(f"frame {idx} of video {video_id} is not in the frame store") from None
    key = (str(src.parent), int(idx), width)
    with _lru_lock:
        hit = _lru.get(key)
        if hit is not None and hit[0] == stamp:
            _lru.move_to_end(key)
            return hit[1]
    path = display_file(video_id, idx, width, data_dir)
    data: bytes | None = None
    try:
        if path.stat().st_mtime_ns >= stamp:
            data = path.read_bytes()
    except FileNotFoundError:
        pass
    if data is None:
        data = _resize(framestore.read_jpeg(video_id, idx, data_dir), width)
        try:
            _write_atomic(path, data)
        except FileNotFoundError:
            # The video was deleted meanwhile (its folder went away): nothing to cache for.
            raise NotFound(f"frame {idx} of video {video_id} is not in the frame store") from None
    with _lru_lock:
        _lru[key] = (stamp, data)
        _lru.move_to_end(key)
        while len(_lru) > LRU_SIZE:
            _lru.popitem(last=False)
    return data


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=PREFETCH_WORKERS, thread_name_prefix="display-prefetch")
        return _pool


def _warm(token: tuple[str, int], video_id: int, idxs: list[int], width: int, data_dir: Path) -> int:
    done = 0
    try:
        for i in idxs:
            try:
                display_jpeg(video_id, i, width, data_dir)
                done += 1
            except NotFound:
                break  # past the last frame, or the video is gone
    except Exception:  # noqa: BLE001 - a background warm-up must never take the process down
        log.exception("display prefetch of video %s failed", video_id)
    finally:
        with _pool_lock:
            _prefetching.discard(token)
    return done


def prefetch(video_id: int, idxs: Iterable[int], width: int, data_dir: Path | None = None) -> bool:
    """Make the display JPEGs of `idxs` in the background; returns False (and does nothing) when a
    prefetch of this video is still running, so a fast stepper never queues up stale work."""
    data_dir = data_dir or get_settings().data_dir
    token = (str(framestore.video_dir(video_id, data_dir)), int(video_id))
    wanted = [int(i) for i in idxs if int(i) >= 0]
    if not wanted:
        return False
    with _pool_lock:
        if token in _prefetching:
            return False
        _prefetching.add(token)
    try:
        _executor().submit(_warm, token, int(video_id), wanted, int(width), data_dir)
    except RuntimeError:  # interpreter shutting down
        with _pool_lock:
            _prefetching.discard(token)
        return False
    return True


def prefetch_busy(video_id: int, data_dir: Path | None = None) -> bool:
    """Whether a prefetch of this video is still running (tests wait on it)."""
    data_dir = data_dir or get_settings().data_dir
    with _pool_lock:
        return (str(framestore.video_dir(video_id, data_dir)), int(video_id)) in _prefetching


def clear_memory_cache() -> None:
    """Forget the in-process copies (tests; the disk cache stays)."""
    with _lru_lock:
        _lru.clear()
