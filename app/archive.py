"""Safe extraction of user-supplied zip archives (image sets, dataset imports).

The archive is checked twice: its listing before anything is written (paths, types, counts,
declared sizes), then every byte while it is written, because declared sizes can lie (zip
bombs). Extraction goes to a hidden staging folder next to `dest` and is moved into place only
when everything passed, so a refused archive leaves nothing in `dest`.
"""
from __future__ import annotations

import logging
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.errors import BadInput, Conflict, TooLarge

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# Files that archivers add and nobody means to upload.
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$|\._[^/]*$)", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Member:
    """One regular file of an archive, with its checked relative path."""

    info: zipfile.ZipInfo
    path: str  # POSIX relative path, NFC, no '..', no leading '/'
    size: int  # declared uncompressed size


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """The member name as its author meant it. Many zip tools write UTF-8 names without setting
    the UTF-8 flag; zipfile then decodes them as cp437, which we undo when it round-trips."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass  # really cp437 (or another legacy code page): keep zipfile's reading
    return unicodedata.normalize("NFC", name)


def _checked_path(raw: str, archive: str) -> str:
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise BadInput(f"{archive}: member {raw!r} has a NUL character in its name")
    if name.startswith("/") or _DRIVE.match(name):
        raise BadInput(f"{archive}: member {raw!r} has an absolute path; refused")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise BadInput(f"{archive}: member {raw!r} points outside the archive folder ('..'); refused")
    if not parts:
        raise BadInput(f"{archive}: member {raw!r} has an empty name")
    return "/".join(parts)


def list_members(zip_path: Path, *, max_files: int, max_bytes: int, skip_junk: bool = True) -> list[Member]:
    """Check an archive's listing without extracting it; returns its regular files.

    Raises BadInput for an unreadable archive, an absolute or '..' path, a symlink or other
    special file, an encrypted member or a duplicate name; TooLarge over `max_files` files or
    `max_bytes` declared uncompressed bytes.
    """
    zip_path = Path(zip_path)
    name = zip_path.name
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(f"{name}: not a readable zip archive ({exc})") from None
    with zf:
        members: list[Member] = []
        seen: dict[str, str] = {}
        total = 0
        for info in zf.infolist():
            raw = _decoded_name(info)
            mode = info.external_attr >> 16
            if info.is_dir():
                _checked_path(raw, name)
                continue
            path = _checked_path(raw, name)
            if skip_junk and _JUNK.search(path):
                continue
            if stat.S_ISLNK(mode):
                raise BadInput(f"{name}: member {raw!r} is a symbolic link; refused")
            if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                raise BadInput(f"{name}: member {raw!r} is not a regular file; refused")
            if info.flag_bits & 0x1:
                raise BadInput(f"{name}: member {raw!r} is encrypted; upload an archive without a password")
            # casefold: two names that differ only in case collide on macOS/Windows data dirs.
            key = path.casefold()
            if key in seen:
                raise BadInput(f"{name}: {raw!r} appears twice in the archive (as {seen[key]!r}); refused")
            seen[key] = raw
            total += info.file_size
            members.append(Member(info=info, path=path, size=info.file_size))
            if len(members) > max_files:
                raise TooLarge(f"{name}: more than {max_files} files (limit TPOD_MAX_ARCHIVE_FILES)")
            if total > max_bytes:
                raise TooLarge(f"{name}: unpacks to more than {max_bytes // (1024 * 1024)} MB "
                               "(limit TPOD_MAX_ARCHIVE_MB)")
        for m in members:
            parents = PurePosixPath(m.path).parents
            for parent in list(parents)[:-1]:
                if str(parent).casefold() in seen:
                    raise BadInput(f"{name}: {str(parent)!r} is both a file and a folder; refused")
        return members


def safe_extract(zip_path: Path, dest: Path, *, max_files: int, max_bytes: int,
                 skip_junk: bool = True) -> list[Path]:
    """Extract a zip archive's regular files under `dest`; returns their paths in archive order.

    Refuses (BadInput / TooLarge) zip-slip paths, symlinks, special and encrypted files,
    duplicates, more than `max_files` files and more than `max_bytes` bytes, counting both the
    declared sizes and the bytes actually inflated. Names are NFC Unicode (UTF-8 names written
    without the UTF-8 flag are recovered). `dest` may exist; an existing file there is never
    overwritten (Conflict). On any refusal nothing new is left in `dest`.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    members = list_members(zip_path, max_files=max_files, max_bytes=max_bytes, skip_junk=skip_junk)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.extract-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    written = 0
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for m in members:
                target = staging.joinpath(*m.path.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                size = 0
                with zf.open(m.info) as src, open(target, "xb") as out:
                    while chunk := src.read(CHUNK):
                        size += len(chunk)
                        written += len(chunk)
                        if size > m.size:
                            raise BadInput(f"{zip_path.name}: member {m.path!r} inflates to more than "
                                           f"the {m.size} bytes it declares; refused")
                        if written > max_bytes:
                            raise TooLarge(f"{zip_path.name}: unpacks to more than "
                                           f"{max_bytes // (1024 * 1024)} MB (limit TPOD_MAX_ARCHIVE_MB)")
                        out.write(chunk)
        return _move_into(staging, dest, [m.path for m in members])
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise BadInput(f"{zip_path.name}: damaged archive ({exc})") from None
    except (OSError, RuntimeError, NotImplementedError, zlib.error) as exc:
        # zlib errors, CRC mismatches, unsupported compression methods
        raise BadInput(f"{zip_path.name}: could not be extracted ({exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(staging: Path, dest: Path, paths: list[str]) -> list[Path]:
    if not dest.exists():
        staging.rename(dest)
    else:
        tops = sorted({p.split("/", 1)[0] for p in paths})
        clashes = [t for t in tops if (dest / t).exists()]
        if clashes:
            raise Conflict(f"{dest}: already has {clashes[0]!r}; extract into an empty folder")
        moved: list[Path] = []
        try:
            for top in tops:
                (staging / top).rename(dest / top)
                moved.append(dest / top)
        except OSError:
            for path in moved:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            raise
    return [dest.joinpath(*p.split("/")) for p in paths]


_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str | Path) -> list[object]:
    """Sort key that puts frame_2 before frame_10."""
    text = str(path).casefold()
    return [int(t) if t.isdigit() else t for t in _DIGITS.split(text)]
