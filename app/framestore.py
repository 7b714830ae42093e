"""The frame store: every ingested frame as a JPEG file, for constant-time random access.

Layout under the data dir (written by app/video.py during ingest, read everywhere else):

    videos/<video_id>/frames/<idx:06d>.jpg   frame idx at the stored (working) resolution
    videos/<video_id>/meta.json              {"width", "height" (ORIGINAL), "work_width",
                                              "work_height", "fps", "frames": [[source_idx, ts], ...]}

Boxes are always in ORIGINAL pixel coordinates; `scale_of()` converts stored -> original.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.errors import NotFound
from app.settings import get_settings


def video_dir(video_id: int, data_dir: Path | None = None) -> Path:
    return (data_dir or get_settings().data_dir) / "videos" / str(int(video_id))


def frame_file(video_id: int, idx: int, data_dir: Path | None = None) -> Path:
    return video_dir(video_id, data_dir) / "frames" / f"{int(idx):06d}.jpg"


def read_jpeg(video_id: int, idx: int, data_dir: Path | None = None) -> bytes:
    """The stored JPEG bytes of one frame (what the labeling page sends to the browser)."""
    path = frame_file(video_id, idx, data_dir)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"frame {idx} of video {video_id} is not in the frame store") from None


def read_bgr(video_id: int, idx: int, data_dir: Path | None = None) -> np.ndarray:
    """One frame decoded to a BGR array at the stored resolution."""
    import cv2

    buf = np.frombuffer(read_jpeg(video_id, idx, data_dir), dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise NotFound(f"frame {idx} of video {video_id} could not be decoded")
    return img


@lru_cache(maxsize=256)
def _meta_cached(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def meta(video_id: int, data_dir: Path | None = None) -> dict:
    path = video_dir(video_id, data_dir) / "meta.json"
    try:
        return _meta_cached(str(path), path.stat().st_mtime)
    except FileNotFoundError:
        raise NotFound(f"video {video_id} has no frame store") from None


def scale_of(video_id: int, data_dir: Path | None = None) -> float:
    """Original width / stored width (1.0 when frames are stored at full resolution)."""
    m = meta(video_id, data_dir)
    return float(m["width"]) / float(m.get("work_width") or m["width"])


def frame_size(video_id: int, idx: int, data_dir: Path | None = None) -> tuple[int, int]:
    """ORIGINAL (width, height) of one frame: image sets may mix sizes (meta "sizes")."""
    m = meta(video_id, data_dir)
    sizes = m.get("sizes")
    if sizes:
        try:
            w, h = sizes[int(idx)]
        except IndexError:
            raise NotFound(f"frame {idx} of video {video_id} is not in the frame store") from None
        return int(w), int(h)
    return int(m["width"]), int(m["height"])


def frame_scale(video_id: int, idx: int, data_dir: Path | None = None) -> float:
    """Original width / stored width of one frame (scale_of() for image sets of mixed sizes)."""
    m = meta(video_id, data_dir)
    work = m.get("work_sizes")
    if work:
        return frame_size(video_id, idx, data_dir)[0] / float(work[int(idx)][0])
    return scale_of(video_id, data_dir)
