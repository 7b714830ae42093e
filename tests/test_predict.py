"""Predicting with the tiny real model: frames, files, preview clips; bad weights refused."""
from __future__ import annotations

import zipfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.errors import BadInput, NotFound
from app.predict import (
    draw_boxes,
    load_model,
    model_classes,
    predict_frames,
    predict_path,
    preview_image,
    render_preview,
)
from app.projects import create_project
from tests._tiny_model import IMGSZ, OTB, make_video, otb_frame, tiny_model

CONF = 0.005
CLIP = OTB / "crossing_h264.mp4"


@pytest.fixture(scope="module")
def weights() -> Path:
    return tiny_model()


def _torch_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x04garbage")
    return path


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda d: d / "missing.pt", NotFound, "does not exist"),
    (lambda d: (d / "junk.pt").write_bytes(b"\x00" * 100) and d / "junk.pt", BadInput, "not a PyTorch checkpoint"),
    (lambda d: _torch_zip(d / "broken.pt"), BadInput, "could not be loaded as a YOLO model"),
    (lambda d: (d / "model.onnx").write_bytes(b"x") and d / "model.onnx", BadInput, "must be an Ultralytics .pt"),
])
def test_bad_weights_are_refused_clearly(tmp_path: Path, make, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_model(make(tmp_path))


def test_predict_frames_in_frame_pixels(weights: Path) -> None:
    assert model_classes(weights) == ["person"]
    big = cv2.imread(str(otb_frame(0)))
    small = cv2.resize(big, (180, 120))
    out = predict_frames(weights, [big, small], conf=CONF, imgsz=IMGSZ, device="cpu", first_frame=7)
    assert len(out) == 2 and out[0] and out[1]
    for boxes, (h, w) in zip(out, ((240, 360), (120, 180)), strict=True):
        for b in boxes:
            assert 0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h
            assert b.label == "person" and b.class_id == 0 and b.source == "predicted" and b.confidence >= CONF
    assert {b.frame for b in out[0]} == {7} and {b.frame for b in out[1]} == {8}
    # the same image at half size gives the same boxes at half size
    top_big = max(out[0], key=lambda b: b.confidence)
    top_small = max(out[1], key=lambda b: b.confidence)
    assert top_small.x2 == pytest.approx(top_big.x2 / 2, abs=4) and top_small.y2 == pytest.approx(top_big.y2 / 2, abs=4)
    with pytest.raises(BadInput):
        predict_frames(weights, [big], conf=2.0)


def test_predict_path_image_and_video(weights: Path, tmp_path: Path) -> None:
    image = predict_path(weights, otb_frame(3), conf=CONF, imgsz=IMGSZ)
    assert len(image) == 1 and image[0]
    video = predict_path(weights, CLIP, conf=CONF, imgsz=IMGSZ, max_frames=12)
    assert len(video) == 12 and all(video) and video[11][0].frame == 11
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(BadInput, match="expected an image"):
        predict_path(weights, tmp_path / "notes.txt")
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    with pytest.raises(BadInput, match="not a readable video"):
        predict_path(weights, tmp_path / "fake.mp4")


def _probe(path: Path) -> tuple[str, str, int, int, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height, n


def test_render_preview_is_browser_playable_h264(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    vid = make_video(project.id, frames=list(range(30)))
    stats: dict = {}
    out = render_preview(weights, vid, data_dir / "previews" / "a.mp4", start=5, end=20, conf=CONF, imgsz=IMGSZ,
                         stats=stats)
    assert stats["frames"] == 15 and stats["boxes"] > 0
    codec, pix, w, h, n = _probe(out)
    assert (codec, pix, w, h, n) == ("h264", "yuv420p", 360, 240, 15)
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "moov atom should come first (faststart)"
    assert not list(out.parent.glob("*.part*"))

    from_file = render_preview(weights, CLIP, data_dir / "previews" / "b.mp4", start=0, end=8, conf=CONF,
                               imgsz=IMGSZ)
    assert _probe(from_file)[0] == "h264" and _probe(from_file)[4] == 8
    # boxes are drawn: the preview differs from the plain frame
    with av.open(str(from_file)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="bgr24")
    with av.open(str(CLIP)) as c:
        plain = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert np.abs(first.astype(int) - plain.astype(int)).mean() > 1.0

    with pytest.raises(BadInput, match="empty"):
        render_preview(weights, vid, data_dir / "previews" / "c.mp4", start=10, end=10)
    assert not (data_dir / "previews" / "c.mp4").exists()


def test_preview_image_and_draw_boxes(weights: Path) -> None:
    rgb, boxes = preview_image(weights, otb_frame(0), conf=CONF, imgsz=IMGSZ)
    assert rgb.shape == (240, 360, 3) and boxes
    plain = cv2.imread(str(otb_frame(0)))
    assert not np.array_equal(rgb[:, :, ::-1], plain)
    assert np.array_equal(draw_boxes(plain, []), plain)


def test_preview_of_uploads(data_dir: Path, weights: Path) -> None:
    from app.predict import preview

    image = preview(weights, upload=("photo.JPG", otb_frame(0).read_bytes()), conf=CONF, imgsz=IMGSZ)
    assert image["kind"] == "image" and image["image"].shape == (240, 360, 3) and image["boxes"] > 0
    clip = preview(weights, upload=("clip.mp4", CLIP.read_bytes()), end=6, conf=CONF, imgsz=IMGSZ)
    assert clip["kind"] == "video" and clip["frames"] == 6 and _probe(clip["path"])[0] == "h264"
    assert not list((data_dir / "previews").glob("upload-*")), "uploaded copies are removed"
    with pytest.raises(BadInput, match="upload an image"):
        preview(weights, upload=("notes.txt", b"hello"))
    with pytest.raises(BadInput, match="choose a project video"):
        preview(weights)
