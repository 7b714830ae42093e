"""app/video.py: decoding real clips into the frame store, and refusing bad files."""
from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.errors import BadInput
from app.video import IngestCancelled, decode_to_store, images_to_store, probe, work_size

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = {
    "crossing": (SHARED / "otb_crossing" / "crossing_h264.mp4", 120, (360, 240)),
    "uav": (SHARED / "uav123_person11" / "person11_first100_10fps_h264.mp4", 100, (1280, 720)),
    "traffic": (SHARED / "cvat_coco_traffic" / "traffic_first90_1080p_h264.mp4", 90, (1920, 1080)),
    "vtest": (SHARED / "opencv_vtest" / "vtest.avi", 795, (768, 576)),
    "datumaro": (SHARED / "datumaro_format_fixtures" / "cvat_dataset" / "test.mp4", 30, (240, 180)),
}


def cv2_frames(path: Path, upto: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while upto is None or len(out) < upto:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def cv2_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def make_video(path: Path, n: int = 30, size: tuple[int, int] = (160, 120), *, codec: str = "libx264",
               rate: int = 30, pts_ms: list[int] | None = None, rotation: int = 0,
               options: dict | None = None) -> Path:
    """A small synthetic video: a white square moving over a coloured background."""
    w, h = size
    with av.open(str(path), "w", options=options or {}) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        for i in range(n):
            a = np.full((h, w, 3), (40, 90 + i % 100, 160), np.uint8)
            x = (i * 5) % max(1, w - 20)
            a[10:30, x:x + 20] = 255
            a[:8, :8] = (0, 0, 255)  # red top-left marker: orientation checks
            frame = av.VideoFrame.from_ndarray(a, format="bgr24")
            if pts_ms is not None:
                frame.pts = pts_ms[i]
                frame.time_base = Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def read_meta(out: Path) -> dict:
    return json.loads((out / "meta.json").read_text())


@pytest.mark.parametrize("clip", list(CLIPS))
def test_real_clip_frame_count_matches_opencv(clip: str, tmp_path: Path) -> None:
    path, expected, (w, h) = CLIPS[clip]
    out = tmp_path / "store"
    summary = decode_to_store(path, out, max_side=200)
    meta = read_meta(out)
    assert summary["frame_count"] == len(meta["frames"]) == cv2_count(path) == expected
    assert (meta["width"], meta["height"]) == (w, h)
    assert max(meta["work_width"], meta["work_height"]) == 200
    files = sorted((out / "frames").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.jpg" for i in range(expected)]
    first = cv2.imread(str(files[0]))
    assert (first.shape[1], first.shape[0]) == (meta["work_width"], meta["work_height"])
    ts = [t for _, t in meta["frames"]]
    assert ts[0] == 0.0 and all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert [s for s, _ in meta["frames"]] == list(range(expected))


def test_probe_reports_decoded_count_fps_and_codec() -> None:
    info = probe(CLIPS["traffic"][0])
    assert (info.width, info.height, info.frame_count, info.exact) == (1920, 1080, 90, True)
    assert info.fps == pytest.approx(30000 / 1001)
    assert info.duration == pytest.approx(90 * 1001 / 30000, abs=1e-3)
    assert info.codec == "h264"
    vtest = probe(CLIPS["vtest"][0])
    assert (vtest.frame_count, vtest.fps, vtest.codec) == (795, 10.0, "msmpeg4")
    quick = probe(CLIPS["vtest"][0], count=False)
    assert quick.exact is False and quick.frame_count == 795


def test_stored_pixels_match_opencv(tmp_path: Path) -> None:
    path = CLIPS["uav"][0]
    decode_to_store(path, tmp_path / "s", end_s=1.25)
    ref = cv2_frames(path, upto=12)
    for idx in (0, 11):
        stored = cv2.imread(str(tmp_path / "s" / "frames" / f"{idx:06d}.jpg"))
        psnr = cv2.PSNR(stored, ref[idx])
        assert psnr > 36, f"frame {idx}: PSNR {psnr:.1f} dB"
    decode_to_store(path, tmp_path / "small", end_s=0.05, max_side=640)
    small = cv2.imread(str(tmp_path / "small" / "frames" / "000000.jpg"))
    assert cv2.PSNR(small, cv2.resize(ref[0], (640, 360), interpolation=cv2.INTER_AREA)) > 34


def test_stride_and_time_range_keep_source_index_and_timestamps(tmp_path: Path) -> None:
    path = CLIPS["crossing"][0]
    decode_to_store(path, tmp_path / "a", stride=3)
    meta = read_meta(tmp_path / "a")
    assert len(meta["frames"]) == 40
    assert [s for s, _ in meta["frames"][:4]] == [0, 3, 6, 9]
    assert meta["frames"][-1][1] == pytest.approx(117 / 30)
    decode_to_store(path, tmp_path / "b", start_s=1.0, end_s=2.0, stride=2)
    meta = read_meta(tmp_path / "b")
    assert [s for s, _ in meta["frames"]] == list(range(30, 60, 2))
    assert meta["frames"][0][1] == pytest.approx(1.0)
    with pytest.raises(BadInput, match="no frames in the time range"):
        decode_to_store(path, tmp_path / "c", start_s=100.0)
    assert not (tmp_path / "c").exists()


def test_variable_frame_rate_keeps_each_timestamp(tmp_path: Path) -> None:
    pts = [0, 33, 66, 200, 233, 600, 633, 1000]
    path = make_video(tmp_path / "vfr.mkv", n=len(pts), pts_ms=pts)
    decode_to_store(path, tmp_path / "s")
    meta = read_meta(tmp_path / "s")
    assert [round(t * 1000) for _, t in meta["frames"]] == pts
    assert len(meta["frames"]) == cv2_count(path)


def test_display_rotation_is_applied_like_opencv(tmp_path: Path) -> None:
    path = make_video(tmp_path / "rot.mp4", n=3, size=(64, 32), rotation=90)
    decode_to_store(path, tmp_path / "s")
    meta = read_meta(tmp_path / "s")
    assert (meta["width"], meta["height"]) == (32, 64)
    stored = cv2.imread(str(tmp_path / "s" / "frames" / "000000.jpg"))
    ref = cv2_frames(path, upto=1)[0]
    assert stored.shape == ref.shape == (64, 32, 3)
    assert cv2.PSNR(stored, ref) > 30
    decode_to_store(path, tmp_path / "small", max_side=32)
    small = cv2.imread(str(tmp_path / "small" / "frames" / "000000.jpg"))
    assert small.shape == (32, 16, 3)
    assert cv2.PSNR(small, cv2.resize(ref, (16, 32), interpolation=cv2.INTER_AREA)) > 25


def test_max_side_and_work_size() -> None:
    assert work_size(1920, 1080, None) == (1920, 1080)
    assert work_size(1920, 1080, 1280) == (1280, 720)
    assert work_size(720, 1280, 640) == (360, 640)
    assert work_size(300, 200, 640) == (300, 200)


def _bad_files(tmp: Path) -> dict[str, Path]:
    tmp.mkdir()
    good = make_video(tmp / "good.mp4", n=60, options={"movflags": "faststart"})
    data = good.read_bytes()
    (tmp / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp / "no_index.mp4").write_bytes(data[: 40])
    (tmp / "text.mp4").write_text("this is not a video\n" * 40)
    (tmp / "random.mp4").write_bytes(os.urandom(30000))
    (tmp / "empty.mp4").write_bytes(b"")
    with av.open(str(tmp / "zero.avi"), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()  # header only: a video stream with no frames
    with av.open(str(tmp / "audio.mp4"), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for _ in range(5):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate = 44100
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    avi = make_video(tmp / "m4.avi", n=10, codec="mpeg4").read_bytes()
    (tmp / "unknown_codec.avi").write_bytes(avi.replace(b"FMP4", b"ZQZQ"))
    return {p.stem: p for p in tmp.iterdir() if p.stem != "good" and p.stem != "m4"}


BAD = {
    "truncated": "truncated",
    "no_index": "not a readable video",
    "text": "not a readable video",
    "random": "not a readable video",
    "empty": "empty",
    "zero": "zero decodable frames",
    "audio": "no video stream",
    "unknown_codec": "unsupported video codec",
}


def test_bad_videos_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    files = _bad_files(tmp_path / "in")
    assert set(files) == set(BAD)
    for stem, message in BAD.items():
        out = tmp_path / f"out_{stem}"
        with pytest.raises(BadInput, match=message) as err:
            decode_to_store(files[stem], out)
        assert files[stem].name in str(err.value)
        assert not out.exists(), f"{stem}: left {out}"
        with pytest.raises(BadInput, match=message):
            probe(files[stem])


def test_frame_limit_and_cancel_leave_nothing(tmp_path: Path) -> None:
    path = CLIPS["crossing"][0]
    with pytest.raises(BadInput, match="more than 50 frames"):
        decode_to_store(path, tmp_path / "a", max_frames=50)
    assert not (tmp_path / "a").exists()
    decode_to_store(path, tmp_path / "b", max_frames=50, stride=3)
    assert len(read_meta(tmp_path / "b")["frames"]) == 40
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(IngestCancelled):
        decode_to_store(path, tmp_path / "c", should_stop=stop)
    assert not (tmp_path / "c").exists()


def test_progress_reports_done_total_fps_eta(tmp_path: Path) -> None:
    reports: list[dict] = []
    decode_to_store(CLIPS["vtest"][0], tmp_path / "s", max_side=160, report=lambda **kw: reports.append(kw))
    assert reports, "no progress reported"
    last = reports[-1]
    assert last["done"] == last["total"] == 795
    assert {"fps", "eta"} <= set(last)


def test_image_set_of_mixed_sizes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    jpg = SHARED / "otb_crossing" / "img" / "0001.jpg"
    png = src / "b.png"
    cv2.imwrite(str(png), np.full((50, 80, 4), 200, np.uint8))  # RGBA png, another size
    out = tmp_path / "store"
    summary = images_to_store([jpg, png], out, names=["0001.jpg", "b.png"])
    meta = read_meta(out)
    assert summary["frame_count"] == 2 and meta["kind"] == "images"
    assert meta["sizes"] == [[360, 240], [80, 50]]
    assert meta["names"] == ["0001.jpg", "b.png"]
    # an unchanged JPEG is stored byte for byte; other formats are re-encoded
    assert (out / "frames" / "000000.jpg").read_bytes() == jpg.read_bytes()
    assert cv2.imread(str(out / "frames" / "000001.jpg")).shape == (50, 80, 3)
    images_to_store([jpg, png], tmp_path / "small", max_side=40)
    meta = read_meta(tmp_path / "small")
    assert meta["work_sizes"] == [[40, 27], [40, 25]]


def test_unreadable_image_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(BadInput, match="bad.jpg: not a readable image"):
        images_to_store([SHARED / "otb_crossing" / "img" / "0001.jpg", bad], tmp_path / "s")
    assert not (tmp_path / "s").exists()


def _bars_video(path: Path, codec: str, pix_fmt: str, size: tuple[int, int], *, colorspace: int | None = None,
                color_range: int | None = None) -> Path:
    """Two frames of white | green | black vertical bars in the given codec and pixel format."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if colorspace is not None:
            s.codec_context.colorspace = colorspace
        if color_range is not None:
            s.codec_context.color_range = color_range
        for i in range(2):
            a = np.zeros((h, w, 3), np.uint8)
            a[:, : w // 3] = 255
            a[:, w // 3: 2 * w // 3] = (20, 200, 60)
            frame = av.VideoFrame.from_ndarray(a, format="bgr24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize(("codec", "pix_fmt", "size", "colorspace", "color_range"), [
    ("libx264", "yuv420p", (64, 48), None, None),      # limited range, unflagged matrix (BT.601)
    ("libx264", "yuv420p", (64, 48), 1, None),         # flagged BT.709
    ("mjpeg", "yuvj420p", (64, 48), None, 2),          # full range already
    ("libx264", "yuv444p", (64, 48), None, None),
    ("libx264", "yuv420p10le", (64, 48), None, None),  # 10 bit
    ("ffv1", "yuv444p", (63, 49), None, None),         # odd size
    ("ffv1", "gray", (65, 47), None, None),
    ("ffv1", "bgr0", (64, 48), None, None),            # RGB source
])
def test_stored_colours_match_opencv_for_each_pixel_format(tmp_path: Path, codec: str, pix_fmt: str,
                                                           size: tuple[int, int], colorspace: int | None,
                                                           color_range: int | None) -> None:
    # Frames are JPEG-encoded from YUV planes: range, matrix, depth and format must all be
    # converted, or blacks turn grey and colours shift against what OpenCV and players show.
    path = _bars_video(tmp_path / f"bars_{pix_fmt}.mkv", codec, pix_fmt, size, colorspace=colorspace,
                       color_range=color_range)
    decode_to_store(path, tmp_path / "s")
    stored = cv2.imread(str(tmp_path / "s" / "frames" / "000000.jpg"))
    ref = cv2_frames(path, upto=1)[0]
    assert stored.shape == ref.shape == (size[1], size[0], 3)
    assert cv2.PSNR(stored, ref) > 30
    assert stored[size[1] // 2, 2].min() >= 245, "white bar is not white"
    assert stored[size[1] // 2, -3].max() <= 10, "black bar is not black"


def test_yuv_and_bgr_encoders_agree(tmp_path: Path) -> None:
    # The BGR path is the fallback for frames the YUV path refuses; both must store the same picture.
    from app.video import _jpeg_from_bgr, _jpeg_from_yuv

    path = CLIPS["uav"][0]
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    for size in (None, (640, 360)):
        a = cv2.imdecode(np.frombuffer(_jpeg_from_yuv(frame, size, 0, 90), np.uint8), cv2.IMREAD_COLOR)
        b = cv2.imdecode(np.frombuffer(_jpeg_from_bgr(frame, size, 0, 90), np.uint8), cv2.IMREAD_COLOR)
        assert a.shape == b.shape
        assert cv2.PSNR(a, b) > 36
