"""YOLO: the Ultralytics layout (data.yaml + images/<split> + labels/<split>) and the older
darknet / CVAT "YOLO 1.1" layout (obj.data + obj.names + train.txt + obj_train_data/).

Label lines are `class cx cy w h`, normalised to the image size, so reading needs each image's
size: from the image file, or from `frame_size` when the archive carries labels only.
YOLO has no track ids: every box comes back untracked.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from app.domain import Box
from app.errors import BadInput
from app.formats import (
    IMAGE_EXTS,
    Dataset,
    LabeledImage,
    Skip,
    copy_image,
    export_name,
    find_files,
    finish,
    frame_index_from_name,
    image_size,
    to_float,
)

SPLIT_KEYS = ("train", "val", "valid", "test")


# ---------------------------------------------------------------------------------------------
# Reading


def read(root: Path, *, frame_size: tuple[int, int] | None = None) -> Dataset:
    """Read a YOLO dataset folder (Ultralytics data.yaml, or darknet obj.data / obj.names)."""
    yamls = [p for p in find_files(root, "*.yaml") + find_files(root, "*.yml")]
    data_yaml = next((p for p in yamls if p.name in ("data.yaml", "data.yml")), None)
    if data_yaml is None:
        data_yaml = next((p for p in yamls if _looks_like_data_yaml(p)), None)
    if data_yaml is not None:
        classes, entries, skipped = _ultralytics_entries(root, data_yaml)
    else:
        obj_data = find_files(root, "obj.data")
        obj_names = find_files(root, "obj.names")
        if not obj_data and not obj_names:
            raise BadInput("no YOLO data.yaml or obj.data / obj.names found in the archive")
        classes, entries, skipped = _darknet_entries(root, obj_data[0] if obj_data else None,
                                                     obj_names[0] if obj_names else None)
    ds = Dataset(classes=classes, images=[], skipped=skipped, meta={"layout": "ultralytics" if data_yaml else "darknet"})
    seen: set[Path] = set()
    for split, image, label in entries:
        key = image or label
        if key in seen:
            continue
        seen.add(key)  # type: ignore[arg-type]
        _read_entry(ds, root, split, image, label, frame_size)
    if not ds.images and not ds.skipped:
        raise BadInput("the YOLO dataset lists no images")
    return finish(ds, check_sizes=False)


def _looks_like_data_yaml(path: Path) -> bool:
    try:
        doc = yaml.safe_load(path.read_text(errors="replace"))
    except yaml.YAMLError:
        return False
    return isinstance(doc, dict) and "names" in doc


def _names(raw: object, where: str) -> list[str]:
    if isinstance(raw, list):
        return [str(n) for n in raw]
    if isinstance(raw, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in raw.items())
        except (TypeError, ValueError):
            raise BadInput(f"{where}: names keys must be class numbers") from None
        if [k for k, _ in items] != list(range(len(items))):
            raise BadInput(f"{where}: names must be numbered 0..{len(items) - 1} without gaps")
        return [v for _, v in items]
    raise BadInput(f"{where}: names must be a list or a mapping")


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _resolve(root: Path, base: Path, ref: str) -> Path | None:
    """A path named in data.yaml / obj.data / a list file, resolved inside the archive only.

    Tools write these relative to the yaml, to the archive root, or with CVAT's `data/` prefix;
    absolute paths point at the exporter's machine, so only their tail can be matched here.
    """
    ref = ref.strip().replace("\\", "/")
    if not ref:
        return None
    candidates = []
    rel = ref.lstrip("/")
    if not ref.startswith("/"):
        candidates += [base / rel, root / rel]
    parts = rel.split("/")
    for i in range(1, len(parts)):
        candidates.append(root / "/".join(parts[i:]))
    for cand in candidates:
        if _inside(root, cand) and cand.exists():
            return cand
    return None


def _ultralytics_entries(root: Path, data_yaml: Path):
    where = data_yaml.relative_to(root).as_posix()
    try:
        doc = yaml.safe_load(data_yaml.read_text(errors="replace"))
    except yaml.YAMLError as exc:
        raise BadInput(f"{where}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or "names" not in doc:
        raise BadInput(f"{where}: no 'names' list")
    classes = _names(doc["names"], where)
    base = data_yaml.parent
    if isinstance(doc.get("path"), str) and doc["path"].strip():
        found = _resolve(root, data_yaml.parent, doc["path"])
        base = found if found is not None and found.is_dir() else data_yaml.parent
    entries: list[tuple[str, Path | None, Path | None]] = []
    skipped: list[Skip] = []
    for key in SPLIT_KEYS:
        refs = doc.get(key)
        if refs is None:
            continue
        split = "val" if key == "valid" else key
        for ref in refs if isinstance(refs, list) else [refs]:
            target = _resolve(root, base, str(ref))
            if target is None:
                skipped.append(Skip(f"{where} {key}: {ref}", "folder or list file not found in the archive"))
            elif target.is_dir():
                entries += [(split, img, _label_for(img)) for img in _images_in(target)]
            else:
                entries += _list_file_entries(root, base, target, split, skipped)
    if not entries and not skipped:
        # A yaml without split keys: take every images/ folder next to it.
        entries = [("train", img, _label_for(img)) for img in _images_in(base)]
    return classes, entries, skipped


def _darknet_entries(root: Path, obj_data: Path | None, obj_names: Path | None):
    base = (obj_data or obj_names).parent  # type: ignore[union-attr]
    settings: dict[str, str] = {}
    if obj_data is not None:
        for line in obj_data.read_text(errors="replace").splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                settings[k.strip()] = v.strip()
    names_file = _resolve(root, base, settings["names"]) if settings.get("names") else None
    names_file = names_file or obj_names
    if names_file is None or not names_file.is_file():
        raise BadInput("obj.names (the class list) is missing from the archive")
    classes = [n.strip() for n in names_file.read_text(errors="replace").splitlines() if n.strip()]
    entries: list[tuple[str, Path | None, Path | None]] = []
    skipped: list[Skip] = []
    for key in SPLIT_KEYS:
        ref = settings.get(key)
        if not ref:
            continue
        target = _resolve(root, base, ref)
        split = "val" if key == "valid" else key
        if target is None or not target.is_file():
            skipped.append(Skip(f"obj.data {key} = {ref}", "list file not found in the archive"))
            continue
        entries += _list_file_entries(root, base, target, split, skipped)
    if not entries:
        for folder in sorted(p for p in base.glob("obj_*_data") if p.is_dir()):
            split = folder.name[len("obj_"):-len("_data")] or "train"
            entries += [(split, img, img.with_suffix(".txt")) for img in _images_in(folder)]
    return classes, entries, skipped


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _label_for(img: Path) -> Path:
    """Ultralytics' rule: the last `images` folder in the path becomes `labels`, suffix .txt."""
    parts = list(img.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return img.with_suffix(".txt")


def _list_file_entries(root: Path, base: Path, list_file: Path, split: str, skipped: list[Skip]):
    entries = []
    for line in list_file.read_text(errors="replace").splitlines():
        ref = line.strip()
        if not ref:
            continue
        img = _resolve(root, list_file.parent, ref) or _resolve(root, base, ref)
        if img is not None:
            label = _label_for(img)
            if not label.exists():
                label = img.with_suffix(".txt")
            entries.append((split, img, label))
            continue
        # No image: the label may still be there (a labels-only archive), found by the same rule.
        guess = _resolve(root, base, str(_label_for(Path(ref)))) or _resolve(
            root, base, str(Path(ref).with_suffix(".txt")))
        if guess is not None:
            entries.append((split, None, guess))
        else:
            skipped.append(Skip(ref, f"listed in {list_file.name} but neither the image nor its labels are in the archive"))
    return entries


def _read_entry(ds: Dataset, root: Path, split: str, image: Path | None, label: Path | None,
                frame_size: tuple[int, int] | None) -> None:
    ref = image or label
    assert ref is not None
    name = ref.relative_to(root).as_posix()
    size = image_size(image) if image is not None else None
    if image is not None and size is None:
        ds.skipped.append(Skip(name, "not a readable image"))
        image = None
    if size is None:
        size = frame_size
    lines = label.read_text(errors="replace").splitlines() if label is not None and label.exists() else []
    if size is None:
        if lines:
            ds.skipped.append(Skip(name, f"{len(lines)} label line(s) skipped: no image to give the size"))
        return
    w, h = size
    index = frame_index_from_name(ref.name, len(ds.images))
    im = LabeledImage(name=Path(name).with_suffix(image.suffix if image else ".jpg").as_posix(),
                      width=w, height=h, frame_index=index, path=image, split=split)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            im.boxes.append(parse_line(line, w, h, ds.classes, index))
        except ValueError as exc:
            ds.skipped.append(Skip(f"{label.relative_to(root).as_posix()}:{n}", str(exc)))  # type: ignore[union-attr]
    ds.images.append(im)


def parse_line(line: str, width: int, height: int, classes: list[str], frame: int = 0) -> Box:
    """One `class cx cy w h` line -> a Box in pixels. Raises ValueError saying what is wrong."""
    parts = line.split()
    if len(parts) > 6:
        raise ValueError("a polygon (segmentation) line, not a box")
    if len(parts) < 5:
        raise ValueError(f"expected 'class cx cy w h', got {len(parts)} value(s)")
    try:
        cls = int(parts[0])
    except ValueError:
        raise ValueError(f"class {parts[0]!r} is not a number") from None
    if not 0 <= cls < len(classes):
        raise ValueError(f"class {cls} is not in the {len(classes)} names")
    cx, cy, bw, bh = (to_float(v, k) for v, k in zip(parts[1:5], ("cx", "cy", "w", "h"), strict=True))
    return Box(
        (cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height,
        frame=frame, label=classes[cls], source="imported", keyframe=True,
    )


# ---------------------------------------------------------------------------------------------
# Writing


def label_line(box: Box, width: int, height: int, class_index: int) -> str:
    """A Box in pixels -> one normalised `class cx cy w h` line."""
    cx = (box.x1 + box.x2) / 2 / width
    cy = (box.y1 + box.y2) / 2 / height
    return f"{class_index} {cx:.6f} {cy:.6f} {box.w / width:.6f} {box.h / height:.6f}"


def data_yaml(classes: list[str], splits: list[str]) -> str:
    """The Ultralytics data.yaml for an export (val falls back to train when there is none)."""
    doc: dict = {"path": "."}
    doc["train"] = "images/train" if "train" in splits else f"images/{splits[0]}"
    doc["val"] = "images/val" if "val" in splits else doc["train"]
    if "test" in splits:
        doc["test"] = "images/test"
    doc["names"] = dict(enumerate(classes))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write(ds: Dataset, out_dir: Path) -> None:
    """Write an Ultralytics layout: data.yaml, images/<split>/, labels/<split>/."""
    index = {name: i for i, name in enumerate(ds.classes)}
    splits: list[str] = []
    for im in ds.images:
        split = "train" if im.split == "default" else im.split
        if split not in splits:
            splits.append(split)
        fname = export_name(im)
        copy_image(im, out_dir / "images" / split / fname)
        lines = [label_line(b, im.width, im.height, index[b.label]) for b in im.boxes if not b.outside]
        label = out_dir / "labels" / split / f"{Path(fname).stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(f"{line}\n" for line in lines))
    (out_dir / "data.yaml").write_text(data_yaml(ds.classes, splits or ["train"]))
