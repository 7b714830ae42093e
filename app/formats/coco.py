"""COCO detection JSON (instances): bbox [x, y, w, h] in pixels.

Track ids travel as CVAT writes them: `attributes: {"track_id": n, "keyframe": bool,
"occluded": bool}`; other attributes are ignored. Lenient about what non-CVAT tools omit
(info, licenses, ids starting at 0); strict about what makes a file ambiguous (duplicate
image or category ids).
"""
from __future__ import annotations

import json
import re
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
    to_float,
)


def read(root: Path, *, frame_size: tuple[int, int] | None = None) -> Dataset:
    """Read every COCO instances JSON under root (one per split) with their images."""
    docs: list[tuple[Path, dict]] = []
    for path in find_files(root, "*.json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8-sig", errors="replace"))
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path.relative_to(root).as_posix()}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(doc, dict) and "annotations" in doc and "images" in doc:
            docs.append((path, doc))
    if not docs:
        raise BadInput("no COCO annotation file (a JSON with 'images' and 'annotations') in the archive")
    index = ImageIndex(root)
    ds = Dataset(classes=[], images=[], meta={"files": [p.relative_to(root).as_posix() for p, _ in docs]})
    next_track = 0
    for path, doc in docs:
        next_track = _read_doc(ds, root, path, doc, index, frame_size, next_track)
    return finish(ds)


def _split_of(path: Path) -> str:
    m = re.match(r"(?:instances|person_keypoints|annotations)_(.+)$", path.stem)
    return m.group(1) if m else "default"


def _list(doc: dict, key: str, where: str) -> list:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):  # an empty {} too: it is not an empty list
        raise BadInput(f"{where}: '{key}' must be a list")
    return value


def _read_doc(ds: Dataset, root: Path, path: Path, doc: dict, index: ImageIndex,
              frame_size: tuple[int, int] | None, next_track: int) -> int:
    where = path.relative_to(root).as_posix()
    split = _split_of(path)
    categories: dict[int, str] = {}
    for cat in _list(doc, "categories", where):
        if not isinstance(cat, dict) or "id" not in cat or not str(cat.get("name", "")).strip():
            raise BadInput(f"{where}: a category without id or name: {str(cat)[:80]}")
        if cat["id"] in categories:
            raise BadInput(f"{where}: duplicate category id {cat['id']}")
        categories[cat["id"]] = str(cat["name"]).strip()
        if categories[cat["id"]] not in ds.classes:
            ds.classes.append(categories[cat["id"]])

    images: dict[object, LabeledImage] = {}
    for pos, entry in enumerate(_list(doc, "images", where)):
        if not isinstance(entry, dict) or "id" not in entry or not entry.get("file_name"):
            raise BadInput(f"{where}: an image without id or file_name: {str(entry)[:80]}")
        if entry["id"] in images:
            raise BadInput(f"{where}: duplicate image id {entry['id']}")
        name = str(entry["file_name"])
        try:
            w, h = int(entry.get("width") or 0), int(entry.get("height") or 0)
        except (TypeError, ValueError):
            raise BadInput(f"{where}: image {name!r} has a non-numeric width or height") from None
        if (w <= 0 or h <= 0) and frame_size:
            w, h = frame_size
        im = LabeledImage(name=name, width=w, height=h, frame_index=frame_index_from_name(name, pos),
                          path=index.find(name, f"images/{split}", "images"), split=split)
        images[entry["id"]] = im

    tracks: dict[object, int] = {}
    seen_ann: set[object] = set()
    for ann in _list(doc, "annotations", where):
        item = f"{where} annotation {ann.get('id', '?') if isinstance(ann, dict) else '?'}"
        if not isinstance(ann, dict):
            ds.skipped.append(Skip(item, "not an object"))
            continue
        if "id" in ann:
            if ann["id"] in seen_ann:
                ds.skipped.append(Skip(item, "duplicate annotation id; the first one is kept"))
                continue
            seen_ann.add(ann["id"])
        im = images.get(ann.get("image_id"))
        if im is None:
            ds.skipped.append(Skip(item, f"image_id {ann.get('image_id')!r} is not in 'images'"))
            continue
        label = categories.get(ann.get("category_id"))
        if label is None:
            ds.skipped.append(Skip(item, f"category_id {ann.get('category_id')!r} is not in 'categories'"))
            continue
        if ann.get("iscrowd"):
            ds.skipped.append(Skip(item, "a crowd region (iscrowd=1), not an object box"))
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            ds.skipped.append(Skip(item, "no [x, y, w, h] bbox"))
            continue
        try:
            x, y, bw, bh = (to_float(v, k) for v, k in zip(bbox, ("x", "y", "w", "h"), strict=True))
        except ValueError as exc:
            ds.skipped.append(Skip(item, str(exc)))
            continue
        attrs = ann.get("attributes") if isinstance(ann.get("attributes"), dict) else {}
        track_id = None
        if attrs.get("track_id") is not None:
            # Namespaced per file: two splits may both number their tracks from 0.
            key = attrs["track_id"]
            if key not in tracks:
                tracks[key] = next_track
                next_track += 1
            track_id = tracks[key]
        im.boxes.append(Box(x, y, x + bw, y + bh, frame=im.frame_index, label=label, track_id=track_id,
                            source="imported", keyframe=_truthy(attrs.get("keyframe", True))))
    ds.images.extend(images.values())
    return next_track


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


# ---------------------------------------------------------------------------------------------
# Writing


def build_document(ds: Dataset, split: str | None = None) -> dict:
    """The COCO instances document for the images of one split (all images when None)."""
    cat_ids = {name: i + 1 for i, name in enumerate(ds.classes)}
    doc: dict = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"description": "exported by tpod", "version": "1.0"},
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cat_ids.items()],
        "images": [],
        "annotations": [],
    }
    for im in ds.images:
        if split is not None and im.split != split:
            continue
        image_id = len(doc["images"]) + 1
        doc["images"].append({"id": image_id, "width": im.width, "height": im.height,
                              "file_name": export_name(im), "license": 0})
        for b in im.boxes:
            if b.outside:
                continue
            attrs: dict = {"occluded": False}
            if b.track_id is not None:
                attrs["track_id"] = b.track_id
                attrs["keyframe"] = bool(b.keyframe)
            doc["annotations"].append({
                "id": len(doc["annotations"]) + 1, "image_id": image_id, "category_id": cat_ids[b.label],
                "segmentation": [], "area": round(b.area, 4),
                "bbox": [round(b.x1, 4), round(b.y1, 4), round(b.w, 4), round(b.h, 4)],
                "iscrowd": 0, "attributes": attrs,
            })
    return doc


def write(ds: Dataset, out_dir: Path) -> None:
    """Write annotations/instances_<split>.json and images/ (images/<split>/ when several)."""
    splits = sorted({im.split for im in ds.images}) or ["default"]
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    for split in splits:
        doc = build_document(ds, split)
        (out_dir / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    for im in ds.images:
        folder = out_dir / "images" / (im.split if len(splits) > 1 else "")
        copy_image(im, folder / export_name(im))
