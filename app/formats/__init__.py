"""Annotation formats: a neutral in-memory model, one module per format, and a registry.

Each format module has a pure reader (an extracted folder -> `Dataset`, with what it skipped
and why) and pure document/line builders plus a writer (`Dataset` -> folder). Boxes are
`app.domain.Box` in the pixel coordinates of their `LabeledImage` (width x height); track ids,
keyframe and outside flags travel on the Box. Nothing here touches DuckDB or the frame store:
app/transfer.py maps this model to and from the database.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.domain import Box
from app.errors import BadInput

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Coordinates within this many pixels outside the image are rounding noise, not worth a report.
CLIP_TOLERANCE = 0.5


@dataclass(frozen=True)
class Skip:
    """Something a reader left out (or changed), and why."""

    item: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "reason": self.reason}


@dataclass
class LabeledImage:
    """One image or video frame with its boxes. width/height 0 means "unknown yet"."""

    name: str
    width: int
    height: int
    frame_index: int
    boxes: list[Box] = field(default_factory=list)
    path: Path | None = None  # the image file, when the dataset carries it
    split: str = "default"


@dataclass
class Dataset:
    """What a reader found: class names, images with boxes, what it skipped or adjusted."""

    classes: list[str]
    images: list[LabeledImage]
    skipped: list[Skip] = field(default_factory=list)
    adjusted: list[Skip] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def box_count(self) -> int:
        return sum(len(im.boxes) for im in self.images)

    @property
    def track_ids(self) -> set[int]:
        return {b.track_id for im in self.images for b in im.boxes if b.track_id is not None}

    @property
    def has_images(self) -> bool:
        return any(im.path is not None for im in self.images)


# ---------------------------------------------------------------------------------------------
# Helpers shared by the readers


def frame_index_from_name(name: str, fallback: int) -> int:
    """The frame number a file name carries in its trailing digits (frame_000012.png -> 12)."""
    m = re.search(r"(\d+)$", Path(name).stem)
    return int(m.group(1)) if m else fallback


def parse_xml(path: Path) -> ET.Element:
    """Parse an XML file, refusing entity declarations (billion-laughs style bombs)."""
    data = path.read_bytes()
    if b"<!ENTITY" in data:
        raise BadInput(f"{path.name}: XML entity declarations are not accepted")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadInput(f"{path.name}: malformed XML ({exc})") from None


def to_float(raw: object, what: str) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} {raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is not finite")
    return value


class ImageIndex:
    """The image files under an extracted folder, found by relative path or by unique base name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_rel: dict[str, Path] = {}
        self.by_base: dict[str, list[Path]] = {}
        self.by_stem: dict[str, list[Path]] = {}
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
                rel = p.relative_to(root).as_posix()
                self.by_rel[rel.lower()] = p
                self.by_base.setdefault(p.name.lower(), []).append(p)
                self.by_stem.setdefault(p.stem.lower(), []).append(p)

    def __len__(self) -> int:
        return len(self.by_rel)

    def find(self, name: str, *prefixes: str) -> Path | None:
        """Look up an image named in an annotation: under each prefix, at the root, then by base name."""
        clean = name.replace("\\", "/").lstrip("/")
        for prefix in (*prefixes, ""):
            key = f"{prefix.strip('/')}/{clean}" if prefix.strip("/") else clean
            hit = self.by_rel.get(key.lower())
            if hit is not None:
                return hit
        hits = self.by_base.get(clean.rsplit("/", 1)[-1].lower(), [])
        return hits[0] if len(hits) == 1 else None

    def find_stem(self, stem: str, near: Path | None = None) -> Path | None:
        """An image by name without extension; when several match, the one under `near`."""
        hits = self.by_stem.get(stem.lower(), [])
        if len(hits) > 1 and near is not None:
            hits = [h for h in hits if h.is_relative_to(near)]
        return hits[0] if len(hits) == 1 else None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = int(im.width), int(im.height)
            # EXIF orientations 5-8 turn the picture a quarter: tools label the turned picture.
            if im.format in ("JPEG", "TIFF", "WEBP", "PNG") and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
            return w, h
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def finish(ds: Dataset, *, check_sizes: bool = True) -> Dataset:
    """Checks every reader applies last: image files readable and of the annotated size (boxes
    scaled to the real size when not), boxes clipped to the image, empty boxes dropped."""
    for im in ds.images:
        if im.path is not None and check_sizes:
            size = image_size(im.path)
            if size is None:
                ds.skipped.append(Skip(im.name, "image file is not a readable image; its boxes are kept without it"))
                im.path = None
            elif im.width <= 0 or im.height <= 0:
                im.width, im.height = size
            elif size != (im.width, im.height):
                sx, sy = size[0] / im.width, size[1] / im.height
                im.boxes = [b.moved(x1=b.x1 * sx, x2=b.x2 * sx, y1=b.y1 * sy, y2=b.y2 * sy) for b in im.boxes]
                ds.adjusted.append(Skip(
                    im.name,
                    f"image is {size[0]}x{size[1]} but the annotation says {im.width}x{im.height}; "
                    f"{len(im.boxes)} boxes scaled by {sx:.3f} x {sy:.3f}",
                ))
                im.width, im.height = size
        _clip_image(ds, im)
    return ds


def _clip_image(ds: Dataset, im: LabeledImage) -> None:
    kept: list[Box] = []
    clipped = 0
    for b in im.boxes:
        if not (b.x2 > b.x1 and b.y2 > b.y1):
            ds.skipped.append(Skip(_box_item(im, b), "box has zero or negative size"))
            continue
        if im.width > 0 and im.height > 0:
            x1, y1 = max(0.0, b.x1), max(0.0, b.y1)
            x2, y2 = min(float(im.width), b.x2), min(float(im.height), b.y2)
            if not (x2 > x1 and y2 > y1):
                ds.skipped.append(Skip(_box_item(im, b), f"box lies outside the {im.width}x{im.height} image"))
                continue
            if (x1, y1, x2, y2) != (b.x1, b.y1, b.x2, b.y2):
                far = max(x1 - b.x1, y1 - b.y1, b.x2 - x2, b.y2 - y2)
                if far > CLIP_TOLERANCE:
                    clipped += 1
                b = b.moved(x1=x1, y1=y1, x2=x2, y2=y2)
        kept.append(b)
    if clipped:
        ds.adjusted.append(Skip(im.name, f"{clipped} box(es) reached outside the {im.width}x{im.height} image and were clipped"))
    im.boxes = kept


def _box_item(im: LabeledImage, b: Box) -> str:
    track = f" track {b.track_id}" if b.track_id is not None else ""
    return f"{im.name}: {b.label or '?'}{track} [{b.x1:.1f},{b.y1:.1f},{b.x2:.1f},{b.y2:.1f}]"


def find_files(root: Path, pattern: str) -> list[Path]:
    """Files matching a glob anywhere under root, shallowest first (macOS zip litter ignored)."""
    hits = [p for p in root.rglob(pattern) if p.is_file() and "__MACOSX" not in p.parts
            and not p.name.startswith("._")]
    return sorted(hits, key=lambda p: (len(p.relative_to(root).parts), p.as_posix()))


# ---------------------------------------------------------------------------------------------
# Registry

Reader = Callable[..., Dataset]
Writer = Callable[[Dataset, Path], None]


def readers() -> dict[str, Reader]:
    """Format name -> reader(root: Path, *, frame_size=None) -> Dataset."""
    from app.formats import coco, cvat, voc, yolo

    return {"coco": coco.read, "yolo": yolo.read, "voc": voc.read, "cvat": cvat.read}


def writers() -> dict[str, Writer]:
    """Format name -> writer(dataset, out_dir)."""
    from app.formats import coco, cvat, voc, yolo

    return {"coco": coco.write, "yolo": yolo.write, "voc": voc.write, "cvat-video": cvat.write_video}


IMPORT_FORMATS = ("coco", "yolo", "cvat", "voc")
EXPORT_FORMATS = ("yolo", "coco", "voc", "cvat-video")


def read(fmt: str, root: Path, *, frame_size: tuple[int, int] | None = None) -> Dataset:
    """Read an extracted dataset folder in the named format."""
    table = readers()
    if fmt not in table:
        raise BadInput(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    return table[fmt](root, frame_size=frame_size)


def write(fmt: str, ds: Dataset, out_dir: Path) -> None:
    """Write a dataset (images with `path` set) in the named format into out_dir."""
    table = writers()
    if fmt not in table:
        raise BadInput(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    table[fmt](ds, out_dir)


def copy_image(im: LabeledImage, dest: Path) -> None:
    """Place an image's file at dest (a hard link when possible: frame JPEGs are immutable)."""
    import os
    import shutil

    if im.path is None:
        raise BadInput(f"{im.name}: no image file to export")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(im.path, dest)
    except OSError:
        shutil.copyfile(im.path, dest)


def export_name(im: LabeledImage) -> str:
    """The file name an image gets in an export: its name with the source file's extension."""
    suffix = im.path.suffix.lower() if im.path is not None else ".jpg"
    return f"{Path(im.name).stem}{suffix}"
