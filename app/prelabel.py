"""Pre-label a video with a trained detector: detections linked into tracks, stored as 'predicted'.

Web side: `prelabel_params` checks the model/video pair and maps the model's classes onto the
project's by name. Worker side: `run_prelabel` runs the model over the video's stored frames,
converts boxes to ORIGINAL pixels, links them into tracks and writes a Parquet file under
<data_dir>/prelabel/. Web side again: `record_prelabel` bulk-inserts them, skipping any predicted
box that overlaps a stored box of the same class on the same frame (manual boxes always win).

Tracks are linked by an IoU + Hungarian matcher here rather than Ultralytics' ByteTrack: its
tracker needs the `lap` package, which Ultralytics would try to pip-install at run time.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app import framestore
from app.domain import Box
from app.errors import BadInput, NotFound
from app.store.db import connect

log = logging.getLogger(__name__)

BATCH = 16
LINK_IOU = 0.3
MAX_GAP = 5
COLUMNS = ["frame_idx", "track", "label", "x1", "y1", "x2", "y2", "confidence"]


# ---------------------------------------------------------------------------- web side: params


def model_class_names(model: dict[str, Any]) -> list[str]:
    """A model row's classes in index order (loading the weights when the row lacks them)."""
    classes = model.get("classes")
    if isinstance(classes, dict):
        return [str(classes[k]) for k in sorted(classes, key=int)]
    if isinstance(classes, list) and classes:
        return [str(c) for c in classes]
    from app.predict import model_classes

    return model_classes(model["path"])


def class_mapping(model_classes: list[str], project_classes: list[str], create_classes: bool) -> dict[str, Any]:
    """Which model classes a pre-label keeps: {"keep": [model index...], "create": [names...],
    "ignored": [names...]}. Refuses a model that shares no class with the project."""
    have = set(project_classes)
    shared = [i for i, n in enumerate(model_classes) if n in have]
    missing = [n for n in model_classes if n not in have]
    if create_classes:
        return {"keep": list(range(len(model_classes))), "create": missing, "ignored": []}
    if not shared:
        raise BadInput(
            f"the model's classes ({', '.join(model_classes) or 'none'}) share no name with the project's "
            f"({', '.join(project_classes) or 'none'}): allow creating classes or add them to the project")
    return {"keep": shared, "create": [], "ignored": missing}


def prelabel_params(model_id: int, video_id: int, *, conf: float = 0.25, create_classes: bool = False,
                    imgsz: int | None = None, start: int = 0, end: int | None = None,
                    device: str | None = None) -> dict[str, Any]:
    """Checked, JSON-able params for a "prelabel" job (for app.jobstate.submit)."""
    from app.store import prelabel as sql
    from app.store.projects import classes_of

    if not 0.0 < conf < 1.0:
        raise BadInput(f"confidence {conf} must be between 0 and 1")
    from app.registry import get_model

    model = get_model(int(model_id))
    with connect() as cur:
        video = sql.video_row(cur, int(video_id))
        if video is None:
            raise NotFound(f"no video {video_id}")
        project_classes = [c.name for c in classes_of(cur, video["project_id"])]
    if video["status"] != "ready":
        raise BadInput(f"video {video['name']!r} is {video['status']}, not ready")
    if not Path(model["path"]).is_file():
        raise NotFound(f"model {model['name']!r}: weights file {model['path']} is missing")
    n = int(video["frame_count"] or 0)
    end = n if end is None else min(int(end), n)
    if not 0 <= start < end:
        raise BadInput(f"frame range [{start}, {end}) is empty for video {video['name']!r} ({n} frames)")
    names = model_class_names(model)
    mapping = class_mapping(names, project_classes, create_classes)
    model_params = model.get("params") or {}
    return {
        "model_id": int(model_id), "model_path": str(model["path"]), "video_id": int(video_id),
        "project_id": int(video["project_id"]), "classes": names, "keep": mapping["keep"],
        "create_classes": bool(create_classes), "conf": float(conf),
        "imgsz": int(imgsz or model_params.get("imgsz") or 640), "start": int(start), "end": int(end),
        "link": video["kind"] == "video", "link_iou": LINK_IOU, "max_gap": MAX_GAP,
        "device": device,
    }


# ---------------------------------------------------------------------------- worker side


def link_tracks(frames: list[list[Box]], *, iou_threshold: float = LINK_IOU, max_gap: int = MAX_GAP) -> list[Box]:
    """Give each detection a track id (0, 1, ...): per class, detections in consecutive frames
    are matched to live tracks by IoU (Hungarian, IoU >= threshold); a track survives `max_gap`
    frames without a match. Input: detections per frame (Box.frame set); output: flat list."""
    from scipy.optimize import linear_sum_assignment

    from app.domain import iou

    out: list[Box] = []
    live: list[dict[str, Any]] = []  # {"id", "label", "box", "frame"}
    next_id = 0
    for dets in sorted((d for d in frames if d), key=lambda d: d[0].frame):
        frame = dets[0].frame
        live = [t for t in live if frame - t["frame"] <= max_gap + 1]
        for label in sorted({d.label for d in dets}):
            cand = [d for d in dets if d.label == label]
            tracks = [t for t in live if t["label"] == label]
            assigned: dict[int, dict[str, Any]] = {}
            if tracks:
                ious = np.array([[iou(t["box"], d) for d in cand] for t in tracks])
                rows, cols = linear_sum_assignment(-ious)
                for r, c in zip(rows, cols, strict=True):
                    if ious[r, c] >= iou_threshold:
                        assigned[int(c)] = tracks[int(r)]
            for j, det in enumerate(cand):
                track = assigned.get(j)
                if track is None:
                    track = {"id": next_id, "label": label}
                    next_id += 1
                    live.append(track)
                track["box"], track["frame"] = det, frame
                out.append(det.moved(track_id=track["id"]))
    return out


def _clip(box: Box, width: float, height: float) -> Box | None:
    x1, y1 = min(max(box.x1, 0.0), width), min(max(box.y1, 0.0), height)
    x2, y2 = min(max(box.x2, 0.0), width), min(max(box.y2, 0.0), height)
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    return box.moved(x1=x1, y1=y1, x2=x2, y2=y2)


def output_path(data_dir: Path, job_id: str) -> Path:
    from app.names import safe_filename

    return data_dir / "prelabel" / f"{safe_filename(job_id, 'job')}.parquet"


def run_prelabel(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Worker side: detect on frames [start, end) of the video's frame store, link into tracks and
    write them (ORIGINAL pixel coordinates) to <data_dir>/prelabel/<job_id>.parquet."""
    from app.predict import predict_frames, prepare_yolo

    data_dir = Path(ctx.data_dir)
    prepare_yolo(data_dir)
    vid = int(params["video_id"])
    meta = framestore.meta(vid, data_dir)
    n = len(meta.get("frames") or [])
    start, end = int(params.get("start", 0)), min(int(params.get("end") or n), n)
    keep = {int(i) for i in params["keep"]}
    frames = list(range(start, end))
    total = len(frames)
    ctx.report(done=0, total=total, message="loading the model")
    t0 = time.monotonic()
    detections: list[list[Box]] = []
    stopped = False
    for b in range(0, total, BATCH):
        if ctx.should_stop():
            stopped = True
            break
        idxs = frames[b:b + BATCH]
        images = [framestore.read_bgr(vid, i, data_dir) for i in idxs]
        preds = predict_frames(params["model_path"], images, conf=float(params["conf"]),
                               imgsz=int(params["imgsz"]), device=params.get("device"))
        for i, boxes in zip(idxs, preds, strict=True):
            # image sets may mix sizes: each frame has its own original size and stored scale
            scale = framestore.frame_scale(vid, i, data_dir)
            width, height = (float(v) for v in framestore.frame_size(vid, i, data_dir))
            kept = []
            for box in boxes:
                if box.class_id not in keep:
                    continue
                box = _clip(box.moved(x1=box.x1 * scale, y1=box.y1 * scale, x2=box.x2 * scale,
                                      y2=box.y2 * scale, frame=i), width, height)
                if box is not None:
                    kept.append(box)
            detections.append(kept)
        done = b + len(idxs)
        fps = done / max(time.monotonic() - t0, 1e-6)
        ctx.report(done=done, total=total, message=f"frame {idxs[-1] + 1} of {end} ({fps:.1f} frames/s)",
                   detections=sum(len(d) for d in detections))
    if params.get("link", True):
        linked = link_tracks(detections, iou_threshold=float(params.get("link_iou", LINK_IOU)),
                             max_gap=int(params.get("max_gap", MAX_GAP)))
    else:
        linked = [d.moved(track_id=k) for k, d in enumerate(x for f in detections for x in f)]
    table = pd.DataFrame(
        [(b.frame, b.track_id, b.label, b.x1, b.y1, b.x2, b.y2, b.confidence) for b in linked], columns=COLUMNS,
    ).astype({"frame_idx": "int64", "track": "int64", "label": "string", "x1": "float64", "y1": "float64",
              "x2": "float64", "y2": "float64", "confidence": "float64"})
    path = output_path(data_dir, ctx.job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
    seconds = time.monotonic() - t0
    return {"path": str(path), "video_id": vid, "frames": len(detections), "detections": len(table),
            "tracks": int(table["track"].nunique()), "seconds": round(seconds, 3),
            "fps": round(len(detections) / seconds, 2) if seconds > 0 else None, "stopped": stopped}


# ---------------------------------------------------------------------------- web side: record


def record_prelabel(job: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Insert a finished pre-label as new tracks of 'predicted' boxes with their confidence.

    Boxes overlapping a stored box of the same class on the same frame (IoU > 0.5) are skipped,
    so manual boxes are never overwritten or duplicated and recording twice adds nothing.
    Returns {"boxes", "tracks", "skipped", "classes_created"}.
    """
    from app.names import clean_color, clean_name
    from app.store import prelabel as sql
    from app.store.projects import classes_of, insert_class

    params = job["params"]
    path = Path(result["path"])
    if not path.is_file():
        raise NotFound(f"pre-label output {path} is missing")
    table = pd.read_parquet(path)
    vid = int(params["video_id"])
    author = job.get("created_by")
    with connect() as cur:
        video = sql.video_row(cur, vid)
        if video is None:
            raise NotFound(f"video {vid} was deleted while it was being pre-labelled")
        cur.execute("BEGIN")
        try:
            classes = {c.name: c.id for c in classes_of(cur, video["project_id"])}
            created: list[str] = []
            for name in sorted(set(table["label"].astype(str)) - set(classes)):
                if not params.get("create_classes"):
                    continue
                classes[name] = insert_class(cur, video["project_id"], clean_name(name, "class name"),
                                             clean_color(None, len(classes)))
                created.append(name)
            table = table[table["label"].astype(str).isin(classes)]
            table = table.assign(class_id=table["label"].astype(str).map(classes).astype("int64"))
            kept = sql.drop_overlapping(cur, vid, table)
            skipped = len(table) - len(kept)
            local = sorted(kept["track"].unique().tolist())
            ids = dict(zip(local, sql.new_track_ids(cur, len(local)), strict=True))
            kept = kept.assign(track_id=kept["track"].map(ids).astype("int64"), video_id=vid, author=author)
            tracks = (kept.groupby("track_id", as_index=False)["class_id"].first()
                      .rename(columns={"track_id": "id"}).assign(video_id=vid, created_by=author))
            sql.insert_tracks_and_boxes(
                cur, tracks[["id", "video_id", "class_id", "created_by"]],
                kept[["video_id", "frame_idx", "track_id", "class_id", "x1", "y1", "x2", "y2", "confidence",
                      "author"]])
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
    log.info("pre-label %s: %d boxes in %d tracks on video %d (%d skipped)", job.get("id"), len(kept),
             len(tracks), vid, skipped)
    return {"boxes": int(len(kept)), "tracks": int(len(tracks)), "skipped": int(skipped),
            "classes_created": created}


def fail_prelabel(job: dict[str, Any], error: str) -> None:
    """A failed or cancelled pre-label leaves nothing behind: remove its output file."""
    from app.settings import get_settings

    path = output_path(get_settings().data_dir, str(job["id"]))
    for p in (path, path.with_suffix(".part")):
        p.unlink(missing_ok=True)
    log.info("pre-label %s failed: %s", job.get("id"), error)
