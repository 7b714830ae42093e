"""CVAT XML 1.1: "CVAT for video" (tracks of boxes with keyframe/outside flags) and "CVAT for
images" (boxes per image). Only boxes are read; polygons, polylines, points, masks, skeletons
and tags are skipped with a reason.

Frame numbers: CVAT writes each box's `frame` as the frame number in the source video (a task
with start_frame=10 and frame_filter step=3 has boxes on 10, 13, 16...), and names frame images
frame_<n:06d>. tpod keeps that number as the frame index, so an export of the whole video lines
up with a tpod video ingested from the same file at stride 1. start/stop/step go in `meta`.
"""
from __future__ import annotations

import datetime as dt
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
    find_files,
    finish,
    parse_xml,
    to_float,
)

NON_BOX_SHAPES = ("polygon", "polyline", "points", "mask", "ellipse", "cuboid", "skeleton", "tag")


def read(root: Path, *, frame_size: tuple[int, int] | None = None) -> Dataset:
    """Read every CVAT 1.1 XML (<annotations> root) under root, video and image variants."""
    docs = [(p, t) for p in find_files(root, "*.xml") if (t := parse_xml(p)).tag == "annotations"]
    if not docs:
        raise BadInput("no CVAT XML (an <annotations> document) in the archive")
    index = ImageIndex(root)
    ds = Dataset(classes=[], images=[])
    next_track = 0
    for path, tree in docs:
        where = path.relative_to(root).as_posix()
        meta = _meta(tree)
        ds.meta.setdefault("documents", []).append({"file": where, **meta})
        for label in meta["labels"]:
            if label not in ds.classes:
                ds.classes.append(label)
        size = meta.get("original_size") or frame_size
        if tree.find("track") is not None:
            next_track = _read_tracks(ds, where, tree, index, size, next_track, path.parent)
        _read_images(ds, where, tree, index, frame_size)
    if not ds.images and not ds.skipped:
        raise BadInput("the CVAT XML has no images and no tracks")
    return finish(ds)


def _meta(tree: ET.Element) -> dict:
    meta = tree.find("meta")
    out: dict = {"labels": [], "version": (tree.findtext("version") or "").strip()}
    if meta is None:
        return out
    holder = next((h for h in (meta.find(k) for k in ("task", "job", "project")) if h is not None), meta)
    for key in ("mode", "start_frame", "stop_frame", "frame_filter", "size"):
        value = holder.findtext(key)
        if value is not None and value.strip():
            out[key] = value.strip()
    for label in meta.iter("label"):
        name = (label.findtext("name") or "").strip()
        if name and name not in out["labels"]:
            out["labels"].append(name)
    orig = holder.find("original_size")
    if orig is None:
        orig = meta.find("original_size")
    if orig is not None:
        try:
            out["original_size"] = (int(orig.findtext("width") or 0), int(orig.findtext("height") or 0))
        except ValueError:
            raise BadInput("CVAT XML: original_size is not a number") from None
        if min(out["original_size"]) <= 0:
            del out["original_size"]
    return out


def _flag(el: ET.Element, key: str, default: str) -> bool:
    return el.get(key, default).strip().lower() in ("1", "true")


def _xyxy(el: ET.Element) -> tuple[float, float, float, float]:
    return tuple(to_float(el.get(k), k) for k in ("xtl", "ytl", "xbr", "ybr"))  # type: ignore[return-value]


def _read_tracks(ds: Dataset, where: str, tree: ET.Element, index: ImageIndex,
                 size: tuple[int, int] | None, next_track: int, folder: Path) -> int:
    w, h = size or (0, 0)
    # One document's frames: several video XMLs in one archive each number from their own start.
    frames: dict[int, LabeledImage] = {}
    seen_ids: set[str] = set()
    for track in tree.findall("track"):
        tid = track.get("id", "")
        if tid in seen_ids:
            raise BadInput(f"{where}: duplicate track id {tid}")
        seen_ids.add(tid)
        label = (track.get("label") or "").strip()
        item = f"{where} track {tid} ({label or 'no label'})"
        others = [el.tag for el in track if el.tag != "box"]
        if others:
            ds.skipped.append(Skip(item, f"{len(others)} {others[0]} shape(s): only boxes are imported"))
        boxes = track.findall("box")
        if not boxes:
            continue
        if not label:
            ds.skipped.append(Skip(item, f"track without a label; {len(boxes)} box(es) skipped"))
            continue
        if label not in ds.classes:
            ds.classes.append(label)
        new_id = next_track
        next_track += 1
        used: set[int] = set()
        for el in boxes:
            try:
                frame = int(el.get("frame", ""))
                x1, y1, x2, y2 = _xyxy(el)
            except ValueError as exc:
                ds.skipped.append(Skip(f"{item} frame {el.get('frame')}", str(exc) or "bad frame number"))
                continue
            if frame in used:
                ds.skipped.append(Skip(f"{item} frame {frame}", "a second box for this track on the same frame"))
                continue
            used.add(frame)
            im = frames.get(frame)
            if im is None:
                name = f"frame_{frame:06d}"
                path = index.find_stem(name, folder)
                im = frames[frame] = LabeledImage(name=f"{name}{path.suffix if path else '.jpg'}", width=w, height=h,
                                                  frame_index=frame, path=path)
                ds.images.append(im)
            im.boxes.append(Box(x1, y1, x2, y2, frame=frame, label=label, track_id=new_id, source="imported",
                                keyframe=_flag(el, "keyframe", "1"), outside=_flag(el, "outside", "0")))
    return next_track


def _read_images(ds: Dataset, where: str, tree: ET.Element, index: ImageIndex,
                 frame_size: tuple[int, int] | None) -> None:
    elements = tree.findall("image")
    multi_subset = len({el.get("subset", "") for el in elements}) > 1
    seen: set[tuple[str, str]] = set()
    for el in elements:
        name = el.get("name") or ""
        subset = el.get("subset") or "default"
        key = (subset, el.get("id", ""))
        if not name or key in seen:
            raise BadInput(f"{where}: image id {el.get('id')!r} is missing a name or listed twice")
        seen.add(key)
        try:
            w, h = int(el.get("width") or 0), int(el.get("height") or 0)
            frame = int(el.get("id") or len(ds.images))
        except ValueError:
            raise BadInput(f"{where}: image {name!r} has a non-numeric id, width or height") from None
        if (w <= 0 or h <= 0) and frame_size:
            w, h = frame_size
        shown = f"{subset}/{name}" if multi_subset else name
        im = LabeledImage(name=shown, width=w, height=h, frame_index=frame, split=subset,
                          path=index.find(name, f"images/{subset}", subset, "images"))
        for n, shape in enumerate(el, 1):
            label = (shape.get("label") or "").strip()
            item = f"{shown}: {shape.tag} {n} ({label or 'no label'})"
            if shape.tag in NON_BOX_SHAPES:
                ds.skipped.append(Skip(item, f"{shape.tag} shape, not a box"))
                continue
            if shape.tag != "box":
                continue
            if not label:
                ds.skipped.append(Skip(item, "box without a label"))
                continue
            try:
                x1, y1, x2, y2 = _xyxy(shape)
            except ValueError as exc:
                ds.skipped.append(Skip(item, str(exc)))
                continue
            if label not in ds.classes:
                ds.classes.append(label)
            im.boxes.append(Box(x1, y1, x2, y2, frame=frame, label=label, source="imported", keyframe=True))
        ds.images.append(im)


# ---------------------------------------------------------------------------------------------
# Writing


def build_video_xml(ds: Dataset, *, name: str = "tpod", frame_count: int | None = None) -> str:
    """The "CVAT for video 1.1" document of one video's tracks.

    CVAT keeps a track alive until an outside box, so a track that stops (or pauses) before the
    end gets an outside box on the next frame. Every box is a keyframe except tpod's
    interpolated ones: tracker output is not linear and must not be re-interpolated by CVAT.
    """
    frames = [im.frame_index for im in ds.images]
    last = (frame_count - 1) if frame_count else (max(frames) if frames else 0)
    width, height = (ds.images[0].width, ds.images[0].height) if ds.images else (0, 0)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    for key, value in (("id", "0"), ("name", name), ("size", str(last + 1)), ("mode", "interpolation"),
                       ("overlap", "0"), ("start_frame", "0"), ("stop_frame", str(last)), ("frame_filter", "")):
        ET.SubElement(task, key).text = value
    labels = ET.SubElement(task, "labels")
    for cls in ds.classes:
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = cls
        ET.SubElement(lab, "type").text = "rectangle"
        ET.SubElement(lab, "attributes")
    orig = ET.SubElement(task, "original_size")
    ET.SubElement(orig, "width").text = str(width)
    ET.SubElement(orig, "height").text = str(height)
    ET.SubElement(meta, "dumped").text = dt.datetime.now(dt.UTC).isoformat(sep=" ")

    tracks: dict[int, list[Box]] = {}
    loose = -1
    for im in ds.images:
        for b in im.boxes:
            tid = b.track_id
            if tid is None:  # a box without a track becomes a one-frame track
                tid, loose = loose, loose - 1
            tracks.setdefault(tid, []).append(b.moved(frame=im.frame_index))
    for n, (_, boxes) in enumerate(sorted(tracks.items(), key=lambda kv: min(b.frame for b in kv[1]))):
        boxes.sort(key=lambda b: b.frame)
        el = ET.SubElement(root, "track", id=str(n), label=boxes[0].label, source="manual")
        by_frame = {b.frame: b for b in boxes}
        for b in boxes:
            _box_el(el, b, outside=b.outside, keyframe=b.outside or b.keyframe or b.source != "interpolated")
            if not b.outside and b.frame + 1 not in by_frame and b.frame + 1 <= last:
                _box_el(el, b.moved(frame=b.frame + 1), outside=True, keyframe=True)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _box_el(track: ET.Element, b: Box, *, outside: bool, keyframe: bool) -> None:
    ET.SubElement(track, "box", frame=str(b.frame), keyframe=str(int(keyframe)), outside=str(int(outside)),
                  occluded="0", xtl=f"{b.x1:.2f}", ytl=f"{b.y1:.2f}", xbr=f"{b.x2:.2f}", ybr=f"{b.y2:.2f}",
                  z_order="0")


def write_video(ds: Dataset, out_dir: Path) -> None:
    """Write annotations.xml (CVAT for video 1.1) and images/frame_<n:06d>.<ext>."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "annotations.xml").write_text(
        build_video_xml(ds, name=str(ds.meta.get("name", "tpod")), frame_count=ds.meta.get("frame_count")))
    for im in ds.images:
        if im.path is not None:
            copy_image(im, out_dir / "images" / f"frame_{im.frame_index:06d}{im.path.suffix.lower()}")
