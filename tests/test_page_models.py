"""AppTest smoke test of the Models page: overview charts, evaluate/pre-label/export jobs queued, preview."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import jobstate, registry
from app.evaluation import record_evaluation
from app.projects import create_project
from app.store.db import connect
from tests._tiny_model import add_model_row, build_dataset, make_video, tiny_model

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "models.py")


@pytest.fixture(scope="module")
def weights() -> Path:
    return tiny_model()


def _app(project_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["project_id"] = project_id
    return at


def _evaluation() -> dict:
    return {"split": "val", "version_name": "v1", "precision": 0.5, "recall": 0.25, "map50": 0.3, "map50_95": 0.1,
            "per_class": {"person": {"precision": 0.5, "recall": 0.25, "ap50": 0.3, "ap50_95": 0.1, "instances": 8}},
            "pr_curve": {"recall": [0.0, 0.5, 1.0], "precision": {"person": [1.0, 0.5, 0.0]}},
            "confusion": {"labels": ["person", "background"], "matrix": [[2, 1], [6, 0]], "conf": 0.25}}


def test_no_model_yet(data_dir: Path) -> None:
    project = create_project("empty")
    at = _app(project.id).run()
    assert not at.exception, at.exception
    assert any("No model in this project yet" in i.value for i in at.info)
    assert any("uploading weights is turned off" in i.value for i in at.info)


def test_models_page_tabs_and_jobs(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    with connect() as cur:
        version_id = int(cur.execute("INSERT INTO dataset_versions (project_id, name, classes) VALUES (?, 'v1', ?) "
                                     "RETURNING id", [project.id, json.dumps([{"name": "person"}])]).fetchone()[0])
        root = data_dir / "versions" / str(project.id) / str(version_id)
        build_dataset(root)
        cur.execute("UPDATE dataset_versions SET path = ? WHERE id = ?", [str(root), version_id])
    first = add_model_row(project.id, weights, ["person"], name="first", version_id=version_id)
    second = add_model_row(project.id, weights, ["person"], name="second", version_id=version_id)
    record_evaluation({"id": "e1", "params": {"model_id": second}, "created_by": "t"}, _evaluation())
    vid = make_video(project.id, frames=list(range(12)))

    at = _app(project.id).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="models.model").value == second  # newest first
    assert [t.label for t in at.tabs] == ["Overview", "Evaluate", "Preview", "Pre-label", "Export", "Compare"]
    assert [m.label for m in at.metric][:4] == ["Precision", "Recall", "mAP50", "mAP50-95"]
    assert at.selectbox(key="models.eval_pick") is not None  # the recorded evaluation is listed
    for key in ("models.eval_start", "models.preview_go", "models.pre_start", "models.export_go"):
        assert at.button(key=key) is not None
    assert at.selectbox(key="models.cmp_a").value != at.selectbox(key="models.cmp_b").value

    at.button(key="models.eval_start").click().run()
    assert not at.exception, at.exception
    at.selectbox(key="models.pre_video").set_value(vid)
    at.button(key="models.pre_start").click().run()
    assert not at.exception, at.exception
    at.selectbox(key="models.export_format").set_value("onnx")
    at.button(key="models.export_go").click().run()
    assert not at.exception, at.exception
    jobs = {j["kind"]: j for j in jobstate.list_jobs(project_id=project.id)}
    assert set(jobs) == {"evaluate", "prelabel", "export_model"}  # queued, no worker here
    assert jobs["prelabel"]["params"]["video_id"] == vid and jobs["evaluate"]["params"]["split"] == "val"
    assert jobs["export_model"]["params"]["format"] == "onnx"

    # preview runs in the page (tiny model, a few frames) and shows an H.264 clip
    at.selectbox(key="models.preview_video").set_value(vid)
    at.slider(key=f"models.preview_range.{vid}").set_value((0, 5))
    at.button(key="models.preview_go").click().run()
    assert not at.exception, at.exception
    assert at.session_state["models.preview_out"]["kind"] == "video"
    assert at.session_state["models.preview_out"]["frames"] == 5
    assert any("boxes over 5 frames" in c.value for c in at.caption)
    assert Path(at.session_state["models.preview_out"]["path"]).stat().st_size > 0

    # delete needs the confirmation box ticked
    at.selectbox(key="models.model").set_value(first).run()
    assert at.button(key=f"models.delete.{first}").disabled
    at.checkbox(key=f"models.delete_sure.{first}").check().run()
    at.button(key=f"models.delete.{first}").click().run()
    assert not at.exception, at.exception
    assert [m["id"] for m in registry.list_models(project.id)] == [second]
