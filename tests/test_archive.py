"""app/archive.py: safe extraction refuses malicious archives and leaves nothing behind."""
from __future__ import annotations

import io
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from app.archive import list_members, natural_key, safe_extract
from app.errors import BadInput, Conflict, TooLarge

MB = 1024 * 1024
LIMITS = {"max_files": 100, "max_bytes": 10 * MB}


def make_zip(path: Path, members: list[tuple[str, bytes]], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
        for name, data in members:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def patch_name(path: Path, placeholder: str, raw: bytes) -> Path:
    """Replace an ASCII name by raw bytes of the same length (no UTF-8 flag set), as old
    Windows and macOS zippers write them."""
    data = path.read_bytes()
    assert len(placeholder.encode()) == len(raw)
    path.write_bytes(data.replace(placeholder.encode(), raw))
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def test_extracts_nested_files_and_skips_junk(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "a.zip", [("imgs/frame_10.jpg", b"x" * 10), ("imgs/frame_2.jpg", b"y"),
                                      ("__MACOSX/imgs/._frame_2.jpg", b"junk"), ("imgs/.DS_Store", b"j"),
                                      ("readme.txt", b"hello")])
    files = safe_extract(z, tmp_path / "out", **LIMITS)
    assert [p.relative_to(tmp_path / "out").as_posix() for p in files] == [
        "imgs/frame_10.jpg", "imgs/frame_2.jpg", "readme.txt"]
    assert (tmp_path / "out" / "imgs" / "frame_10.jpg").read_bytes() == b"x" * 10
    assert sorted(files, key=natural_key)[0].name == "frame_2.jpg"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "staging folder left behind"


BAD_MEMBERS = {
    "parent": ([("../evil.txt", b"x")], BadInput, "outside"),
    "deep_parent": ([("a/../../evil.txt", b"x")], BadInput, "outside"),
    "absolute": ([("/etc/evil.txt", b"x")], BadInput, "absolute"),
    "windows_drive": ([("C:/evil.txt", b"x")], BadInput, "absolute"),
    "backslash_parent": ([("..\\evil.txt", b"x")], BadInput, "outside"),
    "duplicate": ([("a.jpg", b"1"), ("a.jpg", b"2")], BadInput, "twice"),
    "case_duplicate": ([("A.jpg", b"1"), ("a.jpg", b"2")], BadInput, "twice"),
    "file_and_folder": ([("a", b"1"), ("a/b.jpg", b"2")], BadInput, "both a file and a folder"),
    "too_many": ([(f"{i}.jpg", b"x") for i in range(101)], TooLarge, "more than 100 files"),
    "bomb": ([("zeros.bin", bytes(11 * MB))], TooLarge, "more than 10 MB"),
}


@pytest.mark.parametrize("case", list(BAD_MEMBERS))
def test_malicious_archives_are_refused_and_leave_nothing(case: str, tmp_path: Path) -> None:
    members, exc, message = BAD_MEMBERS[case]
    z = make_zip(tmp_path / "bad.zip", members)
    dest = tmp_path / "out"
    with pytest.raises(exc, match=message):
        safe_extract(z, dest, **LIMITS)
    assert not dest.exists()
    assert listing(tmp_path) == ["bad.zip"]


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "l.zip", [("ok.jpg", b"x")], symlink="link.jpg")
    with pytest.raises(BadInput, match="symbolic link"):
        safe_extract(z, tmp_path / "out", **LIMITS)
    assert listing(tmp_path) == ["l.zip"]


def test_size_that_lies_is_caught_while_writing(tmp_path: Path) -> None:
    """A header declaring 100 bytes for a member that inflates to 2 MB: the declared-size check
    passes, the byte count while writing must not."""
    z = make_zip(tmp_path / "liar.zip", [("big.bin", bytes(2 * MB))])
    data = bytearray(z.read_bytes())
    size = (2 * MB).to_bytes(4, "little")
    assert data.count(size) == 2  # local header + central directory
    z.write_bytes(bytes(data).replace(size, (100).to_bytes(4, "little")))
    assert list_members(z, **LIMITS)[0].size == 100
    with pytest.raises(BadInput):
        safe_extract(z, tmp_path / "out", **LIMITS)
    assert listing(tmp_path) == ["liar.zip"]


def test_total_inflated_bytes_are_capped(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "b.zip", [(f"{i}.bin", bytes(MB)) for i in range(3)])
    with pytest.raises(TooLarge):
        safe_extract(z, tmp_path / "out", max_files=10, max_bytes=2 * MB)
    assert listing(tmp_path) == ["b.zip"]


def test_non_utf8_names(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "n.zip", [("cafXX.jpg", b"utf8-no-flag"), ("naXve.jpg", b"cp437")])
    patch_name(z, "cafXX.jpg", "café.jpg".encode())  # UTF-8 bytes without the UTF-8 flag
    patch_name(z, "naXve.jpg", "naïve.jpg".encode("cp437"))  # a genuine cp437 name
    files = safe_extract(z, tmp_path / "out", **LIMITS)
    assert sorted(p.name for p in files) == ["café.jpg", "naïve.jpg"]
    assert (tmp_path / "out" / "café.jpg").read_bytes() == b"utf8-no-flag"


def test_existing_destination_is_kept_and_never_overwritten(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    good = make_zip(tmp_path / "g.zip", [("new.jpg", b"1")])
    safe_extract(good, dest, **LIMITS)
    assert listing(dest) == ["keep.txt", "new.jpg"]
    clash = make_zip(tmp_path / "c.zip", [("keep.txt", b"theirs"), ("other.jpg", b"2")])
    with pytest.raises(Conflict):
        safe_extract(clash, dest, **LIMITS)
    assert (dest / "keep.txt").read_text() == "mine"
    assert listing(dest) == ["keep.txt", "new.jpg"]
    bad = make_zip(tmp_path / "b.zip", [("fine.jpg", b"1"), ("../evil.jpg", b"2")])
    with pytest.raises(BadInput):
        safe_extract(bad, dest, **LIMITS)
    assert listing(dest) == ["keep.txt", "new.jpg"]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"hello world"])
def test_unreadable_archive(content: bytes, tmp_path: Path) -> None:
    z = tmp_path / "x.zip"
    z.write_bytes(content)
    with pytest.raises(BadInput, match="x.zip: not a readable zip"):
        safe_extract(z, tmp_path / "out", **LIMITS)
    assert not (tmp_path / "out").exists()


def test_damaged_member_data(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.bin", b"A" * 1000)
    data = bytearray(buf.getvalue())
    pos = data.index(b"A" * 1000)
    data[pos:pos + 10] = b"B" * 10  # CRC no longer matches
    z = tmp_path / "d.zip"
    z.write_bytes(bytes(data))
    with pytest.raises(BadInput, match="d.zip"):
        safe_extract(z, tmp_path / "out", **LIMITS)
    assert listing(tmp_path) == ["d.zip"]
