"""Dataset versions: frozen, leak-free snapshots of a project's labels in Ultralytics YOLO layout.

A version is cut once and never changes: its rows (`version_items`, one per frame and box) and
its folder are written at creation; later label edits touch neither. On disk:

    versions/<project_id>/<version_id>/
        data.yaml                   path: <absolute folder>, train/val[/test], names: [...]
        images/<split>/v<video>_<idx:06d>.jpg   hard links to the frame store JPEGs
        labels/<split>/v<video>_<idx:06d>.txt   "class cx cy w h", normalised by the ORIGINAL size

`version_items.image` is relative to that folder. Splits never leak: either whole videos go to
one side ("video"), or each video is cut into blocks of consecutive frames ("blocks") and the
first `guard` frames of a block that follows a block of another split are dropped, so frames of
different splits in one video are always more than `guard` frames apart.
"""
from __future__ import annotations

import logging
import math
import os
import random
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from app import framestore
from app.errors import BadInput, Conflict, NotFound
from app.names import clean_name
from app.settings import get_settings
from app.store import datasets as sql
from app.store import projects as project_sql
from app.store.db import connect

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------------------------------- checks
def _check_params(split: str, val: float, test: float, every_nth: int, dedupe_threshold: int | None,
                  block_size: int | None, guard: int | None) -> None:
    if split not in ("video", "blocks"):
        raise BadInput(f"split={split!r}: use 'video' (whole videos) or 'blocks' (time blocks)")
    if not 0 < val < 1:
        raise BadInput(f"val={val}: the validation share must be above 0 and below 1")
    if not 0 <= test < 1 or val + test >= 1:
        raise BadInput(f"test={test}: the test share must be >= 0 and val + test below 1")
    if int(every_nth) < 1:
        raise BadInput(f"every_nth={every_nth} must be 1 or more")
    if dedupe_threshold is not None and not 0 <= int(dedupe_threshold) <= 64:
        raise BadInput(f"dedupe_threshold={dedupe_threshold}: a phash Hamming distance is 0..64")
    if block_size is not None and int(block_size) < 2:
        raise BadInput(f"block_size={block_size} must be 2 frames or more")
    if guard is not None and int(guard) < 0:
        raise BadInput(f"guard={guard} must be 0 frames or more")


# ---------------------------------------------------------------------------------------- dedupe
def _phash64(path: Path) -> int:
    import imagehash
    from PIL import Image

    with Image.open(path) as img:
        img.draft("L", (64, 64))  # decode the JPEG at 1/8 scale: phash only needs 32x32
        bits = imagehash.phash(img).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _dedupe(frames: pd.DataFrame, threshold: int, data_dir: Path) -> pd.DataFrame:
    """Keep a frame only if its phash differs by more than `threshold` bits from every frame
    kept before it (in video, frame order), like opentpod-tools' tpod-unique."""
    kept_hashes = np.zeros(len(frames), dtype=np.uint64)
    n_kept = 0
    keep = np.zeros(len(frames), dtype=bool)
    for i, (vid, idx) in enumerate(zip(frames["video_id"].to_numpy(), frames["idx"].to_numpy(), strict=False)):
        path = framestore.frame_file(int(vid), int(idx), data_dir)
        if not path.exists():
            raise NotFound(f"frame {idx} of video {vid} is not in the frame store")
        h = np.uint64(_phash64(path))
        if n_kept and int(np.bitwise_count(kept_hashes[:n_kept] ^ h).min()) <= threshold:
            continue
        kept_hashes[n_kept] = h
        n_kept += 1
        keep[i] = True
    return frames[keep]


# ---------------------------------------------------------------------------------------- splits
def _split_by_video(frames: pd.DataFrame, val: float, test: float, seed: int) -> pd.Series:
    counts = frames.groupby("video_id").size()
    videos = sorted(int(v) for v in counts.index)
    need = 3 if test > 0 else 2
    if len(videos) < need:
        raise BadInput(
            f"only {len(videos)} video(s) selected: split='video' puts whole videos on one side and "
            f"needs {need}; use split='blocks' to split within videos by time blocks"
        )
    random.Random(seed).shuffle(videos)
    total = int(counts.sum())
    assign: dict[int, str] = {}
    pos = 0
    for name, share in (("test", test), ("val", val)):
        if share <= 0:
            continue
        taken = 0
        # at least one video per requested split, and always leave one for training
        while pos < len(videos) - 1 and (taken == 0 or taken < share * total):
            if taken and taken + counts[videos[pos]] / 2 > share * total:
                break
            assign[videos[pos]] = name
            taken += int(counts[videos[pos]])
            pos += 1
    for v in videos[pos:]:
        assign[v] = "train"
    return frames["video_id"].map(assign)


def _split_by_blocks(frames: pd.DataFrame, val: float, test: float, seed: int,
                     block_size: int | None, guard: int | None, every_nth: int) -> tuple[pd.Series, dict]:
    """Split labels per frame (None = dropped by the guard) and the block sizes used."""
    sizes: dict[int, int] = {}
    guards: dict[int, int] = {}
    block = np.zeros(len(frames), dtype=np.int64)
    vids = frames["video_id"].to_numpy()
    idxs = frames["idx"].to_numpy()
    for vid in np.unique(vids):
        mask = vids == vid
        span = int(idxs[mask].max()) + 1
        bs = int(block_size) if block_size else max(2 * every_nth, math.ceil(span / 10))
        sizes[int(vid)] = bs
        guards[int(vid)] = min(bs - 1, int(guard) if guard is not None else max(every_nth, bs // 5))
        block[mask] = idxs[mask] // bs
    keys = sorted(set(zip(vids.tolist(), block.tolist(), strict=False)))
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([vids, block])).groupby(level=[0, 1]).size()
    random.Random(seed).shuffle(keys)
    total = len(frames)
    assign: dict[tuple[int, int], str] = {}
    pos = 0
    for name, share in (("test", test), ("val", val)):
        if share <= 0:
            continue
        taken = 0
        while pos < len(keys) - 1 and taken < share * total:
            n = int(counts[keys[pos]])
            if taken and taken + n / 2 > share * total:
                break
            assign[keys[pos]] = name
            taken += n
            pos += 1
    for k in keys[pos:]:
        assign[k] = "train"
    split = [assign[(v, b)] for v, b in zip(vids.tolist(), block.tolist(), strict=False)]
    # guard: drop the first `guard` frames of a block whose previous block went elsewhere
    out: list[str | None] = []
    for v, b, i, s in zip(vids.tolist(), block.tolist(), idxs.tolist(), split, strict=False):
        prev = assign.get((v, b - 1))
        if prev is not None and prev != s and i - b * sizes[v] < guards[v]:
            out.append(None)
        else:
            out.append(s)
    return pd.Series(out, index=frames.index, dtype=object), {"block_size": sizes, "guard": guards}


# ---------------------------------------------------------------------------------------- layout
def _yolo_lines(boxes: pd.DataFrame) -> dict[tuple[int, int], list[str]]:
    cx = (boxes["x1"] + boxes["x2"]) / 2 / boxes["width"]
    cy = (boxes["y1"] + boxes["y2"]) / 2 / boxes["height"]
    w = (boxes["x2"] - boxes["x1"]) / boxes["width"]
    h = (boxes["y2"] - boxes["y1"]) / boxes["height"]
    lines: dict[tuple[int, int], list[str]] = {}
    for v, i, c, a, b, d, e in zip(boxes["video_id"].tolist(), boxes["frame_idx"].tolist(),
                                   boxes["class_index"].tolist(), cx.tolist(), cy.tolist(), w.tolist(), h.tolist(), strict=False):
        lines.setdefault((v, i), []).append(f"{c} {a:.6f} {b:.6f} {d:.6f} {e:.6f}")
    return lines


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except FileNotFoundError:
        if not os.path.exists(src):
            raise NotFound(f"frame file {src} is not in the frame store") from None
        raise
    except OSError:
        shutil.copyfile(src, dst)  # across filesystems, or links not supported


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def write_data_yaml(folder: Path, names: list[str], splits: Sequence[str], path: Path | None = None) -> Path:
    """Write folder/data.yaml for Ultralytics: ABSOLUTE `path` (default: `folder`), the splits
    present, and names as a list in class-index order."""
    data: dict[str, Any] = {"path": str((path or folder).resolve())}
    for s in SPLITS:
        if s in splits:
            data[s] = f"images/{s}"
    data["nc"] = len(names)
    data["names"] = list(names)
    target = folder / "data.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return target


def _materialise(tmp: Path, final: Path, frames: pd.DataFrame, lines: dict[tuple[int, int], list[str]],
                 names: list[str], data_dir: Path) -> None:
    splits = sorted(set(frames["split"]), key=SPLITS.index)
    for s in splits:
        (tmp / "images" / s).mkdir(parents=True)
        (tmp / "labels" / s).mkdir(parents=True)
    # plain strings and os calls: pathlib costs more than the link itself at 10k frames
    frame_dirs = {int(v): str(framestore.frame_file(int(v), 0, data_dir).parent)
                  for v in frames["video_id"].unique()}
    root = str(tmp)
    for vid, idx, image in zip(frames["video_id"].tolist(), frames["idx"].tolist(), frames["image"].tolist(), strict=False):
        _link(f"{frame_dirs[vid]}/{idx:06d}.jpg", f"{root}/{image}")
        text = "\n".join(lines.get((vid, idx), ()))
        _write(f"{root}/labels{image[len('images'):-len('.jpg')]}.txt", text + "\n" if text else "")
    # the yaml names the final folder, not the temporary one it is written in
    write_data_yaml(tmp, names, splits, path=final)


# ---------------------------------------------------------------------------------------- public
def create_version(project_id: int, name: str, *, video_ids: Sequence[int] | None = None,
                   class_ids: Sequence[int] | None = None, every_nth: int = 1,
                   dedupe_threshold: int | None = None, include_empty: bool = False,
                   split: str = "video", val: float = 0.2, test: float = 0.0,
                   block_size: int | None = None, seed: int = 0, author: str | None = None,
                   guard: int | None = None) -> dict[str, Any]:
    """Cut a frozen dataset version and materialise it in Ultralytics YOLO layout.

    Frames: every `every_nth` tpod frame of the selected ready videos that holds a visible box of
    the selected classes; with `include_empty`, also frames without such boxes that someone
    looked at (marked reviewed, or holding boxes of other classes) as background images.
    `dedupe_threshold` drops frames whose phash is within that Hamming distance of a kept one.
    `split`: "video" (whole videos per side) or "blocks" (consecutive-frame blocks of
    `block_size` tpod frames, default a tenth of each video; `guard` frames, default a fifth of a
    block but at least every_nth, are dropped where blocks of different splits meet). Deterministic for a given `seed`.
    Returns the version (as get_version). All-or-nothing: on failure no rows and no folder stay.
    """
    name = clean_name(name, "version name")
    _check_params(split, val, test, every_nth, dedupe_threshold, block_size, guard)
    every_nth = int(every_nth)
    settings = get_settings()
    with connect() as cur:
        project = project_sql.project_by_id(cur, project_id)
        if project is None:
            raise NotFound(f"no project {project_id}")
        if sql.version_by_name(cur, project_id, name) is not None:
            raise Conflict(f"a dataset version named {name!r} already exists in project {project.name!r}")
        frames = sql.selection_frames(cur, project_id, video_ids, class_ids, every_nth)
        boxes = sql.selection_boxes(cur, project_id, video_ids, class_ids, every_nth)
        video_names = sql.video_names(cur, project_id)
    classes = [c for c in project.classes if class_ids is None or c.id in set(class_ids)]
    if class_ids is not None:
        unknown = set(class_ids) - {c.id for c in project.classes}
        if unknown:
            raise NotFound(f"class id(s) {sorted(unknown)} are not in project {project.name!r}")
    if not classes:
        raise BadInput(f"project {project.name!r}: no classes selected")

    keep = frames["n_sel"] > 0
    if include_empty:
        keep |= frames["reviewed"] | (frames["n_any"] > 0)
    frames = frames[keep].reset_index(drop=True)
    if frames.empty:
        raise BadInput("the selection holds no labeled frames: pick other videos or classes, "
                       "or label some frames first")
    selected = len(frames)
    if dedupe_threshold is not None:
        frames = _dedupe(frames, int(dedupe_threshold), settings.data_dir).reset_index(drop=True)

    split_info: dict[str, Any] = {}
    if split == "video":
        frames["split"] = _split_by_video(frames, val, test, seed)
    else:
        frames["split"], split_info = _split_by_blocks(frames, val, test, seed, block_size, guard, every_nth)
    guarded = int(frames["split"].isna().sum())
    frames = frames[frames["split"].notna()].reset_index(drop=True)
    for s, share in (("val", val), ("test", test)):
        if share > 0 and not (frames["split"] == s).any():
            raise BadInput(f"no {'validation' if s == 'val' else 'test'} frames after the split: "
                           "add videos, raise the share, or use smaller blocks")
    if not (frames["split"] == "train").any():
        raise BadInput("no training frames after the split: lower val/test or add videos")

    frames["image"] = [f"images/{s}/v{v}_{i:06d}.jpg" for s, v, i in
                       zip(frames["split"], frames["video_id"], frames["idx"], strict=False)]
    index_of = {c.id: i for i, c in enumerate(classes)}
    boxes = boxes.merge(frames[["video_id", "idx", "width", "height", "split", "image"]],
                        left_on=["video_id", "frame_idx"], right_on=["video_id", "idx"])
    boxes["class_index"] = boxes["class_id"].map(index_of)
    # clip to the image (YOLO wants 0..1), drop what is left empty
    boxes["x1"] = boxes["x1"].clip(lower=0, upper=boxes["width"])
    boxes["x2"] = boxes["x2"].clip(lower=0, upper=boxes["width"])
    boxes["y1"] = boxes["y1"].clip(lower=0, upper=boxes["height"])
    boxes["y2"] = boxes["y2"].clip(lower=0, upper=boxes["height"])
    degenerate = (boxes["x2"] <= boxes["x1"]) | (boxes["y2"] <= boxes["y1"])
    dropped_boxes = int(degenerate.sum())
    boxes = boxes[~degenerate]

    names = [c.name for c in classes]
    stats = _version_stats(frames, boxes, names)
    stats.update(selected_frames=selected, deduped_frames=selected - len(frames) - guarded,
                 guard_dropped_frames=guarded, dropped_boxes=dropped_boxes)
    params = {"video_ids": None if video_ids is None else sorted(int(v) for v in video_ids),
              "class_ids": None if class_ids is None else sorted(int(c) for c in class_ids),
              "every_nth": every_nth, "dedupe_threshold": dedupe_threshold, "include_empty": bool(include_empty),
              "split": split, "val": val, "test": test, "block_size": block_size, "guard": guard, "seed": seed,
              "videos": {str(v): video_names.get(int(v), "") for v in sorted(frames["video_id"].unique())},
              **({"blocks": {k: {str(v): n for v, n in d.items()} for k, d in split_info.items()}}
                 if split_info else {})}
    class_doc = [{"index": i, "class_id": c.id, "name": c.name, "color": c.color} for i, c in enumerate(classes)]

    items = _items(frames, boxes)
    root = settings.versions_dir / str(project_id)
    root.mkdir(parents=True, exist_ok=True)
    with connect() as cur:
        version_id = sql.next_version_id(cur)
    final = root / str(version_id)
    tmp = root / f".tmp-{version_id}-{uuid.uuid4().hex[:8]}"
    items.insert(0, "version_id", version_id)
    try:
        tmp.mkdir()
        _materialise(tmp, final, frames, _yolo_lines(boxes), names, settings.data_dir)
        with connect() as cur:
            cur.execute("BEGIN")
            try:
                sql.insert_version(cur, version_id, project_id, name, params, stats, class_doc,
                                   str(final.resolve()), author)
                sql.insert_items(cur, items)
                cur.execute("COMMIT")
            except duckdb.ConstraintException:
                cur.execute("ROLLBACK")
                raise Conflict(f"a dataset version named {name!r} already exists") from None
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        try:
            if final.exists():  # a stale folder from an interrupted run can only be garbage
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            with connect() as cur:
                sql.delete_version_rows(cur, version_id)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("dataset version %s (%d) of project %d: %s", name, version_id, project_id, stats["splits"])
    return get_version(version_id, project_id)


def _items(frames: pd.DataFrame, boxes: pd.DataFrame) -> pd.DataFrame:
    cols = ["split", "video_id", "frame_idx", "image", "width", "height", "class_index", "track_id",
            "x1", "y1", "x2", "y2", "source"]
    with_boxes = boxes[cols]
    labeled = set(zip(boxes["video_id"].tolist(), boxes["frame_idx"].tolist(), strict=False))
    empty_mask = [(v, i) not in labeled for v, i in zip(frames["video_id"].tolist(), frames["idx"].tolist(), strict=False)]
    empty = frames[empty_mask].rename(columns={"idx": "frame_idx"})
    empty = empty.assign(class_index=np.nan, track_id=np.nan, x1=np.nan, y1=np.nan, x2=np.nan, y2=np.nan,
                         source=None)[cols]
    out = pd.concat([with_boxes, empty], ignore_index=True) if len(empty) else with_boxes.reset_index(drop=True)
    out["class_index"] = out["class_index"].astype("Int64")
    out["track_id"] = out["track_id"].astype("Int64")
    return out


def _version_stats(frames: pd.DataFrame, boxes: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    splits: dict[str, Any] = {}
    for s in SPLITS:
        f = frames[frames["split"] == s]
        if f.empty and s == "test":
            continue
        b = boxes[boxes["split"] == s]
        per_class = b.groupby("class_index").size()
        labeled = b[["video_id", "frame_idx"]].drop_duplicates()
        splits[s] = {
            "images": int(len(f)),
            "boxes": int(len(b)),
            "empty_images": int(len(f) - len(labeled)),
            "videos": int(f["video_id"].nunique()),
            "per_class": {n: int(per_class.get(i, 0)) for i, n in enumerate(names)},
        }
    return {"images": int(len(frames)), "boxes": int(len(boxes)), "splits": splits}


def _public(version: dict[str, Any]) -> dict[str, Any]:
    out = dict(version)
    out["data_yaml"] = str(Path(out["path"]) / "data.yaml") if out.get("path") else None
    out["names"] = [c["name"] for c in out.get("classes") or []]
    return out


def list_versions(project_id: int) -> list[dict[str, Any]]:
    """The project's dataset versions, newest first (params, stats with per-split counts, classes)."""
    with connect() as cur:
        return [_public(v) for v in sql.versions_of(cur, project_id)]


def get_version(ref: int | str, project_id: int | None = None) -> dict[str, Any]:
    """A version by id, or by exact name within `project_id`."""
    with connect() as cur:
        version = None
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            version = sql.version_by_id(cur, int(ref))
            if version is not None and project_id is not None and version["project_id"] != project_id:
                version = None
        if version is None and isinstance(ref, str) and project_id is not None:
            version = sql.version_by_name(cur, project_id, ref.strip())
    if version is None:
        raise NotFound(f"no dataset version {ref!r}" + (f" in project {project_id}" if project_id else ""))
    return _public(version)


def version_items(version_id: int) -> pd.DataFrame:
    """The frozen rows of a version (one per box; box columns empty for background frames)."""
    with connect() as cur:
        if sql.version_by_id(cur, version_id) is None:
            raise NotFound(f"no dataset version {version_id}")
        return sql.items_of(cur, version_id)


def delete_version(version_id: int) -> None:
    """Delete a version's rows and folder. Refused while a training run on it is queued or running."""
    with connect() as cur:
        version = sql.version_by_id(cur, version_id)
        if version is None:
            raise NotFound(f"no dataset version {version_id}")
        if sql.active_runs_using(cur, version_id):
            raise Conflict(f"dataset version {version['name']!r} is in use by a queued or running training")
        cur.execute("BEGIN")
        try:
            sql.delete_version_rows(cur, version_id)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    if version.get("path"):
        shutil.rmtree(version["path"], ignore_errors=True)


def version_data_yaml(version_id: int) -> Path:
    """The version's data.yaml, its `path` rewritten if the data dir moved since creation."""
    version = get_version(version_id)
    folder = get_settings().versions_dir / str(version["project_id"]) / str(version_id)
    target = folder / "data.yaml"
    if not target.exists():
        raise NotFound(f"dataset version {version['name']!r} has no data.yaml at {target}")
    doc = yaml.safe_load(target.read_text())
    if doc.get("path") != str(folder.resolve()):
        doc["path"] = str(folder.resolve())
        target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return target
