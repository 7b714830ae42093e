"""Training runs and the model registry, web side (DuckDB through app/store/registry.py).

A run is created here with everything the worker needs in its params (the dataset version's
data.yaml, the run dir under data/runs/<run_id>/); the worker (app.training.run_training)
never opens DuckDB. When its job ends, app.jobstate calls `record_training` (done, or
cancelled with weights: a model is registered) or `fail_training` (the run is marked failed
and its half-written files are removed).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from app.errors import BadInput, NotFound
from app.settings import get_settings
from app.store import registry as sql
from app.store.db import connect
from app.training import clean_params, dataset_summary
from app.weights import resolve_model

log = logging.getLogger(__name__)

TERMINAL = ("done", "failed", "cancelled")
METRIC_KEYS = ("precision", "recall", "map50", "map50_95")


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return path.resolve() != root.resolve()


def create_run(project_id: int, version_id: int, model: str, settings: dict[str, Any],
               author: str | None = None, job_id: str | None = None) -> tuple[int, dict[str, Any]]:
    """Register a queued training run and build its job params.

    `settings` holds pretrained, epochs, imgsz, batch, patience, device and hyp (see
    app.training.DEFAULTS). Refuses a version without files, without training boxes or without
    validation images, and a model whose pretrained weights cannot be had here.
    """
    with connect() as cur:
        version = sql.version_row(cur, version_id)
    if version is None or version["project_id"] != project_id:
        raise NotFound(f"no dataset version {version_id} in project {project_id}")
    from app.datasets import version_data_yaml

    data_yaml = version_data_yaml(version_id)  # also repoints `path` if the data dir moved
    dataset_summary(data_yaml)
    settings = {k: v for k, v in (settings or {}).items()
                if k not in ("run_id", "data_yaml", "model", "run_dir")}
    placeholder = {"run_id": 0, "data_yaml": str(data_yaml), "model": model, "run_dir": "-"}
    checked = clean_params({**placeholder, **settings})
    choice = resolve_model(model, checked["pretrained"])
    if not choice["ok"]:
        raise BadInput(choice["message"])
    runs_dir = get_settings().runs_dir
    with connect() as cur:
        cur.execute("BEGIN")
        try:
            run_id = sql.insert_run(cur, project_id, version_id, choice["name"], checked, author)
            run_dir = runs_dir / str(run_id)
            params = {**checked, "run_id": run_id, "run_dir": str(run_dir), "version_id": version_id,
                      "project_id": project_id, "weights_plan": choice["message"]}
            sql.set_run_start(cur, run_id, params, str(run_dir), job_id)
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
    return run_id, params


def start_training(queue: Any, project_id: int, version_id: int, model: str, settings: dict[str, Any],
                   author: str | None = None) -> tuple[int, str]:
    """create_run, then submit the "train" job. Returns (run_id, job_id)."""
    from app.jobstate import new_job_id, submit

    job_id = new_job_id()
    run_id, params = create_run(project_id, version_id, model, settings, author, job_id=job_id)
    submit(queue, "train", params, project_id=project_id, author=author, job_id=job_id)
    return run_id, job_id


def _run_id(job: dict[str, Any]) -> int:
    try:
        return int(job["params"]["run_id"])
    except (KeyError, TypeError, ValueError):
        raise NotFound(f"job {job.get('id')} names no training run") from None


def record_training(job: dict[str, Any], result: dict[str, Any]) -> int | None:
    """Store a finished (or cancelled) run; register its weights as a model. Returns the model id."""
    run_id = _run_id(job)
    state = "cancelled" if result.get("state") == "cancelled" else "done"
    weights = result.get("weights")
    if weights and not Path(weights).is_file():
        raise NotFound(f"weights {weights} of run {run_id} are not visible here: "
                       "does the worker share this data dir?")
    with connect() as cur:
        run = sql.run_by_id(cur, run_id)
        if run is None:
            raise NotFound(f"no training run {run_id}")
        cur.execute("BEGIN")
        try:
            sql.finish_run(cur, run_id, state, result.get("history"), None)
            model_id = sql.model_for_run(cur, run_id)
            if weights and model_id is None:
                metrics = {**{k: (result.get("metrics") or {}).get(k) for k in METRIC_KEYS},
                           "per_class_ap": result.get("per_class_ap") or {},
                           "history": result.get("history") or [],
                           "epochs_done": result.get("epochs_done"), "state": state,
                           "early_stopped": result.get("early_stopped", False),
                           "elapsed_s": result.get("elapsed_s"), "device": result.get("device"),
                           "last": result.get("last"), "dataset": result.get("dataset")}
                arch = result.get("arch") or run["model_arch"]
                name = f"{run['version_name'] or 'v' + str(run['version_id'])}-{arch}-run{run_id}"
                if state == "cancelled":
                    name += "-partial"
                settings = {k: v for k, v in (run["params"] or {}).items() if k not in ("data_yaml",)}
                model_id = sql.insert_model(cur, run["project_id"], run_id, run["version_id"], name, arch,
                                            str(weights), list(result.get("classes") or []), metrics, settings)
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
    return model_id


def fail_training(job: dict[str, Any], error: str) -> None:
    """Mark the run failed (or cancelled, before it started) and remove its half-written files."""
    run_id = _run_id(job)
    state = "cancelled" if str(error).lower().startswith("cancelled") else "failed"
    with connect() as cur:
        run = sql.run_by_id(cur, run_id)
        if run is None:
            return
        sql.finish_run(cur, run_id, state, None, None if state == "cancelled" else str(error))
        has_model = sql.model_for_run(cur, run_id) is not None
    run_dir = Path(run["run_dir"]) if run["run_dir"] else None
    if run_dir is not None and not has_model and _under(run_dir, get_settings().runs_dir):
        shutil.rmtree(run_dir, ignore_errors=True)


def update_run_progress(run_id: int, progress: dict[str, Any]) -> None:
    """Keep the history so far on the run row (the page calls this as reports arrive)."""
    state = progress.get("state")
    state = "running" if state not in ("queued",) else "queued"
    with connect() as cur:
        sql.set_run_progress(cur, run_id, state, progress.get("history"))


def _live(run: dict[str, Any]) -> dict[str, Any]:
    """Fold the job's live state into a run that is not recorded yet."""
    if run["state"] not in TERMINAL and run.get("job_state"):
        run["state"] = run["job_state"] if run["job_state"] in ("queued", "running") else "finishing"
        run["progress"] = run.get("job_progress") or {}
        live = run["progress"].get("history") or []
        if len(live) > len(run.get("history") or []):
            run["history"] = live
    else:
        run["progress"] = None
    run["history"] = run.get("history") or []
    return run


def list_runs(project_id: int | None = None) -> list[dict[str, Any]]:
    """Training runs, newest first, with live state and progress of the active ones."""
    with connect() as cur:
        return [_live(r) for r in sql.runs(cur, project_id)]


def get_run(run_id: int) -> dict[str, Any]:
    with connect() as cur:
        run = sql.run_by_id(cur, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    return _live(run)


def list_models(project_id: int) -> list[dict[str, Any]]:
    """Registered models of a project, newest first (metrics hold per-class AP and history)."""
    with connect() as cur:
        return sql.models(cur, project_id)


def get_model(model_id: int) -> dict[str, Any]:
    """One registered model: id, project_id, run_id, version_id, name, arch, path, classes, metrics, params."""
    with connect() as cur:
        model = sql.model_by_id(cur, model_id)
    if model is None:
        raise NotFound(f"no model {model_id}")
    return model


def delete_model(model_id: int) -> None:
    """Delete a model and its run's files under data/runs/ (the run row and its history stay)."""
    with connect() as cur:
        model = sql.model_by_id(cur, model_id)
        if model is None:
            raise NotFound(f"no model {model_id}")
        shared = sql.models_sharing_path(cur, model["path"], model_id)
        run = sql.run_by_id(cur, model["run_id"]) if model["run_id"] is not None else None
        sql.delete_model(cur, model_id)
    if shared or run is None or not run["run_dir"]:
        return
    run_dir = Path(run["run_dir"])
    if _under(run_dir, get_settings().runs_dir):
        shutil.rmtree(run_dir, ignore_errors=True)
