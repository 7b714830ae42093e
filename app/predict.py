"""Run a trained detector: load weights, predict on frames, images or videos, render a preview clip.

Ultralytics' results are converted to `Box` (pixel xyxy in the frame's own coordinates) here, at
the edge, the way supervision's `Detections.from_ultralytics` does; nothing else in tpod looks at
Ultralytics result objects.
"""
from __future__ import annotations

import logging
import threading
import zipfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from app.domain import Box
from app.errors import BadInput, NotFound
from app.settings import get_settings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
MAX_PREVIEW_FRAMES = 3000

_models: dict[tuple[str, float], Any] = {}
_models_lock = threading.Lock()


def prepare_yolo(data_dir: Path | None = None) -> None:
    """Make Ultralytics offline-safe (config dir under the data dir, local fonts, no downloads and
    no pip installs). Call before the first `import ultralytics`; harmless afterwards."""
    from app.weights import prepare_offline

    prepare_offline(Path(data_dir) if data_dir else None)


def check_weights_file(path: Path) -> None:
    """Refuse, cheaply and before torch loads it, a file that cannot be YOLO weights."""
    if not path.exists():
        raise NotFound(f"weights file {path} does not exist")
    if path.suffix.lower() != ".pt":
        raise BadInput(f"{path.name}: weights must be an Ultralytics .pt file")
    # torch.save writes a zip archive; anything else cannot be a checkpoint.
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{path.name} is not a PyTorch checkpoint (corrupt or not a .pt file)")


def load_model(path: str | Path) -> Any:
    """An Ultralytics YOLO model from a .pt file; BadInput when the file is not a usable detector.

    Models are cached per (path, mtime) so a page preview or a job reuses a loaded model.
    """
    path = Path(path)
    check_weights_file(path)
    key = (str(path.resolve()), path.stat().st_mtime)
    with _models_lock:
        if key in _models:
            return _models[key]
    prepare_yolo()
    from ultralytics import YOLO

    try:
        model = YOLO(str(path), task="detect")
    except Exception as exc:  # torch/pickle raise anything for a damaged file
        raise BadInput(f"{path.name} could not be loaded as a YOLO model: {str(exc).splitlines()[0][:200]}") from None
    if getattr(model, "task", "detect") != "detect":
        raise BadInput(f"{path.name} is a {model.task} model; tpod needs a detection model")
    with _models_lock:
        _models[key] = model
    return model


def model_classes(path: str | Path) -> list[str]:
    """The class names of a weights file, in class-index order."""
    names = load_model(path).names
    return [str(names[i]) for i in sorted(names)]


def pick_device(device: str | None) -> str:
    """The Ultralytics device for a request ("auto"/None: the first GPU when there is one, else CPU)."""
    device = device or get_settings().device
    if device in ("", "auto"):
        import torch

        return "0" if torch.cuda.is_available() else "cpu"
    return device


def boxes_from_result(result: Any, frame: int = 0, scale: float = 1.0) -> list[Box]:
    """Convert one Ultralytics Results object to Boxes (xyxy multiplied by `scale`)."""
    det = result.boxes
    if det is None or len(det) == 0:
        return []
    xyxy = det.xyxy.cpu().numpy().astype(float) * scale
    conf = det.conf.cpu().numpy().astype(float)
    cls = det.cls.cpu().numpy().astype(int)
    names = result.names
    return [
        Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), frame=frame, label=str(names[int(c)]),
            source="predicted", confidence=float(p), class_id=int(c))
        for b, p, c in zip(xyxy, conf, cls, strict=True)
    ]


def predict_frames(model_path: str | Path, frames: list[np.ndarray], *, conf: float = 0.25, imgsz: int = 640,
                   device: str | None = None, batch: int = 8, max_det: int = 300,
                   first_frame: int = 0) -> list[list[Box]]:
    """Detections for each BGR frame, in that frame's pixel coordinates.

    Box.class_id is the MODEL's class index and Box.label its class name; Box.frame counts from
    `first_frame`.
    """
    if not 0.0 <= conf <= 1.0:
        raise BadInput(f"confidence {conf} must be between 0 and 1")
    model = load_model(model_path)
    dev = pick_device(device)
    out: list[list[Box]] = []
    for start in range(0, len(frames), max(1, batch)):
        chunk = frames[start:start + batch]
        results = model.predict(chunk, conf=conf, imgsz=imgsz, device=dev, verbose=False, max_det=max_det)
        for i, r in enumerate(results):
            out.append(boxes_from_result(r, frame=first_frame + start + i))
    return out


def _read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInput(f"{path.name} is not a readable image")
    return img


def iter_video(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, np.ndarray, float]]:
    """(frame number, BGR frame, fps) for each decoded frame of a video file in [start, end)."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise BadInput(f"{path.name} is not a readable video: {exc}") from None
    with container:
        if not container.streams.video:
            raise BadInput(f"{path.name} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        i = 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                if end is not None and i >= end:
                    break
                if i >= start:
                    yield i, frame.to_ndarray(format="bgr24"), fps
        except av.FFmpegError as exc:
            raise BadInput(f"{path.name}: decoding failed at frame {i}: {exc}") from None


def predict_path(model_path: str | Path, path: str | Path, *, conf: float = 0.25, imgsz: int = 640,
                 device: str | None = None, max_frames: int = MAX_PREVIEW_FRAMES) -> list[list[Box]]:
    """Detections for an image file (one list) or each frame of a video file."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return predict_frames(model_path, [_read_image(path)], conf=conf, imgsz=imgsz, device=device)
    if suffix not in VIDEO_SUFFIXES:
        raise BadInput(f"{path.name}: expected an image ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                       f"or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    out: list[list[Box]] = []
    chunk: list[np.ndarray] = []
    for _i, img, _fps in iter_video(path, 0, max_frames):
        chunk.append(img)
        if len(chunk) == 16:
            out += predict_frames(model_path, chunk, conf=conf, imgsz=imgsz, device=device, first_frame=len(out))
            chunk = []
    if chunk:
        out += predict_frames(model_path, chunk, conf=conf, imgsz=imgsz, device=device, first_frame=len(out))
    return out


def _palette_bgr(index: int) -> tuple[int, int, int]:
    from app.names import PALETTE

    h = PALETTE[index % len(PALETTE)].lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def draw_boxes(img: np.ndarray, boxes: Iterable[Box]) -> np.ndarray:
    """A copy of `img` with each box and its "label conf" drawn (OpenCV's built-in font: no TTF)."""
    import cv2

    out = img.copy()
    thick = max(1, round(max(out.shape[:2]) / 400))
    for b in boxes:
        color = _palette_bgr(b.class_id or 0)
        p1, p2 = (int(round(b.x1)), int(round(b.y1))), (int(round(b.x2)), int(round(b.y2)))
        cv2.rectangle(out, p1, p2, color, thick)
        text = b.label if b.confidence is None else f"{b.label} {b.confidence:.2f}"
        scale = 0.4 * thick
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y = p1[1] - 2 if p1[1] - th - base - 2 >= 0 else p1[1] + th + base + 2
        cv2.rectangle(out, (p1[0], y - th - base), (p1[0] + tw + 2, y + 1), color, -1)
        cv2.putText(out, text, (p1[0] + 1, y - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out


def preview_image(model_path: str | Path, path: str | Path, *, conf: float = 0.25, imgsz: int = 640,
                  device: str | None = None) -> tuple[np.ndarray, list[Box]]:
    """An image file with the model's boxes drawn (RGB array, for st.image) and the boxes."""
    img = _read_image(Path(path))
    boxes = predict_frames(model_path, [img], conf=conf, imgsz=imgsz, device=device)[0]
    return draw_boxes(img, boxes)[:, :, ::-1].copy(), boxes


class H264Writer:
    """Writes BGR frames to a browser-playable mp4: H.264 (libx264), yuv420p, moov atom first."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        import av

        self.path = path
        self.width, self.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self._container = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr[: self.height, : self.width]), format="bgr24")
        for packet in self._stream.encode(frame.reformat(format="yuv420p")):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


def _preview_source(source: int | str | Path, start: int, end: int | None,
                    ) -> tuple[Iterator[tuple[int, np.ndarray]], float, float]:
    """(frames, fps, scale) of a project video's frame store or of an image/video file."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        from app import framestore

        vid = int(source)
        meta = framestore.meta(vid)
        n = len(meta.get("frames") or [])
        stop = n if end is None else min(end, n)
        frames = ((i, framestore.read_bgr(vid, i)) for i in range(max(0, start), stop))
        return frames, float(meta.get("fps") or 25.0), 1.0
    path = Path(source)
    if not path.exists():
        raise NotFound(f"{path} does not exist")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        img = _read_image(path)
        return iter([(0, img)]), 1.0, 1.0
    it = iter_video(path, start, end)
    first = next(it, None)
    if first is None:
        raise BadInput(f"{path.name} has no frames in [{start}, {end})")

    def chain() -> Iterator[tuple[int, np.ndarray]]:
        yield first[0], first[1]
        for i, img, _ in it:
            yield i, img

    return chain(), first[2], 1.0


def render_preview(model_path: str | Path, source: int | str | Path, out_mp4: str | Path, *,
                   start: int = 0, end: int | None = None, conf: float = 0.25, imgsz: int = 640,
                   device: str | None = None, max_frames: int = MAX_PREVIEW_FRAMES,
                   stats: dict[str, int] | None = None) -> Path:
    """Run the model over frames [start, end) of a video id (frame store) or an image/video file and
    write them with boxes drawn to `out_mp4` as H.264 (plays in browsers via st.video).
    `stats`, when given, receives {"frames", "boxes"}."""
    counts = stats if stats is not None else {}
    counts.update(frames=0, boxes=0)
    if end is not None and end <= start:
        raise BadInput(f"frame range [{start}, {end}) is empty")
    if end is None or end - start > max_frames:
        end = start + max_frames
    out_mp4 = Path(out_mp4)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    frames, fps, _scale = _preview_source(source, start, end)
    tmp = out_mp4.with_name(out_mp4.name + ".part.mp4")
    writer: H264Writer | None = None
    try:
        batch: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            nonlocal writer
            dets = predict_frames(model_path, [img for _, img in batch], conf=conf, imgsz=imgsz, device=device)
            for (_, img), boxes in zip(batch, dets, strict=True):
                counts["frames"] += 1
                counts["boxes"] += len(boxes)
                if writer is None:
                    writer = H264Writer(tmp, fps, img.shape[1], img.shape[0])
                writer.write(draw_boxes(img, boxes))
            batch.clear()

        for idx, img in frames:
            batch.append((idx, img))
            if len(batch) == 8:
                flush()
        if batch:
            flush()
        if writer is None:
            raise BadInput(f"no frames to preview in [{start}, {end})")
        writer.close()
        writer = None
        tmp.replace(out_mp4)
    finally:
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the original error matters more
                log.debug("closing a failed preview writer", exc_info=True)
        tmp.unlink(missing_ok=True)
    return out_mp4


PREVIEW_KEEP = 20  # rendered clips kept under <data_dir>/previews (oldest removed first)


def _prune_previews(folder: Path, keep: int = PREVIEW_KEEP) -> None:
    clips = sorted(folder.glob("*.mp4"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in clips[keep:]:
        old.unlink(missing_ok=True)


def preview(model_path: str | Path, *, video_id: int | None = None, upload: tuple[str, bytes] | None = None,
            start: int = 0, end: int | None = None, conf: float = 0.25, imgsz: int = 640,
            device: str | None = None) -> dict[str, Any]:
    """What the Models page shows: the model run on frames [start, end) of a project video, or on
    an uploaded image or video (name, bytes). Returns {"kind": "video", "path": mp4, "frames", "boxes"}
    or {"kind": "image", "image": RGB array, "frames": 1, "boxes"} (boxes: how many were found)."""
    import uuid

    from app.errors import TooLarge
    from app.names import safe_filename

    settings = get_settings()
    folder = settings.data_dir / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    _prune_previews(folder)
    out = folder / f"{uuid.uuid4().hex[:12]}.mp4"
    stats: dict[str, int] = {}
    if video_id is not None:
        path = render_preview(model_path, int(video_id), out, start=start, end=end, conf=conf, imgsz=imgsz,
                              device=device, stats=stats)
        return {"kind": "video", "path": path, **stats}
    if upload is None:
        raise BadInput("choose a project video or upload an image or a video to preview")
    name, data = upload
    if len(data) > settings.max_upload_mb * 1024 * 1024:
        raise TooLarge(f"{name} is over the {settings.max_upload_mb} MB upload limit")
    suffix = Path(name).suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise BadInput(f"{name}: upload an image ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                       f"or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    source = folder / f"upload-{uuid.uuid4().hex[:12]}-{safe_filename(name, 'upload' + suffix)}"
    source.write_bytes(data)
    try:
        if suffix in IMAGE_SUFFIXES:
            image, boxes = preview_image(model_path, source, conf=conf, imgsz=imgsz, device=device)
            return {"kind": "image", "image": image, "frames": 1, "boxes": len(boxes)}
        path = render_preview(model_path, source, out, start=start, end=end, conf=conf, imgsz=imgsz, device=device,
                              stats=stats)
        return {"kind": "video", "path": path, **stats}
    finally:
        source.unlink(missing_ok=True)
