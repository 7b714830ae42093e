"""Display-size frames: sizes, the two caches, atomic writes, prefetch, bad input."""
from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from app import display, framestore
from app.errors import BadInput, NotFound
from tests.conftest import SHARED, wait_for

TRAFFIC = SHARED / "cvat_coco_traffic" / "frames_jpg"


def _frames_dir() -> list[Path]:
    files = sorted(TRAFFIC.glob("*.jpg"))
    assert len(files) == 2, f"expected the two traffic frames under {TRAFFIC}"
    return [files[i % 2] for i in range(6)]


@pytest.fixture
def video(data_dir: Path) -> int:
    """A frame store of 6 full-HD frames (the two real traffic frames, alternating) (no DB needed: display reads files only)."""
    out = framestore.video_dir(7) / "frames"
    out.mkdir(parents=True)
    for i, src in enumerate(_frames_dir()):
        (out / f"{i:06d}.jpg").write_bytes(src.read_bytes())
    display.clear_memory_cache()
    yield 7
    wait_for(lambda: not display.prefetch_busy(7), timeout=30, what="prefetch to finish")
    display.clear_memory_cache()


def _size(jpeg: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG"
        return im.size


@pytest.mark.parametrize("width", [680, 960, 1280])
def test_display_frame_has_the_canvas_width_and_is_much_smaller(video: int, width: int) -> None:
    full = framestore.read_jpeg(video, 0)
    w0, h0 = _size(full)
    small = display.display_jpeg(video, 0, width)
    assert _size(small) == (width, round(h0 * width / w0))
    assert len(small) < len(full) / 2.5
    assert display.display_file(video, 0, width).read_bytes() == small


def test_memory_then_disk_cache_hits(video: int) -> None:
    first = display.display_jpeg(video, 1, 680)
    path = display.display_file(video, 1, 680)
    # the in-process copy answers even when the disk copy is gone
    path.unlink()
    assert display.display_jpeg(video, 1, 680) is first
    # after forgetting it, the disk copy answers as it is (a marker proves it is not re-made)
    display.clear_memory_cache()
    path.write_bytes(first + b"disk")
    assert display.display_jpeg(video, 1, 680) == first + b"disk"


def test_a_replaced_stored_frame_is_never_shown_from_the_caches(video: int) -> None:
    import os

    old = display.display_jpeg(video, 2, 680)
    src = framestore.frame_file(video, 2)
    src.write_bytes(framestore.read_jpeg(video, 3))
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = display.display_jpeg(video, 2, 680)
    assert new != old and new == display.display_jpeg(video, 3, 680)


def test_writes_are_atomic_and_leave_no_temporary_files(video: int) -> None:
    results: list[bytes] = []
    lock = threading.Lock()

    def fetch() -> None:
        data = display.display_jpeg(video, 4, 800)
        with lock:
            results.append(data)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folder = display.display_file(video, 4, 800).parent
    assert [p.name for p in folder.iterdir()] == ["000004.jpg"]
    assert _size(folder.joinpath("000004.jpg").read_bytes()) == (800, 450)
    assert len(set(results)) == 1


def test_prefetch_warms_the_next_frames_once_per_video(video: int) -> None:
    assert display.prefetch(video, range(1, 6), 680)
    # a second request for the same video while the first runs is dropped, not queued
    assert not display.prefetch(video, range(1, 6), 680) or not display.prefetch_busy(video)
    wait_for(lambda: not display.prefetch_busy(video), timeout=30, what="prefetch")
    assert all(display.display_file(video, i, 680).exists() for i in range(1, 6))
    # past the end: stops quietly
    assert display.prefetch(video, range(4, 20), 680)
    wait_for(lambda: not display.prefetch_busy(video), timeout=30, what="prefetch")
    assert not display.display_file(video, 6, 680).exists()


@pytest.mark.parametrize(("idx", "width", "error"), [
    (99, 680, NotFound),      # no such frame
    (-1, 680, NotFound),
    (0, 0, BadInput),         # absurd widths
    (0, 100000, BadInput),
])
def test_bad_requests(video: int, idx: int, width: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        display.display_jpeg(video, idx, width)


def test_unknown_video_is_not_found_and_leaves_no_folder(data_dir: Path) -> None:
    with pytest.raises(NotFound):
        display.display_jpeg(12345, 0, 680)
    assert not framestore.video_dir(12345).exists()
