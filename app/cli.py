"""`python -m app`: the scriptable face of tpod (like cvat-cli).

Every subcommand has --help. With --json the last line on stdout is one JSON object. Errors the
core raises on purpose (TpodError) end with a one-line message on stderr and exit status 2.
The queue is handed in by app/__main__.py, the composition root, so this module stays Huey-free.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from app.errors import BadInput, JobFailed, NotFound, TpodError
from app.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("tpod.cli")

QueueFactory = Callable[[], Any]


def _emit(args: argparse.Namespace, obj: dict, text: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, default=str))
    else:
        print(text if text is not None else json.dumps(obj, indent=2, default=str))


def _note(msg: str) -> None:
    print(msg, file=sys.stderr)


def _project(ref: str):
    from app import projects

    return projects.get_project(ref)


def _project_or_new(ref: str, author: str | None) -> tuple[Any, bool]:
    """The project `ref`, created if missing; True when this command created it (and so must
    remove it again if the command fails: a refused upload leaves no empty project behind)."""
    from app import projects

    try:
        return projects.get_project(ref), False
    except NotFound:
        return projects.create_project(ref, author=author), True


def _drop_new_project(project: Any, created: bool) -> None:
    from app import projects

    if created:
        projects.delete_project(project.id)


def _queue_for_wait(args: argparse.Namespace, make_queue: QueueFactory):
    """The real queue when a worker is online; else, if the caller waits, run in this process."""
    from app.jobstate import InlineQueue

    queue = make_queue()
    if getattr(args, "wait", True) and not queue.workers():
        log.info("no worker is online: running the job in this process")
        return InlineQueue()
    return queue


def _note_if_no_worker(queue: Any) -> None:
    if not queue.workers():
        _note("queued, but no worker is online: start one with `python -m app worker`")


def _wait(args: argparse.Namespace, queue: Any, job_id: str) -> dict:
    from app import jobstate

    last = [0.0]

    # Progress goes to a terminal (or with -v) only: a script reading stderr sees one line per error.
    chatty = not args.json and (args.verbose or sys.stderr.isatty())

    def show(job: dict) -> None:
        p = job.get("progress") or {}
        if chatty and time.monotonic() - last[0] > 2:
            last[0] = time.monotonic()
            _note(f"{job['kind']} {job_id}: {job['state']} {p.get('message') or ''} "
                  f"{p.get('done', '')}/{p.get('total', '')}".rstrip("/ "))

    return jobstate.wait(queue, job_id, on_progress=show)


# ---------------------------------------------------------------- serve / worker

def cmd_serve(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    """Start Streamlit and a worker as one process tree; Ctrl-C stops both."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    procs: list[subprocess.Popen] = []
    ui = [sys.executable, str(ROOT / "streamlit_launch.py"), "run", str(ROOT / "streamlit_app.py"),
          "--server.port", str(args.port or settings.port), "--server.headless", "true",
          "--browser.gatherUsageStats", "false", "--server.address", args.address]
    procs.append(subprocess.Popen(ui, cwd=ROOT, env=env))
    if not args.no_worker:
        procs.append(subprocess.Popen(_worker_argv(args.threads or settings.worker_concurrency), cwd=ROOT, env=env))
    _note(f"tpod on http://{args.address}:{args.port or settings.port} (data: {settings.data_dir}, "
          f"queue: {settings.queue_backend}{'' if args.no_worker else ', worker started'})")

    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    rc = 0
    try:
        while True:
            if stopping or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.5)
    finally:
        stop()
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
            rc = rc or (p.returncode or 0) if not stopping else rc
    return rc


def _worker_argv(threads: int) -> list[str]:
    return [sys.executable, "-m", "huey.bin.huey_consumer", "jobs.worker.huey",
            "--workers", str(threads), "--worker-type", "thread", "--flush-locks"]


def cmd_worker(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    """Run a Huey consumer for tpod's queue in this process (exec)."""
    settings = get_settings()
    os.chdir(ROOT)
    argv = _worker_argv(args.threads or settings.worker_concurrency)
    _note(f"tpod worker on {settings.queue_backend} queue (data: {settings.data_dir})")
    os.execv(argv[0], argv)
    return 0  # pragma: no cover


# ---------------------------------------------------------------- projects

def cmd_project(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import projects

    if args.action == "create":
        classes = [c for c in (args.classes or "").split(",") if c.strip()]
        p = projects.create_project(args.name, classes, author=args.user)
        _emit(args, {"project": p.id, "name": p.name, "classes": [c.name for c in p.classes]},
              f"created project {p.name!r} (id {p.id})")
    elif args.action == "list":
        items = [{"id": p.id, "name": p.name, "classes": [c.name for c in p.classes]} for p in projects.list_projects()]
        _emit(args, {"projects": items}, "\n".join(f"{i['id']:>4}  {i['name']}  [{', '.join(i['classes'])}]" for i in items) or "no projects")
    elif args.action == "delete":
        p = projects.get_project(args.name)
        if not args.yes:
            raise BadInput(f"deleting project {p.name!r} removes all its videos and labels: add --yes")
        projects.delete_project(p.id)
        _emit(args, {"deleted": p.id}, f"deleted project {p.name!r}")
    return 0


# ---------------------------------------------------------------- videos

def cmd_ingest(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    files = []
    for raw in args.paths:
        p = Path(raw)
        if not p.is_file():
            raise BadInput(f"{raw}: no such file")
        files.append((p.name, p))
    from app import ingest, jobstate

    project, created = _project_or_new(args.project, args.user)
    results = []
    failed = False
    try:
        prepared = ingest.prepare_ingest(project.id, files, stride=args.stride, max_side=args.max_side,
                                         start_s=args.start, end_s=args.end, author=args.user)
        queue = _queue_for_wait(args, make_queue)
        for video_id, job_id, params in prepared:
            jobstate.submit(queue, "ingest", params, project_id=project.id, author=args.user, job_id=job_id)
            job = _wait(args, queue, job_id)
            if job["state"] != "done":
                failed = True
                results.append({"video_id": video_id, "status": job["state"], "error": job.get("error")})
                _note(f"error: ingest of video {video_id} {job['state']}: {job.get('error')}")
                continue
            v = ingest.get_video(video_id)
            results.append({"video_id": video_id, "frames": v["frame_count"], "status": "ready", "name": v["name"],
                            "width": v["width"], "height": v["height"], "fps": v["fps"], "codec": v["codec"]})
    except BaseException:
        _drop_new_project(project, created)
        raise
    if all(r["status"] != "ready" for r in results):
        _drop_new_project(project, created)
    out = results[0] if len(results) == 1 else {"videos": results}
    out = {**out, "project": project.id}
    _emit(args, out, "\n".join(f"video {r['video_id']}: {r.get('frames', 0)} frames ({r['status']})" for r in results))
    return 1 if failed else 0


# ---------------------------------------------------------------- datasets

def cmd_import(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import transfer

    project, created = _project_or_new(args.project, args.user)
    try:
        report = transfer.import_annotations(Path(args.path), project.id, args.format, video_id=args.video,
                                             create_classes=not args.no_create_classes, author=args.user)
    except BaseException:
        _drop_new_project(project, created)
        raise
    _emit(args, report, f"imported {report.get('boxes', 0)} boxes in {report.get('tracks', 0)} tracks; "
                        f"{len(report.get('skipped', []))} skipped")
    return 0


def cmd_export(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import datasets, transfer

    project = _project(args.project)
    version_id = datasets.get_version(args.version, project.id)["id"] if args.version else None
    out = transfer.export_dataset(project.id, args.format, Path(args.out), version_id=version_id)
    _emit(args, {**out, "out": str(args.out)}, f"wrote {args.out}")
    return 0


def cmd_stats(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import stats

    project = _project(args.project)
    s = stats.project_stats(project.id, use_cache=False)  # one-shot: nothing to keep
    per_class = {c["name"]: c["boxes"] for c in s.get("classes", [])} if isinstance(s.get("classes"), list) else s.get("per_class")
    _emit(args, {**s, "per_class": per_class},
          f"{s.get('boxes', 0)} boxes; " + ", ".join(f"{k}: {v}" for k, v in (per_class or {}).items()))
    return 0


def cmd_version(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import datasets

    project = _project(args.project)
    if args.action == "create":
        v = datasets.create_version(project.id, args.name, split=args.split, val=args.val, test=args.test,
                                    every_nth=args.every, dedupe_threshold=args.dedupe,
                                    include_empty=args.include_empty, author=args.user)
        _emit(args, v, f"created version {args.name!r}")
    else:
        vs = datasets.list_versions(project.id)
        _emit(args, {"versions": vs}, "\n".join(f"{v['id']:>4}  {v['name']}" for v in vs) or "no versions")
    return 0


# ---------------------------------------------------------------- training and models

def cmd_train(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import datasets, registry

    project = _project(args.project)
    version = datasets.get_version(args.version, project.id)
    settings = {"epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch, "patience": args.patience,
                "pretrained": not args.scratch and not args.model.endswith(".yaml")}
    if args.device:
        settings["device"] = args.device
    queue = _queue_for_wait(args, make_queue) if args.wait else make_queue()
    run_id, job_id = registry.start_training(queue, project.id, version["id"], args.model, settings, args.user)
    if not args.wait:
        _note_if_no_worker(queue)
        _emit(args, {"run": run_id, "job": job_id, "status": "queued"}, f"queued run {run_id} (job {job_id})")
        return 0
    job = _wait(args, queue, job_id)
    model_id = next((m["id"] for m in registry.list_models(project.id) if m["run_id"] == run_id), None)
    _emit(args, {"run": run_id, "job": job_id, "status": job["state"], "model": model_id, "error": job.get("error")},
          f"run {run_id}: {job['state']}" + (f", model {model_id}" if model_id else ""))
    return 0 if job["state"] in ("done", "cancelled") else 1


def cmd_jobs(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import jobstate

    queue = make_queue()
    jobstate.reconcile(queue)
    jobs = jobstate.list_jobs(limit=args.limit)
    workers = queue.workers()
    _emit(args, {"jobs": jobs, "workers": workers, "pending": queue.pending()},
          "\n".join(f"{j['id']}  {j['kind']:<12} {j['state']:<10} {j['created_at']}" for j in jobs) or "no jobs")
    return 0


def cmd_cancel(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import jobstate, registry

    job_id = args.job
    if job_id.isdigit():  # a training run id
        job_id = registry.get_run(int(job_id)).get("job_id") or job_id
    job = jobstate.cancel(make_queue(), job_id)
    _emit(args, {"job": job_id, "status": job["state"]}, f"job {job_id}: {job['state']} (cancel requested)")
    return 0


def cmd_predict(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import predict

    model_path = _model_path(args.model)
    dets = predict.predict_path(model_path, Path(args.path), conf=args.conf)
    frames = [[{"x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2, "label": b.label, "confidence": b.confidence}
               for b in boxes] for boxes in dets]
    _emit(args, {"frames": len(frames), "detections": sum(len(f) for f in frames), "boxes": frames},
          f"{sum(len(f) for f in frames)} detections on {len(frames)} frame(s)")
    return 0


def _model_path(ref: str) -> str:
    if ref.isdigit():
        from app import registry

        return registry.get_model(int(ref))["path"]
    if not Path(ref).is_file():
        raise BadInput(f"{ref}: no such model id or weights file")
    return ref


def cmd_prelabel(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import ingest, jobstate, prelabel

    if not args.model.isdigit():
        raise BadInput("prelabel takes a registered model id (see the Models page or `python -m app jobs`)")
    video = ingest.get_video(args.video)
    params = prelabel.prelabel_params(int(args.model), args.video, conf=args.conf, create_classes=args.create_classes)
    queue = _queue_for_wait(args, make_queue)
    job_id = jobstate.submit(queue, "prelabel", params, project_id=video["project_id"], author=args.user)
    if not args.wait:
        _note_if_no_worker(queue)
    job = _wait(args, queue, job_id) if args.wait else {"state": "queued"}
    _emit(args, {"job": job_id, "status": job["state"], "result": job.get("result"), "error": job.get("error")},
          f"prelabel {job_id}: {job['state']}")
    return 0 if job["state"] in ("done", "queued") else 1


def cmd_export_model(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import jobstate, modelexport, registry

    if not args.model.isdigit():
        raise BadInput("export-model takes a registered model id")
    model = registry.get_model(int(args.model))
    params = modelexport.export_params(model["id"], args.format)
    queue = _queue_for_wait(args, make_queue)
    job_id = jobstate.submit(queue, "export_model", params, project_id=model["project_id"], author=args.user)
    job = _wait(args, queue, job_id)
    if job["state"] != "done":
        raise JobFailed(f"export of model {model['id']} to {args.format} {job['state']}: {job.get('error')}")
    artifact = Path((job.get("result") or {}).get("zip") or (job.get("result") or {}).get("path") or "")
    if not artifact.is_file():
        raise JobFailed(f"export finished but wrote no file: {job.get('result')}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact, out)
    _emit(args, {"model": model["id"], "format": args.format, "out": str(out), "bytes": out.stat().st_size},
          f"wrote {out}")
    return 0


def cmd_user(args: argparse.Namespace, make_queue: QueueFactory) -> int:
    from app import auth

    if args.action == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
        if not password:
            raise BadInput("give the password with --password-stdin (or --password)")
        auth.add_user(args.name, password, role=args.role)
        _emit(args, {"user": args.name, "role": args.role}, f"user {args.name!r} saved ({args.role})")
    elif args.action == "remove":
        auth.remove_user(args.name)
        _emit(args, {"removed": args.name}, f"user {args.name!r} removed")
    else:
        users = auth.list_users()
        _emit(args, {"users": users}, "\n".join(f"{u['name']} ({u['role']})" for u in users) or "no users: login is off")
    return 0


# ---------------------------------------------------------------- parser

class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr, like the core's (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m app", description="tpod: label video, train and use detectors.")
    parser.add_argument("--user", default=os.environ.get("USER") or "cli", help="author recorded for changes")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        p.set_defaults(fn=fn)
        return p

    p = add("serve", cmd_serve, "start the web app and a worker (Ctrl-C stops both)")
    p.add_argument("--port", type=int)
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--no-worker", action="store_true", help="start the web app only")
    p.add_argument("--threads", type=int, help="worker threads (TPOD_WORKER_THREADS)")

    p = add("worker", cmd_worker, "run a worker on the queue (more workers may share a Redis queue)")
    p.add_argument("--threads", type=int, help="worker threads (TPOD_WORKER_THREADS)")

    p = add("project", cmd_project, "create, list or delete projects")
    p.add_argument("action", choices=["create", "list", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("--classes", help="comma-separated class names (create)")
    p.add_argument("--yes", action="store_true", help="confirm delete")

    p = add("ingest", cmd_ingest, "ingest videos, images or zips of images into a project (waits)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--project", required=True, help="project name (created if missing)")
    p.add_argument("--stride", type=int, default=1, help="keep every Nth frame")
    p.add_argument("--max-side", type=int, help="max working resolution (longest side, pixels)")
    p.add_argument("--start", type=float, help="start time in seconds")
    p.add_argument("--end", type=float, help="end time in seconds")

    p = add("import", cmd_import, "import annotations (folder or zip) into a project")
    p.add_argument("path")
    p.add_argument("--project", required=True)
    p.add_argument("--format", required=True, choices=["coco", "yolo", "cvat", "voc"])
    p.add_argument("--video", type=int, help="import onto this video (frames matched by index)")
    p.add_argument("--no-create-classes", action="store_true", help="refuse unknown classes")

    p = add("export", cmd_export, "export a project or a dataset version as a zip")
    p.add_argument("--project", required=True)
    p.add_argument("--version", help="dataset version name or id")
    p.add_argument("--format", required=True, choices=["yolo", "coco", "voc", "cvat-video"])
    p.add_argument("--out", required=True)

    p = add("stats", cmd_stats, "dataset health statistics of a project")
    p.add_argument("--project", required=True)

    p = add("version", cmd_version, "create or list frozen dataset versions")
    p.add_argument("action", choices=["create", "list"])
    p.add_argument("--project", required=True)
    p.add_argument("--name")
    p.add_argument("--split", choices=["video", "blocks"], default="blocks")
    p.add_argument("--val", type=float, default=0.2)
    p.add_argument("--test", type=float, default=0.0)
    p.add_argument("--every", type=int, default=1, help="every Nth labeled frame")
    p.add_argument("--dedupe", type=int, help="drop near-duplicates within this perceptual-hash distance")
    p.add_argument("--include-empty", action="store_true")

    p = add("train", cmd_train, "train a detector on a dataset version")
    p.add_argument("--project", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--model", default="yolo26n", help="yolo26n|yolo11s|...|NAME.yaml|PATH.pt")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=-1)
    p.add_argument("--patience", type=int, default=50)
    p.add_argument("--device", default=None, help="auto|cpu|0|0,1 (default TPOD_DEVICE)")
    p.add_argument("--scratch", action="store_true", help="train from scratch (no pretrained weights)")
    p.add_argument("--wait", action="store_true", help="wait for the run to finish")

    p = add("jobs", cmd_jobs, "list background jobs and workers")
    p.add_argument("--limit", type=int, default=50)

    p = add("cancel", cmd_cancel, "cancel a job (or a training run by id)")
    p.add_argument("job")

    p = add("predict", cmd_predict, "run a model on an image or a video")
    p.add_argument("model", help="model id or weights path")
    p.add_argument("path")
    p.add_argument("--conf", type=float, default=0.25)

    p = add("prelabel", cmd_prelabel, "pre-label a video with a model (boxes stored as predicted)")
    p.add_argument("model", help="model id")
    p.add_argument("--video", type=int, required=True)
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--create-classes", action="store_true")
    p.add_argument("--wait", action="store_true")

    p = add("export-model", cmd_export_model, "export a model for download")
    p.add_argument("model", help="model id")
    p.add_argument("--format", required=True, choices=["pt", "onnx", "torchscript"])
    p.add_argument("--out", required=True)

    p = add("user", cmd_user, "manage login users (login is on once a user exists)")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", choices=["admin", "annotator"], default="annotator")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--password")
    return parser


def main(argv: list[str] | None, make_queue: QueueFactory) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command in ("project", "user") and args.action in ("create", "delete", "add", "remove") and not args.name:
        parser.error(f"{args.command} {args.action} needs a NAME")
    if args.command == "version" and args.action == "create" and not args.name:
        parser.error("version create needs --name")
    try:
        return args.fn(args, make_queue)
    except TpodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        from app.store.db import release

        release()
