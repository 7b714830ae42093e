"""Getting videos and image sets in: validate uploads, decode them into the frame store, record.

Three steps, on two sides of the job queue (see app/jobstate.py):

    web     prepare_ingest()  checks every file and option, inserts a videos row per item
                              (status 'ingesting'), moves the files to uploads/<video_id>/
    worker  run_ingest()      decodes into videos/<id>.tmp, renames it to videos/<id>
    web     record_ingest()   bulk-inserts the frames rows, marks the video ready
            fail_ingest()     removes the row and every file of a failed or cancelled ingest

A batch becomes: one item per video file, one image set per zip archive, and one image set for
all loose images. `ingest_now()` runs the three steps in this process (CLI fallback, tests);
`start_ingest()` submits them to a queue (the upload page).
"""
from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import duckdb
import pandas as pd

from app import framestore
from app.archive import list_members, natural_key, safe_extract
from app.errors import BadInput, Conflict, NotFound, TooLarge
from app.names import clean_name, safe_filename
from app.settings import MB, Settings, get_settings
from app.store import videos as sql
from app.store.db import connect
from app.video import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    IngestCancelled,
    decode_to_store,
    images_to_store,
    is_image_name,
    is_video_name,
    probe,
)

log = logging.getLogger(__name__)

ARCHIVE_EXTS = (".zip",)
UPLOAD_EXTS = VIDEO_EXTS + IMAGE_EXTS + ARCHIVE_EXTS
STAGING = ".staging"


# ----------------------------------------------------------------------------- web side


def upload_types() -> list[str]:
    """Accepted file extensions without the dot (for an uploader widget)."""
    return [e.lstrip(".") for e in UPLOAD_EXTS]


def stage_upload(name: str, data: IO[bytes] | bytes) -> Path:
    """Write an uploaded file (bytes or a binary file object) to the uploads staging area and
    return its path, for prepare_ingest(). Refuses files over TPOD_MAX_UPLOAD_MB."""
    settings = get_settings()
    limit = settings.max_upload_mb * MB
    folder = settings.uploads_dir / STAGING / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / safe_filename(name, "upload")
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) > limit:
                raise TooLarge(f"{name}: larger than {settings.max_upload_mb} MB (limit TPOD_MAX_UPLOAD_MB)")
            path.write_bytes(bytes(data))
        else:
            written = 0
            with open(path, "wb") as out:
                while chunk := data.read(4 * MB):
                    written += len(chunk)
                    if written > limit:
                        raise TooLarge(f"{name}: larger than {settings.max_upload_mb} MB "
                                       "(limit TPOD_MAX_UPLOAD_MB)")
                    out.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return path


def _is_staged(path: Path, settings: Settings) -> bool:
    return path.resolve().is_relative_to((settings.uploads_dir / STAGING).resolve())


def _discard_staged(paths: Sequence[Path], settings: Settings) -> None:
    for path in paths:
        if _is_staged(path, settings):
            shutil.rmtree(path.parent, ignore_errors=True)


def _check_options(stride: int, max_side: int | None, start_s: float | None, end_s: float | None) -> None:
    if not isinstance(stride, int) or stride < 1:
        raise BadInput(f"stride must be a whole number >= 1, not {stride!r}")
    if max_side is not None and (not isinstance(max_side, int) or max_side < 16):
        raise BadInput(f"max working resolution must be at least 16 pixels, not {max_side!r}")
    for label, value in (("start", start_s), ("end", end_s)):
        if value is not None and value < 0:
            raise BadInput(f"time range {label} must be >= 0 s, not {value}")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise BadInput(f"time range {start_s}-{end_s} s is empty")


def _check_file(name: str, path: Path, settings: Settings) -> None:
    ext = Path(name).suffix.lower()
    if ext not in UPLOAD_EXTS:
        raise BadInput(f"{name}: unsupported file type {ext or '(none)'}; upload "
                       f"{', '.join(upload_types())}")
    if not path.is_file():
        raise NotFound(f"{name}: no such file {path}")
    size = path.stat().st_size
    if size == 0:
        raise BadInput(f"{name}: the file is empty")
    if size > settings.max_upload_mb * MB:
        raise TooLarge(f"{name}: {size / MB:.0f} MB is over the upload limit of {settings.max_upload_mb} MB "
                       "(TPOD_MAX_UPLOAD_MB)")


def _check_image(name: str, path: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"{name}: not a readable image ({exc.__class__.__name__})") from None


def _zip_images(name: str, path: Path, settings: Settings) -> int:
    members = list_members(path, max_files=settings.max_archive_files, max_bytes=settings.max_archive_mb * MB)
    images = [m for m in members if is_image_name(m.path)]
    if not images:
        raise BadInput(f"{name}: the archive has no images ({', '.join(IMAGE_EXTS)})")
    return len(images)


def _estimate_frames(name: str, path: Path, stride: int, start_s: float | None, end_s: float | None) -> int:
    info = probe(path, count=False)
    total = info.frame_count
    if info.fps and (start_s is not None or end_s is not None):
        hi = min(total, end_s * info.fps) if end_s is not None else total
        total = max(0, int(hi - (start_s or 0.0) * info.fps))
        if total == 0 and info.frame_count:
            raise BadInput(f"{name}: no frames in the time range {start_s or 0}-{end_s or 'end'} s "
                           f"(the video lasts {info.duration:.1f} s)")
    return -(-total // stride)


def _plan(files: Sequence[tuple[str, Path]], image_set_name: str | None, stride: int,
          start_s: float | None, end_s: float | None, settings: Settings) -> list[dict[str, Any]]:
    """Validate every file and group them into items (one per future videos row)."""
    if len(files) > settings.max_upload_files:
        raise TooLarge(f"{len(files)} files in one upload is over the limit of {settings.max_upload_files} "
                       "(TPOD_MAX_UPLOAD_FILES); zip a large image set instead")
    items: list[dict[str, Any]] = []
    loose: list[tuple[str, Path]] = []
    for raw_name, path in files:
        path = Path(path)
        name = clean_name(Path(str(raw_name).replace("\\", "/")).name, "file name")
        _check_file(name, path, settings)
        if is_video_name(name):
            estimate = _estimate_frames(name, path, stride, start_s, end_s)
            if estimate > settings.max_video_frames:
                raise TooLarge(f"{name}: about {estimate} frames to store is over the limit of "
                               f"{settings.max_video_frames} (TPOD_MAX_VIDEO_FRAMES); use a larger stride "
                               "or a time range")
            items.append({"kind": "video", "name": name, "files": [(name, path)], "zip": False})
        elif name.lower().endswith(ARCHIVE_EXTS):
            count = _zip_images(name, path, settings)
            if count > settings.max_video_frames:
                raise TooLarge(f"{name}: {count} images is over the limit of {settings.max_video_frames} "
                               "frames (TPOD_MAX_VIDEO_FRAMES)")
            items.append({"kind": "images", "name": name, "files": [(name, path)], "zip": True})
        else:
            _check_image(name, path)
            loose.append((name, path))
    if loose:
        seen: set[str] = set()
        for name, _ in loose:
            if name.casefold() in seen:
                raise Conflict(f"{name}: the same image name appears twice in this upload")
            seen.add(name.casefold())
        if len(loose) > settings.max_video_frames:
            raise TooLarge(f"{len(loose)} images is over the limit of {settings.max_video_frames} frames "
                           "(TPOD_MAX_VIDEO_FRAMES)")
        if image_set_name:
            set_name = clean_name(image_set_name, "image set name")
        elif len(loose) == 1:
            set_name = loose[0][0]
        else:
            set_name = f"{Path(loose[0][0]).stem} and {len(loose) - 1} more"
        items.append({"kind": "images", "name": set_name, "files": loose, "zip": False})
    if not items:
        raise BadInput("nothing to ingest: no files given")
    names = [it["name"] for it in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise Conflict(f"{dupes[0]!r} appears twice in this upload; rename one of the files")
    return items


def _place(items: list[dict[str, Any]], video_ids: list[int], settings: Settings) -> list[list[str]]:
    """Move staged uploads (or copy the caller's files) to uploads/<video_id>/; returns the new
    paths relative to the data dir, per item."""
    placed: list[list[str]] = []
    for item, vid in zip(items, video_ids, strict=True):
        folder = settings.uploads_dir / str(vid)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        rel: list[str] = []
        many = item["kind"] == "images" and not item["zip"]
        for i, (name, path) in enumerate(item["files"]):
            safe = safe_filename(name, "upload")
            target = folder / (f"{i:06d}_{safe}" if many else safe)
            if _is_staged(path, settings):
                shutil.move(path, target)
            else:
                shutil.copyfile(path, target)  # never move a file the caller still owns
            rel.append(target.relative_to(settings.data_dir).as_posix())
        placed.append(rel)
    return placed


def prepare_ingest(project_id: int, files: list[tuple[str, Path]], *, stride: int = 1,
                   max_side: int | None = None, start_s: float | None = None, end_s: float | None = None,
                   author: str | None = None, image_set_name: str | None = None) -> list[tuple[int, str, dict]]:
    """Validate a batch of uploads ((original name, path) pairs) and register it for ingest.

    Checks extensions, sizes (TPOD_MAX_UPLOAD_MB), that each video opens and decodes, archives
    (app/archive.py limits), frame limits, duplicate names in the batch or project (Conflict) and
    the project's video quota. Inserts one videos row per item with status 'ingesting' and a
    fresh job id, and moves staged uploads (copies other files) to uploads/<video_id>/.
    Returns (video_id, job_id, params) per item; submit each as an "ingest" job with that job id.
    On any refusal nothing is inserted, nothing is copied, and staged uploads are discarded.
    """
    from app.jobstate import new_job_id
    from app.projects import get_project

    settings = get_settings()
    paths = [Path(p) for _, p in files]
    video_ids: list[int] = []
    try:
        project = get_project(int(project_id))
        _check_options(stride, max_side, start_s, end_s)
        items = _plan(files, image_set_name, stride, start_s, end_s, settings)
        jobs = [new_job_id() for _ in items]
        with connect() as cur:
            cur.execute("BEGIN")
            try:
                taken = sql.taken_names(cur, project.id, [it["name"] for it in items])
                if taken:
                    raise Conflict(f"project {project.name!r} already has a video named {taken[0]!r}; "
                                   "rename the file or delete the old video")
                have = sql.video_count(cur, project.id)
                if have + len(items) > settings.project_quota_videos:
                    raise TooLarge(f"project {project.name!r} has {have} videos; adding {len(items)} would pass "
                                   f"the limit of {settings.project_quota_videos} (TPOD_PROJECT_MAX_VIDEOS)")
                for item, job_id in zip(items, jobs, strict=True):
                    video_ids.append(sql.insert_video(cur, project.id, item["name"], item["kind"],
                                                      stride if item["kind"] == "video" else 1, job_id, author))
                cur.execute("COMMIT")
            except duckdb.ConstraintException:
                cur.execute("ROLLBACK")
                video_ids.clear()
                raise Conflict(f"project {project.name!r}: a video with one of these names was just added; "
                               "refresh and try again") from None
            except BaseException:
                cur.execute("ROLLBACK")
                video_ids.clear()
                raise
        placed = _place(items, video_ids, settings)
    except BaseException:
        if video_ids:
            _remove_videos(video_ids, settings)
        _discard_staged(paths, settings)
        raise
    _discard_staged(paths, settings)
    out: list[tuple[int, str, dict]] = []
    for item, vid, job_id, rel in zip(items, video_ids, jobs, placed, strict=True):
        params = {
            "video_id": vid, "project_id": project.id, "name": item["name"], "kind": item["kind"],
            "sources": rel, "names": [n for n, _ in item["files"]], "zip": item["zip"],
            "stride": stride, "max_side": max_side, "start_s": start_s, "end_s": end_s,
            "max_frames": settings.max_video_frames,
            "max_archive_files": settings.max_archive_files, "max_archive_mb": settings.max_archive_mb,
        }
        out.append((vid, job_id, params))
    return out


def start_ingest(queue: Any, project_id: int, files: list[tuple[str, Path]], *, author: str | None = None,
                 **opts: Any) -> list[str]:
    """prepare_ingest() then submit one "ingest" job per item to `queue`; returns the job ids."""
    from app.jobstate import submit

    job_ids = []
    for _, job_id, params in prepare_ingest(project_id, files, author=author, **opts):
        job_ids.append(submit(queue, "ingest", params, project_id=int(project_id), author=author, job_id=job_id))
    return job_ids


def start_ingest_uploads(queue: Any, project_id: int, uploads: Sequence[tuple[str, IO[bytes] | bytes]], *,
                         author: str | None = None, **opts: Any) -> list[str]:
    """Stage uploaded files (name, bytes or binary file object) and start their ingest jobs
    (the upload page's one call). Returns the job ids; on a refusal nothing is left behind."""
    settings = get_settings()
    staged: list[tuple[str, Path]] = []
    try:
        for name, data in uploads:
            staged.append((name, stage_upload(name, data)))
    except BaseException:
        _discard_staged([p for _, p in staged], settings)
        raise
    return start_ingest(queue, project_id, staged, author=author, **opts)


# ----------------------------------------------------------------------------- worker side


def run_ingest(params: dict, ctx: Any) -> dict:
    """Worker side: decode the uploads named in params into videos/<id> (via videos/<id>.tmp).

    Reports done/total/fps/eta; on cancel returns {"state": "cancelled"}; on any failure removes
    the temporary folder and raises (BadInput for bad files)."""
    data_dir = Path(ctx.data_dir)
    vid = int(params["video_id"])
    final = framestore.video_dir(vid, data_dir)
    tmp = final.with_name(f"{vid}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sources = [data_dir / s for s in params["sources"]]
    name = params.get("name") or sources[0].name

    def report(**progress: Any) -> None:
        ctx.report(message=f"{name}: decoding", **progress)

    ctx.report(done=0, total=0, message=f"{name}: starting")
    try:
        if params["kind"] == "video":
            summary = decode_to_store(
                sources[0], tmp, stride=int(params.get("stride") or 1), max_side=params.get("max_side"),
                start_s=params.get("start_s"), end_s=params.get("end_s"), report=report,
                should_stop=ctx.should_stop, max_frames=params.get("max_frames"))
        else:
            images, names = _image_inputs(params, sources, tmp)
            summary = images_to_store(images, tmp, names=names, max_side=params.get("max_side"),
                                      report=report, should_stop=ctx.should_stop,
                                      max_frames=params.get("max_frames"))
            shutil.rmtree(tmp / "extract", ignore_errors=True)
        if final.exists():
            shutil.rmtree(final)  # a rerun of the same job
        tmp.rename(final)
    except IngestCancelled:
        shutil.rmtree(tmp, ignore_errors=True)
        ctx.report(message=f"{name}: cancelled")
        return {"state": "cancelled", "video_id": vid}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ctx.report(done=summary["frame_count"], total=summary["frame_count"], message=f"{name}: done")
    return {"state": "done", "video_id": vid, "meta": summary}


def _image_inputs(params: dict, sources: list[Path], tmp: Path) -> tuple[list[Path], list[str]]:
    if not params.get("zip"):
        return sources, list(params.get("names") or [p.name for p in sources])
    extract = tmp / "extract"
    files = safe_extract(sources[0], extract, max_files=int(params.get("max_archive_files") or 20000),
                         max_bytes=int(params.get("max_archive_mb") or 4096) * MB)
    images = sorted((p for p in files if is_image_name(p.name)), key=lambda p: natural_key(p.relative_to(extract)))
    if not images:
        raise BadInput(f"{sources[0].name}: the archive has no images")
    return images, [p.relative_to(extract).as_posix() for p in images]


# ----------------------------------------------------------------------------- web side, after the job


def _frames_frame(vid: int, meta: dict) -> pd.DataFrame:
    rows = meta["frames"]
    n = len(rows)
    sizes = meta.get("sizes")
    names = meta.get("names")
    return pd.DataFrame({
        "video_id": pd.Series([vid] * n, dtype="int32"),
        "idx": pd.Series(range(n), dtype="int32"),
        "source_idx": pd.Series([int(r[0]) for r in rows], dtype="int32"),
        "ts": pd.Series([float(r[1]) for r in rows], dtype="float64"),
        "name": pd.Series(names if names else [None] * n, dtype="object"),
        "width": pd.Series([s[0] for s in sizes] if sizes else [meta["width"]] * n, dtype="int32"),
        "height": pd.Series([s[1] for s in sizes] if sizes else [meta["height"]] * n, dtype="int32"),
    })


def record_ingest(job: dict, result: dict) -> None:
    """Web side: insert the frames rows from meta.json and mark the video ready (a cancelled
    result removes the video instead). Idempotent."""
    params = job.get("params") or {}
    vid = int(result.get("video_id") or params["video_id"])
    settings = get_settings()
    if result.get("state") == "cancelled":
        _remove_videos([vid], settings, job_id=job.get("id"))
        return
    with connect() as cur:
        gone = sql.video_by_id(cur, vid) is None
    if gone:
        log.info("video %d was deleted while it was ingested; removing its files", vid)
        _remove_files(vid, settings)
        return
    meta = framestore.meta(vid, settings.data_dir)
    frames = _frames_frame(vid, meta)
    with connect() as cur:
        cur.execute("BEGIN")
        try:
            row = sql.video_by_id(cur, vid)
            if row is None:
                cur.execute("ROLLBACK")
                log.info("video %d was deleted while it was ingested; removing its files", vid)
                _remove_files(vid, settings)
                return
            cur.execute("DELETE FROM frames WHERE video_id = ?", [vid])
            sql.insert_frames(cur, frames)
            sql.mark_ready(cur, vid, width=int(meta["width"]), height=int(meta["height"]), fps=meta.get("fps"),
                           frame_count=len(frames), duration=meta.get("duration"), codec=meta.get("codec"),
                           stride=int(meta.get("stride") or 1), work_width=int(meta["work_width"]),
                           work_height=int(meta["work_height"]))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise


def fail_ingest(job: dict, error: str) -> None:
    """Web side: a failed or cancelled ingest leaves nothing behind (row, uploads, frames)."""
    vid = (job.get("params") or {}).get("video_id")
    if vid is None:
        return
    log.info("ingest of video %s failed: %s", vid, error)
    _remove_videos([int(vid)], get_settings(), job_id=job.get("id"))


def _remove_files(vid: int, settings: Settings) -> None:
    final = framestore.video_dir(vid, settings.data_dir)
    for path in (final, final.with_name(f"{vid}.tmp"), settings.uploads_dir / str(vid)):
        shutil.rmtree(path, ignore_errors=True)


def _remove_videos(video_ids: list[int], settings: Settings, job_id: str | None = None) -> None:
    """Delete rows and files of videos; with job_id, only a row still owned by that job (a
    ready video re-used by a later job is never removed by a stale failure)."""
    with connect() as cur:
        cur.execute("BEGIN")
        try:
            for vid in video_ids:
                row = sql.video_by_id(cur, vid)
                if row is not None and (job_id is None or row["job_id"] == job_id):
                    sql.delete_video(cur, vid)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    for vid in video_ids:
        _remove_files(vid, settings)


# ----------------------------------------------------------------------------- reading and deleting


def list_videos(project_id: int) -> list[dict]:
    """The project's videos and image sets (dicts of the videos columns), oldest first."""
    with connect() as cur:
        return sql.videos_of(cur, int(project_id))


def get_video(video_id: int) -> dict:
    """One video's row as a dict; NotFound if there is none."""
    with connect() as cur:
        row = sql.video_by_id(cur, int(video_id))
    if row is None:
        raise NotFound(f"no video {video_id}")
    return row


def delete_video(video_id: int) -> None:
    """Delete one video: its boxes, tracks, frames, frame store and uploaded files."""
    settings = get_settings()
    get_video(video_id)
    _remove_videos([int(video_id)], settings)


def thumbnails(video_id: int, n: int = 8) -> list[int]:
    """Up to n frame indices spread evenly over a ready video (first and last included)."""
    count = int(get_video(video_id).get("frame_count") or 0)
    if count <= 0 or n <= 0:
        return []
    if n == 1 or count == 1:
        return [0]
    return sorted({round(i * (count - 1) / (n - 1)) for i in range(min(n, count))})


def thumbnail_strip(video_id: int, n: int = 8, height: int = 90) -> bytes:
    """A JPEG strip of n frames spread over a ready video; built once, then kept in its frame
    store folder (deleted with the video)."""
    from app.video import make_strip

    settings = get_settings()
    indices = thumbnails(video_id, n)
    if not indices:
        raise NotFound(f"video {video_id} has no frames yet")
    cached = framestore.video_dir(video_id, settings.data_dir) / f"strip_{n}_{height}.jpg"
    if cached.exists():
        return cached.read_bytes()
    data = make_strip([framestore.frame_file(video_id, i, settings.data_dir) for i in indices], height)
    tmp = cached.with_suffix(f".{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(data)
    tmp.replace(cached)
    return data


def ingest_now(project_id: int, files: list[tuple[str, Path]], **opts: Any) -> list[dict]:
    """prepare + run (in this process) + record every item; returns the new videos' rows.
    On a failure, that item and the ones not yet run are removed, and the error is raised."""
    from app.jobctx import LocalContext

    prepared = prepare_ingest(project_id, files, **opts)
    done: list[dict] = []
    for i, (vid, job_id, params) in enumerate(prepared):
        job = {"id": job_id, "kind": "ingest", "project_id": int(project_id), "params": params,
               "created_by": opts.get("author")}
        try:
            result = run_ingest(params, LocalContext(job_id))
            record_ingest(job, result)
        except BaseException as exc:
            for _, later_job, later_params in prepared[i:]:
                fail_ingest({"id": later_job, "kind": "ingest", "params": later_params}, str(exc))
            raise
        done.append(get_video(vid))
    return done
