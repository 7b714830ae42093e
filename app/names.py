"""Validation of user-given names (projects, classes, versions, files)."""
from __future__ import annotations

import re
import unicodedata

from app.errors import BadInput

MAX_NAME = 120
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3",
)


def clean_name(raw: object, what: str = "name") -> str:
    """Strip, NFC-normalise and check a display name. Any printable text is allowed (it is
    always shown literally and stored through parameters); control characters are not."""
    if not isinstance(raw, str):
        raise BadInput(f"{what} must be text")
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise BadInput(f"{what} is empty")
    if len(name) > MAX_NAME:
        raise BadInput(f"{what} is longer than {MAX_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in name):
        raise BadInput(f"{what} {name!r} contains control characters")
    return name


def clean_color(raw: str | None, index: int = 0) -> str:
    if raw is None or raw == "":
        return PALETTE[index % len(PALETTE)]
    if not _COLOR.match(raw):
        raise BadInput(f"colour {raw!r} is not of the form #rrggbb")
    return raw.lower()


_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(raw: str, default: str = "file") -> str:
    """A file name that cannot escape a folder: no separators, no leading dots, ASCII only."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _SAFE_FILE.sub("_", base).lstrip("._")[:100]
    return base or default
