"""Import annotations from, and export datasets to, the ecosystem's formats (app/formats/).

Import is all-or-nothing: the archive is read and checked completely, frame files of a new image
set are written to a staging folder, then every row goes in within one transaction and the
folder is moved into place just before COMMIT; any failure rolls back and removes the files.
Imported boxes are stored exactly as read (source 'imported', tracks and keyframe / outside flags
kept, nothing re-interpolated).

Frames are matched by tpod's frame index (`frames.idx`): CVAT video frame numbers, COCO
`frame_000123.png` names and trailing digits of other names give it.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pandas as pd

from app import formats, framestore
from app.domain import Box
from app.errors import BadInput, NotFound, TooLarge
from app.formats import Dataset, LabeledImage, Skip, image_size
from app.names import clean_color, clean_name, safe_filename
from app.settings import get_settings
from app.store import projects as project_sql
from app.store import transfer as sql
from app.store.db import connect

log = logging.getLogger(__name__)

IMPORT_FORMATS = formats.IMPORT_FORMATS
EXPORT_FORMATS = formats.EXPORT_FORMATS


# ---------------------------------------------------------------------------------------------
# Import


def import_annotations(path: Path, project_id: int, fmt: str, *, video_id: int | None = None,
                       create_classes: bool = True, class_map: dict[str, str] | None = None,
                       author: str | None = None, name: str | None = None) -> dict:
    """Import an annotation archive (zip) or folder into a project.

    With `video_id`, boxes go onto that video's frames (matched by frame index; boxes of frames
    the video lacks are reported as skipped). Without it, the archive's images become a new
    image set named `name` (default: the archive's name). Labels are renamed through
    `class_map` (source label -> project class name); labels the project lacks are created,
    or refused with BadInput when `create_classes` is False.

    Returns {"video_id", "video_name", "new_image_set", "format", "boxes", "outside", "tracks",
    "frames", "skipped": [{"item", "reason"}], "adjusted": [...], "classes_created": [...]}.
    """
    if fmt not in IMPORT_FORMATS:
        raise BadInput(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path.name}: no such file or folder")
    settings = get_settings()
    with connect() as cur:
        if project_sql.project_by_id(cur, project_id) is None:
            raise NotFound(f"no project {project_id}")
        video = sql.video_row(cur, video_id) if video_id is not None else None
    if video_id is not None:
        if video is None or video["project_id"] != project_id:
            raise NotFound(f"video {video_id} is not in project {project_id}")
        if video["status"] != "ready":
            raise BadInput(f"video {video['name']!r} is not ready ({video['status']}); import after its ingest")

    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=settings.uploads_dir) as tmp:
        root = _unpack(path, Path(tmp))
        frame_size = (int(video["width"]), int(video["height"])) if video and video["width"] else None
        ds = formats.read(fmt, root, frame_size=frame_size)
        if video is not None:
            plan = _onto_video(ds, video)
        else:
            if not ds.has_images:
                raise BadInput(f"{path.name} carries no images: pick a target video for its annotations")
            plan = _as_image_set(ds)
        _check_plan(plan)
        labels = sorted({b.label for im in plan.images for b in im.boxes})
        return _commit(plan, ds, project_id, video, labels, fmt=fmt, create_classes=create_classes,
                       class_map=class_map or {}, author=author,
                       name=name or _default_name(path), staging_parent=settings.videos_dir)


def _default_name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    return stem.strip() or "imported images"


def _unpack(path: Path, tmp: Path) -> Path:
    """The folder to read: the folder itself, or the zip extracted with the archive limits."""
    if path.is_dir():
        return path
    if path.suffix.lower() in (".json", ".xml"):  # a bare annotation file (onto a video)
        dest = tmp / "file"
        dest.mkdir()
        shutil.copyfile(path, dest / safe_filename(path.name, f"annotations{path.suffix.lower()}"))
        return dest
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{path.name} is not a zip archive (nor a .json or .xml annotation file)")
    from app.archive import safe_extract

    settings = get_settings()
    dest = tmp / "archive"
    dest.mkdir()
    files = safe_extract(path, dest, max_files=settings.max_archive_files,
                         max_bytes=settings.max_archive_mb * 1024 * 1024)
    if not files:
        raise BadInput(f"{path.name} is an empty archive")
    return dest


class _Plan:
    """What will be written: images (frame index = tpod idx) with boxes in tpod's coordinates."""

    def __init__(self, images: list[LabeledImage], skipped: list[Skip], adjusted: list[Skip],
                 new_set: bool) -> None:
        self.images = images
        self.skipped = skipped
        self.adjusted = adjusted
        self.new_set = new_set


def _onto_video(ds: Dataset, video: dict) -> _Plan:
    with connect() as cur:
        frames = sql.frames_of(cur, [video["id"]])
    have = set(frames["idx"].astype(int).tolist())
    vw, vh = int(video["width"] or 0), int(video["height"] or 0)
    skipped, adjusted = list(ds.skipped), list(ds.adjusted)
    images: list[LabeledImage] = []
    scaled_from: set[tuple[int, int]] = set()
    for im in ds.images:
        if not im.boxes:
            continue
        if im.frame_index not in have:
            skipped.append(Skip(im.name, f"frame {im.frame_index} is not in video {video['name']!r} "
                                         f"({len(have)} frames); {len(im.boxes)} box(es) skipped"))
            continue
        boxes = im.boxes
        if vw and vh and im.width > 0 and im.height > 0 and (im.width, im.height) != (vw, vh):
            sx, sy = vw / im.width, vh / im.height
            boxes = [b.moved(x1=b.x1 * sx, x2=b.x2 * sx, y1=b.y1 * sy, y2=b.y2 * sy) for b in boxes]
            scaled_from.add((im.width, im.height))
        images.append(LabeledImage(im.name, vw, vh, im.frame_index, boxes))
    for w, h in sorted(scaled_from):
        adjusted.append(Skip(f"annotations at {w}x{h}", f"the video is {vw}x{vh}: their boxes were scaled to it"))
    return _Plan(images, skipped, adjusted, new_set=False)


def _as_image_set(ds: Dataset) -> _Plan:
    skipped, adjusted = list(ds.skipped), list(ds.adjusted)
    images: list[LabeledImage] = []
    for im in sorted(ds.images, key=lambda im: (im.frame_index, im.name)):
        if im.path is None:
            extra = f"; {len(im.boxes)} box(es) skipped" if im.boxes else ""
            skipped.append(Skip(im.name, f"image file not found in the archive{extra}"))
            continue
        idx = len(images)
        images.append(LabeledImage(im.name, im.width, im.height, idx,
                                   [b.moved(frame=idx) for b in im.boxes], path=im.path, split=im.split))
    if not images:
        raise BadInput("none of the annotated images is in the archive")
    return _Plan(images, skipped, adjusted, new_set=True)


def _check_plan(plan: _Plan) -> None:
    """Drop a second box of one track on one frame (boxes.UNIQUE(track_id, frame_idx))."""
    for im in plan.images:
        seen: set[tuple[int, str]] = set()
        kept: list[Box] = []
        for b in im.boxes:
            if b.track_id is not None:
                key = (b.track_id, b.label)
                if key in seen:
                    plan.skipped.append(Skip(f"{im.name}: track {b.track_id}",
                                             "a second box of this track on the same frame"))
                    continue
                seen.add(key)
            kept.append(b)
        im.boxes = kept


def _resolve_classes(cur, project_id: int, labels: list[str], class_map: dict[str, str],
                     create: bool) -> tuple[dict[str, int], list[str]]:
    """Source label -> class id; creates the missing classes (inside the caller's transaction)."""
    existing = {c.name: c.id for c in project_sql.classes_of(cur, project_id)}
    target: dict[str, str] = {}
    for label in labels:
        mapped = class_map.get(label, label)
        target[label] = clean_name(mapped, f"class name for label {label!r}")
    missing = sorted({t for t in target.values() if t not in existing})
    if missing and not create:
        raise BadInput(f"classes not in the project: {', '.join(missing)}; map them to existing classes "
                       "or allow creating classes")
    for i, cls in enumerate(missing):
        existing[cls] = project_sql.insert_class(cur, project_id, cls, clean_color(None, len(existing) + i))
    return {label: existing[t] for label, t in target.items()}, missing


def _unique_name(taken: set[str], wanted: str) -> str:
    base = clean_name(wanted[:100], "image set name")
    name, n = base, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return name


def _stage_images(plan: _Plan, parent: Path) -> tuple[Path, dict]:
    """Write the new image set's frames (frame store layout) into a staging folder."""
    from app.video import images_to_store

    settings = get_settings()
    staging = parent / f".import-{uuid.uuid4().hex}"
    parent.mkdir(parents=True, exist_ok=True)
    summary = images_to_store([im.path for im in plan.images], staging,  # type: ignore[misc]
                              names=[im.name for im in plan.images], max_frames=settings.max_video_frames)
    try:
        meta = framestore._meta_cached(str(staging / "meta.json"), (staging / "meta.json").stat().st_mtime)
        stored = meta.get("sizes") or [[meta["width"], meta["height"]]] * len(plan.images)
        for im, (w, h) in zip(plan.images, stored, strict=True):
            if (int(w), int(h)) != (im.width, im.height):
                # The decoder saw another size than the header said (EXIF, odd files): follow the pixels.
                sx, sy = int(w) / im.width, int(h) / im.height
                im.boxes = [b.moved(x1=b.x1 * sx, x2=b.x2 * sx, y1=b.y1 * sy, y2=b.y2 * sy) for b in im.boxes]
                plan.adjusted.append(Skip(im.name, f"decoded as {w}x{h}, not {im.width}x{im.height}; boxes scaled"))
                im.width, im.height = int(w), int(h)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, summary


def _commit(plan: _Plan, ds: Dataset, project_id: int, video: dict | None, labels: list[str], *, fmt: str,
            create_classes: bool, class_map: dict[str, str], author: str | None, name: str,
            staging_parent: Path) -> dict:
    settings = get_settings()
    staging: Path | None = None
    moved: Path | None = None
    if plan.new_set:
        if len(plan.images) > settings.max_video_frames:
            raise TooLarge(f"{len(plan.images)} images is more than the limit of {settings.max_video_frames} "
                           "frames (TPOD_MAX_VIDEO_FRAMES)")
        with connect() as cur:
            if sql.video_count(cur, project_id) >= settings.project_quota_videos:
                raise TooLarge(f"the project already has {settings.project_quota_videos} videos "
                               "(TPOD_PROJECT_MAX_VIDEOS)")
            # Refuse unknown classes before spending time on the images.
            existing = {c.name for c in project_sql.classes_of(cur, project_id)}
        if not create_classes:
            missing = sorted({class_map.get(lb, lb) for lb in labels} - existing)
            if missing:
                raise BadInput(f"classes not in the project: {', '.join(missing)}; map them to existing "
                               "classes or allow creating classes")
        staging, _ = _stage_images(plan, staging_parent)
    try:
        with connect() as cur:
            cur.execute("BEGIN")
            try:
                class_ids, created = _resolve_classes(cur, project_id, labels, class_map, create_classes)
                if plan.new_set:
                    video_name = _unique_name(sql.video_names(cur, project_id), name)
                    sizes = [(im.width, im.height) for im in plan.images]
                    vid = sql.insert_image_set(cur, project_id, video_name, sizes[0][0], sizes[0][1],
                                               len(plan.images), author)
                    sql.insert_frames(cur, pd.DataFrame({
                        "video_id": vid, "idx": range(len(plan.images)), "source_idx": range(len(plan.images)),
                        "ts": 0.0, "name": [im.name for im in plan.images],
                        "width": [w for w, _ in sizes], "height": [h for _, h in sizes],
                    }))
                else:
                    assert video is not None
                    vid, video_name = int(video["id"]), video["name"]
                counts = _insert_annotations(cur, plan, vid, class_ids, author)
                if staging is not None:
                    dest = framestore.video_dir(vid)
                    if dest.exists():
                        raise BadInput(f"frame folder {dest.name} already exists; remove it and retry")
                    os.replace(staging, dest)
                    moved, staging = dest, None
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
    except BaseException:
        for leftover in (staging, moved):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
        raise
    report = {
        "video_id": vid, "video_name": video_name, "new_image_set": plan.new_set, "format": fmt,
        **counts,
        "frames": len(plan.images) if plan.new_set else counts["frames_with_boxes"],
        "skipped": [s.as_dict() for s in plan.skipped],
        "adjusted": [s.as_dict() for s in plan.adjusted],
        "classes_created": created,
    }
    log.info("import %s into project %d video %d: %d boxes, %d tracks, %d skipped",
             fmt, project_id, vid, counts["boxes"], counts["tracks"], len(plan.skipped))
    return report


def _insert_annotations(cur, plan: _Plan, video_id: int, class_ids: dict[str, int],
                        author: str | None) -> dict:
    """Tracks and boxes as two DataFrame inserts. A source track becomes one tpod track per
    (track id, label); a box without a track gets a track of its own."""
    rows: list[tuple] = []
    track_key: dict[tuple, int] = {}
    loose = 0
    for im in plan.images:
        for b in im.boxes:
            if b.track_id is not None:
                key: tuple = ("t", b.track_id, b.label)
            else:
                key, loose = ("b", loose), loose + 1
            slot = track_key.setdefault(key, len(track_key))
            rows.append((im.frame_index, slot, class_ids[b.label], b.x1, b.y1, b.x2, b.y2, bool(b.outside),
                         bool(b.keyframe)))
    ids = sql.next_ids(cur, "seq_tracks", len(track_key))
    slot_class: dict[int, int] = {}
    for r in rows:
        slot_class.setdefault(r[1], r[2])
    sql.insert_tracks(cur, pd.DataFrame({
        "id": ids, "video_id": video_id, "class_id": [slot_class[s] for s in range(len(ids))],
        "created_by": author,
    }))
    if rows:
        df = pd.DataFrame(rows, columns=["frame_idx", "slot", "class_id", "x1", "y1", "x2", "y2", "outside",
                                         "keyframe"])
        df["track_id"] = [ids[s] for s in df["slot"]]
        df = df.drop(columns=["slot"])
        df["video_id"] = video_id
        df["source"] = "imported"
        df["author"] = author
        sql.insert_boxes(cur, df)
    outside = sum(1 for r in rows if r[7])
    return {
        "boxes": len(rows), "outside": outside, "tracks": len(ids),
        "frames_with_boxes": len({im.frame_index for im in plan.images if im.boxes}),
    }


def import_upload(file_name: str, data: IO[bytes] | bytes, project_id: int, fmt: str, **options: object) -> dict:
    """Import an uploaded file (bytes or a binary file object): stage it under the uploads folder
    (refusing more than TPOD_MAX_UPLOAD_MB), import it, and remove it again whatever happens.
    `options` are import_annotations' keywords; the image set is named after the file by default."""
    settings = get_settings()
    limit = settings.max_upload_mb * 1024 * 1024
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="upload-", dir=settings.uploads_dir) as tmp:
        path = Path(tmp) / safe_filename(file_name, "upload.zip")
        written = 0
        with open(path, "wb") as out:
            chunks = [bytes(data)] if isinstance(data, (bytes, bytearray, memoryview)) else iter(
                lambda: data.read(4 * 1024 * 1024), b"")  # type: ignore[union-attr]
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise TooLarge(f"{file_name}: larger than {settings.max_upload_mb} MB (limit TPOD_MAX_UPLOAD_MB)")
                out.write(chunk)
        options.setdefault("name", Path(file_name).stem)
        return import_annotations(path, project_id, fmt, **options)  # type: ignore[arg-type]


def parse_class_map(text: str) -> dict[str, str]:
    """`source -> class` (or `source = class`) lines into a mapping; blank lines ignored."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sep = "->" if "->" in line else "=" if "=" in line else None
        if sep is None:
            raise BadInput(f"class map line {n}: write 'source label -> project class'")
        src, dst = (part.strip() for part in line.split(sep, 1))
        if not src or not dst:
            raise BadInput(f"class map line {n}: both sides are needed")
        out[src] = dst
    return out


# ---------------------------------------------------------------------------------------------
# Export


def export_for_download(project_id: int, fmt: str, *, version_id: int | None = None,
                        video_ids: Sequence[int] | None = None) -> dict:
    """export_dataset() into the exports folder under a descriptive name; adds "file_name"."""
    settings = get_settings()
    with connect() as cur:
        project = project_sql.project_by_id(cur, project_id)
        version = sql.version_row(cur, version_id) if version_id is not None else None
    if project is None:
        raise NotFound(f"no project {project_id}")
    what = f"{project.name}-{version['name']}" if version else project.name
    file_name = f"{safe_filename(what, 'dataset')}-{fmt}.zip"
    report = export_dataset(project_id, fmt, settings.exports_dir / str(project_id) / file_name,
                            version_id=version_id, video_ids=video_ids)
    return {**report, "file_name": file_name}


def export_dataset(project_id: int, fmt: str, out_zip: Path, *, version_id: int | None = None,
                   video_ids: Sequence[int] | None = None) -> dict:
    """Write a project's labeled frames (or a frozen dataset version) as a zip in `fmt`.

    Live export: every frame with at least one visible box, tracked and interpolated boxes
    included, outside boxes left out (CVAT for video writes them as outside flags). A version
    exports exactly its snapshot (`version_items`), empty frames included.
    Images are the frame store's JPEGs copied as they are; when they are stored smaller than the
    original, boxes are scaled to the stored size so they match the pixels shipped.

    Returns {"path", "format", "images", "boxes", "tracks", "classes", "missing_images", "bytes"}.
    """
    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    with connect() as cur:
        if project_sql.project_by_id(cur, project_id) is None:
            raise NotFound(f"no project {project_id}")
        if version_id is not None:
            datasets, missing = _version_datasets(cur, project_id, version_id, video_ids)
        else:
            datasets, missing = _live_datasets(cur, project_id, video_ids, with_outside=fmt == "cvat-video")
    images = sum(len(d.images) for d in datasets)
    if images == 0:
        raise BadInput("nothing to export: no labeled frames" + (" in this version" if version_id else ""))
    for ds in datasets:
        _fit_to_files(ds)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-", dir=out_zip.parent) as tmp:
        folder = Path(tmp) / "dataset"
        if fmt == "cvat-video":
            for ds in datasets:
                sub = folder / safe_filename(str(ds.meta["name"]), "video") if len(datasets) > 1 else folder
                formats.write(fmt, ds, sub)
        else:
            merged = Dataset(classes=datasets[0].classes, images=[im for d in datasets for im in d.images])
            formats.write(fmt, merged, folder)
        partial = Path(tmp) / "out.zip"
        _zip_folder(folder, partial)
        os.replace(partial, out_zip)
    boxes = [b for d in datasets for im in d.images for b in im.boxes if not b.outside]
    return {
        "path": str(out_zip), "format": fmt, "images": images, "boxes": len(boxes),
        "tracks": len({(d.meta.get("video_id"), b.track_id)
                       for d in datasets for im in d.images for b in im.boxes if b.track_id is not None}),
        "classes": list(datasets[0].classes), "missing_images": missing, "bytes": out_zip.stat().st_size,
    }


def _live_datasets(cur, project_id: int, video_ids: Sequence[int] | None, *,
                   with_outside: bool) -> tuple[list[Dataset], list[str]]:
    videos = sql.videos_of_project(cur, project_id, video_ids)
    if video_ids is not None and len(videos) != len(set(video_ids)):
        raise NotFound(f"some of videos {list(video_ids)} are not ready videos of project {project_id}")
    classes = [c.name for c in project_sql.classes_of(cur, project_id)]
    ids = [v["id"] for v in videos]
    boxes = sql.boxes_for_export(cur, ids, with_outside=with_outside)
    frames = sql.frames_of(cur, ids)
    sizes = {(int(r.video_id), int(r.idx)): (r.width, r.height) for r in frames.itertuples()}
    out: list[Dataset] = []
    missing: list[str] = []
    for v in videos:
        vb = boxes[boxes["video_id"] == v["id"]]
        visible = set(vb.loc[~vb["outside"], "frame_idx"].astype(int))
        ds = Dataset(classes=classes, images=[], meta={"name": v["name"], "video_id": v["id"],
                                                       "frame_count": v["frame_count"]})
        prefix = safe_filename(v["name"], f"video{v['id']}")
        by_frame: dict[int, list[Box]] = {}
        for r in vb.itertuples():
            by_frame.setdefault(int(r.frame_idx), []).append(Box(
                float(r.x1), float(r.y1), float(r.x2), float(r.y2), frame=int(r.frame_idx), label=r.label,
                track_id=int(r.track_id), source=r.source, outside=bool(r.outside), keyframe=bool(r.keyframe)))
        for idx in sorted(by_frame):
            if idx not in visible and not with_outside:
                continue
            w, h = sizes.get((v["id"], idx), (None, None))
            w = int(w) if w is not None and not pd.isna(w) else int(v["width"] or 0)
            h = int(h) if h is not None and not pd.isna(h) else int(v["height"] or 0)
            path = framestore.frame_file(v["id"], idx)
            if idx in visible and not path.exists():
                missing.append(f"{v['name']} frame {idx}")
                continue
            ds.images.append(LabeledImage(f"{prefix}_{idx:06d}.jpg", w, h, idx, by_frame[idx],
                                          path=path if idx in visible else None))
        out.append(ds)
    return out, missing


def _version_datasets(cur, project_id: int, version_id: int,
                      video_ids: Sequence[int] | None) -> tuple[list[Dataset], list[str]]:
    version = sql.version_row(cur, version_id)
    if version is None or version["project_id"] != project_id:
        raise NotFound(f"dataset version {version_id} is not in project {project_id}")
    classes = [c["name"] if isinstance(c, dict) else str(c) for c in version["classes"]]
    items = sql.version_items(cur, version_id)
    if video_ids is not None:
        items = items[items["video_id"].isin([int(v) for v in video_ids])]
    names = {v["id"]: v["name"] for v in sql.videos_of_project(cur, project_id)}
    settings = get_settings()
    out: dict[int, Dataset] = {}
    missing: list[str] = []
    for (split, vid, idx), group in items.groupby(["split", "video_id", "frame_idx"], sort=True):
        vid, idx = int(vid), int(idx)
        first = group.iloc[0]
        ds = out.setdefault(vid, Dataset(classes=classes, images=[], meta={
            "name": names.get(vid, f"video{vid}"), "video_id": vid}))
        path = _version_image(settings, version.get("path"), project_id, version_id, str(first["image"]), vid, idx)
        if path is None:
            missing.append(f"{first['image']}")
            continue
        boxes = []
        for r in group.itertuples():
            if pd.isna(r.x1) or pd.isna(r.class_index):
                continue
            boxes.append(Box(float(r.x1), float(r.y1), float(r.x2), float(r.y2), frame=idx,
                             label=classes[int(r.class_index)],
                             track_id=None if pd.isna(r.track_id) else int(r.track_id),
                             source=r.source if isinstance(r.source, str) else "manual", keyframe=True))
        w = 0 if pd.isna(first["width"]) else int(first["width"])
        h = 0 if pd.isna(first["height"]) else int(first["height"])
        prefix = safe_filename(str(ds.meta["name"]), f"video{vid}")
        ds.images.append(LabeledImage(f"{prefix}_{idx:06d}.jpg", w, h, idx, boxes, path=path, split=str(split)))
    for ds in out.values():
        ds.meta["frame_count"] = max((im.frame_index for im in ds.images), default=0) + 1
    return list(out.values()) or [Dataset(classes=classes, images=[])], missing


def _version_image(settings, folder: str | None, project_id: int, version_id: int, image: str, video_id: int,
                   idx: int) -> Path | None:
    """A version item's image: as recorded (absolute, or relative to the version folder or the
    data dir), else the frame store's frame it was taken from."""
    ref = Path(image)
    candidates = [ref] if ref.is_absolute() else [
        *([Path(folder) / ref] if folder else []),
        settings.versions_dir / str(project_id) / str(version_id) / ref,
        settings.versions_dir / ref,
        settings.data_dir / ref,
    ]
    candidates.append(framestore.frame_file(video_id, idx))
    data_dir = settings.data_dir.resolve()
    for cand in candidates:
        try:
            cand.resolve().relative_to(data_dir)
        except ValueError:
            continue
        if cand.is_file():
            return cand
    return None


def _fit_to_files(ds: Dataset) -> None:
    """Give each image the size of the file shipped, scaling its boxes when they differ."""
    for im in ds.images:
        if im.path is None:
            continue
        size = image_size(im.path)
        if size is None or size == (im.width, im.height):
            continue
        if im.width > 0 and im.height > 0:
            sx, sy = size[0] / im.width, size[1] / im.height
            im.boxes = [b.moved(x1=b.x1 * sx, x2=b.x2 * sx, y1=b.y1 * sy, y2=b.y2 * sy) for b in im.boxes]
        im.width, im.height = size
    # Frames that only carry outside markers (CVAT) take the size of the shipped frames.
    shipped = next(((im.width, im.height) for im in ds.images if im.path is not None), None)
    if shipped:
        for im in ds.images:
            if im.path is None and (im.width, im.height) != shipped and im.width > 0:
                sx, sy = shipped[0] / im.width, shipped[1] / im.height
                im.boxes = [b.moved(x1=b.x1 * sx, x2=b.x2 * sx, y1=b.y1 * sy, y2=b.y2 * sy) for b in im.boxes]
                im.width, im.height = shipped


def _zip_folder(folder: Path, out: Path) -> None:
    """Images are stored (already compressed); annotation files are deflated."""
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                stored = p.suffix.lower() in formats.IMAGE_EXTS
                zf.write(p, p.relative_to(folder).as_posix(),
                         compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)


def read_export(path: str | Path) -> bytes:
    """The bytes of an archive export_for_download() wrote (only files under the exports folder)."""
    settings = get_settings()
    target = Path(path).resolve()
    try:
        target.relative_to(settings.exports_dir.resolve())
    except ValueError:
        raise BadInput(f"{target.name} is not an export of this tpod") from None
    try:
        return target.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"export {target.name} is gone; prepare it again") from None
