"""AppTest smoke test of the Train page: form, start (queued, no worker), live block, cancel, run details."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import registry
from app.projects import create_project
from app.store.db import release
from tests.test_registry import add_version

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "train.py")


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "data"
    monkeypatch.setenv("TPOD_DATA_DIR", str(d))
    for var in ("TPOD_REDIS_URL", "TPOD_QUEUE", "TPOD_USERS_FILE"):
        monkeypatch.delenv(var, raising=False)
    # The web process's reconciler thread would outlive the test and can abort the interpreter
    # when it is inside DuckDB at exit; the page reconciles its own job through job_status.
    monkeypatch.setattr("app.jobstate.Reconciler.start", lambda self: self)
    release()
    yield d
    release()


def _app(project_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project_id
    at.session_state["train.pretrained"] = False  # no network lookup in the smoke test
    return at


def test_without_versions_the_page_says_what_to_do(data_dir: Path) -> None:
    project = create_project("empty")
    at = _app(project.id).run()
    assert not at.exception, at.exception
    assert any("No dataset version yet" in i.value for i in at.info)
    assert any("No training runs" in i.value for i in at.info)


def test_start_then_cancel_a_queued_run(data_dir: Path) -> None:
    project = create_project("p", ["person"])
    add_version(data_dir, project.id, "v1", train=2, val=1)
    at = _app(project.id).run()
    assert not at.exception, at.exception
    for key in ("train.version", "train.model", "train.imgsz", "train.device"):
        assert at.selectbox(key=key) is not None
    assert at.selectbox(key="train.model").value == "yolo26n"
    assert at.toggle(key="train.pretrained").value is False
    assert any("from scratch" in i.value for i in at.info)
    assert at.number_input(key="train.hyp.lr0").value == pytest.approx(0.01)

    at.number_input(key="train.epochs").set_value(3)
    at.button(key="train.start").click().run()
    assert not at.exception, at.exception
    runs = registry.list_runs(project.id)
    assert len(runs) == 1 and runs[0]["state"] == "queued" and runs[0]["params"]["epochs"] == 3
    run_id = runs[0]["id"]
    assert any(f"Run {run_id} queued" in s.value for s in at.success)
    assert at.button(key=f"train.cancel.{run_id}") is not None
    assert any(m.label == "Epoch" and m.value == "0/3" for m in at.metric)

    at.button(key=f"train.cancel.{run_id}").click().run()
    assert not at.exception, at.exception
    assert registry.get_run(run_id)["state"] == "cancelled"


def test_finished_run_shows_metrics_and_per_class_ap(data_dir: Path) -> None:
    project = create_project("done", ["person"])
    version_id = add_version(data_dir, project.id, "v1", train=2, val=1)
    run_id, params = registry.create_run(project.id, version_id, "yolo11n", {"pretrained": False, "epochs": 2})
    weights = Path(params["run_dir"]) / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights stand-in: the page only lists it")
    history = [{"epoch": e, "train_box_loss": 2.0 / e, "val_box_loss": 2.1 / e, "precision": 0.3 * e,
                "recall": 0.2 * e, "map50": 0.25 * e, "map50_95": 0.1 * e} for e in (1, 2)]
    result = {"state": "done", "weights": str(weights), "metrics": {"precision": 0.6, "recall": 0.4, "map50": 0.5,
              "map50_95": 0.2}, "per_class_ap": {"person": 0.2}, "history": history, "classes": ["person"],
              "epochs_done": 2, "device": "cpu", "elapsed_s": 12.0}
    job = {"id": "j", "kind": "train", "project_id": project.id, "params": params, "created_by": "ann"}
    model_id = registry.record_training(job, result)

    at = _app(project.id).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="train.details").value == run_id
    assert any(m.label == "mAP50-95" and m.value == "0.200" for m in at.metric)
    assert at.button(key=f"train.delete.{model_id}") is not None
    at.button(key=f"train.delete.{model_id}").click().run()
    assert not at.exception, at.exception
    assert registry.list_models(project.id) == []
