"""Evaluating the tiny real model on a dataset version's val and test splits."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import BadInput
from app.evaluation import evaluation_params, evaluations, record_evaluation, run_evaluation
from app.jobctx import LocalContext
from app.projects import create_project
from app.registry import get_model
from app.store.db import connect
from tests._tiny_model import IMGSZ, TEST_FRAMES, VAL_FRAMES, add_model_row, build_dataset, tiny_model


@pytest.fixture(scope="module")
def weights() -> Path:
    return tiny_model()


def _version(project_id: int, data_dir: Path, name: str = "v1") -> int:
    """A dataset version row and its files where app.datasets puts them (versions/<project>/<id>)."""
    with connect() as cur:
        vid = int(cur.execute(
            "INSERT INTO dataset_versions (project_id, name, classes) VALUES (?, ?, ?) RETURNING id",
            [project_id, name, json.dumps([{"name": "person"}])]).fetchone()[0])
        root = data_dir / "versions" / str(project_id) / str(vid)
        build_dataset(root)
        cur.execute("UPDATE dataset_versions SET path = ? WHERE id = ?", [str(root), vid])
    return vid


def test_evaluate_val_and_test_then_record(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    version_id = _version(project.id, data_dir)
    model_id = add_model_row(project.id, weights, ["person"], version_id=version_id)

    for split, frames in (("val", VAL_FRAMES), ("test", TEST_FRAMES)):
        params = evaluation_params(model_id, version_id, split)
        assert params["imgsz"] == IMGSZ
        ctx = LocalContext(f"eval-{split}")
        result = json.loads(json.dumps(run_evaluation(params, ctx)))  # JSON-able
        assert result["split"] == split and result["images"] == len(frames)
        assert result["instances"] == len(frames)  # one pedestrian per frame
        for key in ("precision", "recall", "map50", "map50_95"):
            assert result[key] is None or 0.0 <= result[key] <= 1.0
        person = result["per_class"]["person"]
        assert person["instances"] == len(frames)
        curve = result["pr_curve"]
        assert len(curve["recall"]) == 101 and len(curve["precision"]["person"]) == 101
        cm = result["confusion"]
        assert cm["labels"] == ["person", "background"]
        # every ground-truth person lands in its column: found as person, or missed (background row)
        assert len(cm["matrix"]) == 2 and sum(row[0] for row in cm["matrix"]) == len(frames)
        assert ctx.reports[-1]["done"] == ctx.reports[-1]["total"]
        assert not (data_dir / "evaluations" / f"eval-{split}").exists()
        record_evaluation({"id": f"eval-{split}", "params": params, "created_by": "tester"}, result)

    model = get_model(model_id)
    recorded = evaluations(model)
    assert [e["split"] for e in recorded] == ["test", "val"]  # newest first
    assert recorded[0]["job_id"] == "eval-test" and recorded[0]["by"] == "tester"
    assert model["metrics"]["mAP50"] == 0.1  # what training stored is kept


def test_evaluation_refuses_bad_requests(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    version_id = _version(project.id, data_dir)
    model_id = add_model_row(project.id, weights, ["person"])
    with pytest.raises(BadInput, match="split 'train'"):
        evaluation_params(model_id, version_id, "train")
    other = add_model_row(project.id, weights, ["car"], name="cars")
    with pytest.raises(BadInput, match=r"knows classes \[car\] but version 'v1' has \[person\]"):
        evaluation_params(other, version_id, "val")
    (data_dir / "versions" / str(project.id) / str(version_id) / "data.yaml").write_text("path: x\ntrain: images/train\nval: images/val\n"
                                                            "names:\n  0: person\n")
    with pytest.raises(BadInput, match="no test split"):
        evaluation_params(model_id, version_id, "test")
