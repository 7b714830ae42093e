"""Pascal VOC: one Annotations/<name>.xml per image, images in JPEGImages/.

Coordinates are kept as written (VOC's 1-based convention is not shifted), as Datumaro and
CVAT do, so a round trip through either tool leaves boxes where they were. Parts, actions
and segmentation masks are ignored; VOC has no tracks.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from app.domain import Box
from app.errors import BadInput
from app.formats import (
    Dataset,
    ImageIndex,
    LabeledImage,
    Skip,
    copy_image,
    export_name,
    find_files,
    finish,
    frame_index_from_name,
    parse_xml,
    to_float,
)


def read(root: Path, *, frame_size: tuple[int, int] | None = None) -> Dataset:
    """Read every VOC annotation XML under root with its image."""
    index = ImageIndex(root)
    splits = _splits(root)
    ds = Dataset(classes=[], images=[])
    files = find_files(root, "*.xml")
    for path in files:
        tree = parse_xml(path)
        if tree.tag != "annotation":
            continue
        _read_one(ds, root, path, tree, index, splits, frame_size)
    if not ds.images:
        raise BadInput("no Pascal VOC annotation XML (<annotation> root) in the archive")
    names = [im.name for im in ds.images]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise BadInput(f"image {dup!r} is annotated by more than one VOC XML file")
    return finish(ds)


def _splits(root: Path) -> dict[str, str]:
    """Image id -> split, from ImageSets/Main/<split>.txt (train, val, test, trainval...)."""
    out: dict[str, str] = {}
    for folder in find_files(root, "*.txt"):
        if folder.parent.name == "Main" and folder.parent.parent.name == "ImageSets" and "_" not in folder.stem:
            for line in folder.read_text(errors="replace").splitlines():
                if line.strip():
                    out.setdefault(line.split()[0], folder.stem)
    return out


def _text(el: ET.Element, path: str) -> str | None:
    found = el.find(path)
    return found.text.strip() if found is not None and found.text else None


def _read_one(ds: Dataset, root: Path, path: Path, tree: ET.Element, index: ImageIndex,
              splits: dict[str, str], frame_size: tuple[int, int] | None) -> None:
    where = path.relative_to(root).as_posix()
    name = _text(tree, "filename") or f"{path.stem}.jpg"
    try:
        w = int(float(_text(tree, "size/width") or 0))
        h = int(float(_text(tree, "size/height") or 0))
    except ValueError:
        raise BadInput(f"{where}: size is not a number") from None
    if (w <= 0 or h <= 0) and frame_size:
        w, h = frame_size
    stem = Path(name).stem
    im = LabeledImage(name=name, width=w, height=h, frame_index=frame_index_from_name(name, len(ds.images)),
                      path=index.find(name, "JPEGImages") or index.find_stem(stem),
                      split=splits.get(stem, "default"))
    for n, obj in enumerate(tree.findall("object"), 1):
        label = _text(obj, "name")
        item = f"{where} object {n}"
        if not label:
            ds.skipped.append(Skip(item, "object without a name"))
            continue
        box = obj.find("bndbox")
        if box is None:
            ds.skipped.append(Skip(item, "object without a bndbox"))
            continue
        try:
            x1, y1, x2, y2 = (to_float(_text(box, k), k) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as exc:
            ds.skipped.append(Skip(item, str(exc)))
            continue
        if label not in ds.classes:
            ds.classes.append(label)
        im.boxes.append(Box(x1, y1, x2, y2, frame=im.frame_index, label=label, source="imported", keyframe=True))
    ds.images.append(im)


# ---------------------------------------------------------------------------------------------
# Writing


def build_xml(im: LabeledImage, file_name: str) -> str:
    """The VOC annotation document of one image."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "JPEGImages"
    ET.SubElement(ann, "filename").text = file_name
    size = ET.SubElement(ann, "size")
    ET.SubElement(size, "width").text = str(im.width)
    ET.SubElement(size, "height").text = str(im.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(ann, "segmented").text = "0"
    for b in im.boxes:
        if b.outside:
            continue
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = b.label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (b.x1, b.y1, b.x2, b.y2), strict=True):
            ET.SubElement(bnd, k).text = f"{v:.2f}"
    ET.indent(ann)
    return ET.tostring(ann, encoding="unicode")


def write(ds: Dataset, out_dir: Path) -> None:
    """Write Annotations/, JPEGImages/, ImageSets/Main/<split>.txt and labelmap.txt."""
    by_split: dict[str, list[str]] = {}
    (out_dir / "Annotations").mkdir(parents=True, exist_ok=True)
    for im in ds.images:
        fname = export_name(im)
        copy_image(im, out_dir / "JPEGImages" / fname)
        (out_dir / "Annotations" / f"{Path(fname).stem}.xml").write_text(build_xml(im, fname))
        by_split.setdefault(im.split, []).append(Path(fname).stem)
    main = out_dir / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split, stems in by_split.items():
        (main / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
    (out_dir / "labelmap.txt").write_text("".join(f"{c}:::\n" for c in ds.classes))
