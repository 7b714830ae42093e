"""Training runs and the model registry: create a run, train it for real (tiny), record, list, delete."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import registry
from app.errors import BadInput, NotFound
from app.jobctx import LocalContext
from app.projects import create_project
from app.store.db import connect, release
from app.training import run_training
from tests.test_training import build_yolo_dataset

SETTINGS = {"pretrained": False, "epochs": 1, "imgsz": 64, "batch": 4, "patience": 0, "device": "cpu",
            "hyp": {"mosaic": 0.0, "warmup_epochs": 0.0}}


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "data"
    monkeypatch.setenv("TPOD_DATA_DIR", str(d))
    release()
    yield d
    release()


def add_version(data_dir: Path, project_id: int, name: str, files: bool = True, **layout: int) -> int:
    """A dataset version as app.datasets leaves it: a row, and versions/<project>/<id>/data.yaml."""
    with connect() as cur:
        row = cur.execute(
            "INSERT INTO dataset_versions (project_id, name, classes) VALUES (?, ?, ?) RETURNING id",
            [project_id, name, json.dumps([{"index": 0, "name": "person"}])],
        ).fetchone()
        version_id = int(row[0])
        if files:
            root = data_dir / "versions" / str(project_id) / str(version_id)
            build_yolo_dataset(root, **layout)
            cur.execute("UPDATE dataset_versions SET path = ? WHERE id = ?", [str(root), version_id])
    return version_id


def version_root(data_dir: Path, project_id: int, version_id: int) -> Path:
    return data_dir / "versions" / str(project_id) / str(version_id)


def job_of(run_id: int, params: dict, project_id: int) -> dict:
    return {"id": f"job{run_id}", "kind": "train", "project_id": project_id, "params": params, "created_by": "ann"}


def test_run_is_trained_recorded_listed_and_deleted(data_dir: Path) -> None:
    project = create_project("reg", ["person"])
    version_id = add_version(data_dir, project.id, "v1", train=4, val=2)
    root = version_root(data_dir, project.id, version_id)

    run_id, params = registry.create_run(project.id, version_id, "yolo26n", SETTINGS, author="ann")
    assert params["run_dir"] == str(data_dir / "runs" / str(run_id))
    assert params["data_yaml"] == str(root / "data.yaml") and params["epochs"] == 1
    assert registry.list_runs(project.id)[0]["state"] == "queued"

    ctx = LocalContext("job1")
    result = run_training(params, ctx)
    registry.update_run_progress(run_id, ctx.reports[-2])
    assert registry.get_run(run_id)["state"] == "running"
    model_id = registry.record_training(job_of(run_id, params, project.id), result)

    run = registry.list_runs(project.id)[0]
    assert (run["id"], run["state"], run["model_id"]) == (run_id, "done", model_id)
    assert len(run["history"]) == 1 and run["finished_at"] is not None
    models = registry.list_models(project.id)
    assert [m["id"] for m in models] == [model_id]
    model = registry.get_model(model_id)
    assert model["arch"] == "yolo26n" and model["classes"] == ["person"] and model["version_name"] == "v1"
    assert Path(model["path"]).is_file() and Path(model["path"]).is_relative_to(data_dir / "runs" / str(run_id))
    assert set(model["metrics"]) >= {"precision", "recall", "map50", "map50_95", "per_class_ap", "history"}
    assert model["params"]["epochs"] == 1 and model["params"]["imgsz"] == 64
    # recording twice (a retried reconcile) registers nothing new
    assert registry.record_training(job_of(run_id, params, project.id), result) == model_id
    assert len(registry.list_models(project.id)) == 1

    registry.delete_model(model_id)
    assert registry.list_models(project.id) == []
    assert not (data_dir / "runs" / str(run_id)).exists()
    with pytest.raises(NotFound):
        registry.get_model(model_id)


def test_failed_run_keeps_no_files(data_dir: Path) -> None:
    project = create_project("fail", ["person"])
    version_id = add_version(data_dir, project.id, "v", train=2, val=1)
    run_id, params = registry.create_run(project.id, version_id, "yolo11n.yaml", SETTINGS)
    half_written = Path(params["run_dir"]) / "weights"
    half_written.mkdir(parents=True)
    (half_written / "last.pt").write_bytes(b"partial")

    registry.fail_training(job_of(run_id, params, project.id), "GPU out of memory: use a smaller batch")
    run = registry.get_run(run_id)
    assert run["state"] == "failed" and "out of memory" in run["error"]
    assert not Path(params["run_dir"]).exists()
    assert registry.list_models(project.id) == []

    run2, params2 = registry.create_run(project.id, version_id, "yolo11n", SETTINGS)
    registry.fail_training(job_of(run2, params2, project.id), "cancelled before it started")
    assert registry.get_run(run2)["state"] == "cancelled" and registry.get_run(run2)["error"] is None


@pytest.mark.parametrize("case, error, message", [
    ("no_val", BadInput, "no validation images"),
    ("no_files", NotFound, "no data.yaml"),
    ("other_project", NotFound, "no dataset version"),
    ("bad_epochs", BadInput, "epochs"),
    ("offline_pretrained", BadInput, "train from scratch"),
])
def test_create_run_refuses(data_dir: Path, monkeypatch: pytest.MonkeyPatch, case: str, error: type,
                            message: str) -> None:
    project = create_project("refuse", ["person"])
    other = create_project("other")
    version_id = add_version(data_dir, project.id, "v", train=2, val=1)
    root = version_root(data_dir, project.id, version_id)
    project_id, model, settings = project.id, "yolo26n", dict(SETTINGS)
    if case == "no_val":
        shutil.rmtree(root / "images" / "val")
    elif case == "no_files":
        version_id = add_version(data_dir, project.id, "empty", files=False)
    elif case == "other_project":
        project_id = other.id
    elif case == "bad_epochs":
        settings["epochs"] = 0
    elif case == "offline_pretrained":
        monkeypatch.setattr("app.weights.is_online", lambda *a, **k: False)
        settings["pretrained"] = True
    with pytest.raises(error, match=message):
        registry.create_run(project_id, version_id, model, settings)
    assert all(r["project_id"] != project.id or r["state"] == "queued" for r in registry.list_runs())
    assert registry.list_runs(project.id) == []
