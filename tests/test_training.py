"""Real, tiny YOLO training on CPU: a few OTB Crossing frames, one epoch, a model YAML."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from app.errors import BadInput
from app.jobctx import LocalContext
from app.training import clean_params, dataset_summary, run_training
from app.weights import MODELS, install_fonts, resolve_model, ultralytics_env

OTB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "otb_crossing"
SCRATCH = "yolo26n.yaml"


def build_yolo_dataset(root: Path, train: int = 8, val: int = 4, names: tuple[str, ...] = ("person",)) -> Path:
    """OTB Crossing frames with their ground-truth box as class 0, in the Ultralytics layout."""
    rows = [line.replace(",", "\t").split() for line in (OTB / "groundtruth_rect.txt").read_text().splitlines()]
    frames = list(range(1, 120, 120 // (train + val)))[: train + val]
    for n, frame in enumerate(frames):
        split = "train" if n < train else "val"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OTB / "img" / f"{frame:04d}.jpg", root / "images" / split / f"{frame:04d}.jpg")
        x, y, w, h = (float(v) for v in rows[frame - 1])
        cx, cy = (x + w / 2) / 360, (y + h / 2) / 240
        (root / "labels" / split / f"{frame:04d}.txt").write_text(f"0 {cx:.6f} {cy:.6f} {w / 360:.6f} {h / 240:.6f}\n")
    data = {"path": str(root.resolve()), "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TPOD_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def params_for(data_yaml: Path, run_dir: Path, **over: object) -> dict:
    return {"run_id": 1, "data_yaml": str(data_yaml), "model": SCRATCH, "pretrained": False, "epochs": 1,
            "imgsz": 96, "batch": 4, "patience": 0, "device": "cpu", "run_dir": str(run_dir),
            "hyp": {"mosaic": 0.0, "warmup_epochs": 0.0}, **over}


def test_train_one_epoch_reports_progress_and_weights_predict(data_dir: Path) -> None:
    data_yaml = build_yolo_dataset(data_dir / "versions" / "1")
    ctx = LocalContext("t1")
    result = run_training(params_for(data_yaml, data_dir / "runs" / "1"), ctx)

    assert result["state"] == "done"
    assert result["epochs_done"] == 1 and len(result["history"]) == 1  # final re-validation not counted
    assert result["classes"] == ["person"] and result["device"] == "cpu"
    assert set(result["metrics"]) == {"precision", "recall", "map50", "map50_95"}
    states = [r["state"] for r in ctx.reports]
    assert states[0] == "preparing" and "training" in states and states[-1] == "done"
    batch_reports = [r for r in ctx.reports if r["state"] == "training" and r.get("batch")]
    assert batch_reports and batch_reports[0]["epoch"] == 1 and batch_reports[0]["epochs"] == 1
    assert batch_reports[0]["batches"] == 2 and "box_loss" in batch_reports[0]["losses"]
    epoch_report = [r for r in ctx.reports if r["history"]][0]
    assert epoch_report["history"][0]["epoch"] == 1 and "map50_95" in epoch_report["history"][0]
    assert ctx.reports[-1]["done"] == 1 and ctx.reports[-1]["eta_s"] == 0
    # nothing reached for the network: the font came from the local TTF
    assert (data_dir / "ultralytics" / "Ultralytics" / "Arial.ttf").is_file()

    from ultralytics import YOLO

    weights = Path(result["weights"])
    assert weights.is_file() and weights.parent.parent == data_dir / "runs" / "1"
    model = YOLO(str(weights))
    assert model.names == {0: "person"}
    preds = model.predict(str(OTB / "img" / "0001.jpg"), imgsz=96, conf=0.0, verbose=False)
    assert preds[0].orig_shape == (240, 360)


def test_cancel_after_first_batch_keeps_weights(data_dir: Path) -> None:
    data_yaml = build_yolo_dataset(data_dir / "versions" / "1", train=12, val=2)

    class CancelAfterFirstBatch(LocalContext):
        def report(self, **progress: object) -> None:
            super().report(**progress)
            if progress.get("batch"):
                self.stop_requested = True

    ctx = CancelAfterFirstBatch("t2")
    result = run_training(params_for(data_yaml, data_dir / "runs" / "2", epochs=3, batch=2), ctx)

    assert result["state"] == "cancelled"
    assert result["epochs_done"] == 0 and result["history"][0]["partial"] is True
    assert Path(result["weights"]).is_file()
    assert max(r.get("batch", 0) for r in ctx.reports) < 6  # stopped well inside epoch 1 of 3
    assert ctx.reports[-1]["state"] == "cancelled"


def test_cancel_before_start_returns_without_training(data_dir: Path) -> None:
    data_yaml = build_yolo_dataset(data_dir / "versions" / "1", train=2, val=1)
    ctx = LocalContext("t3")
    ctx.stop_requested = True
    result = run_training(params_for(data_yaml, data_dir / "runs" / "3"), ctx)
    assert result["state"] == "cancelled" and result["weights"] is None


@pytest.mark.parametrize("case, message", [
    ("no_train_images", "no training images"),
    ("no_val_images", "no validation images"),
    ("no_boxes", "no boxes"),
    ("missing_yaml", "does not exist"),
])
def test_bad_datasets_are_refused_before_torch(data_dir: Path, case: str, message: str) -> None:
    root = data_dir / "versions" / "9"
    data_yaml = build_yolo_dataset(root, train=2, val=1)
    if case == "no_train_images":
        shutil.rmtree(root / "images" / "train")
    elif case == "no_val_images":
        shutil.rmtree(root / "images" / "val")
    elif case == "no_boxes":
        for f in (root / "labels" / "train").iterdir():
            f.write_text("")
    elif case == "missing_yaml":
        data_yaml.unlink()
    with pytest.raises(BadInput, match=message):
        run_training(params_for(data_yaml, data_dir / "runs" / "9"), LocalContext())


def test_dataset_summary_counts(data_dir: Path) -> None:
    summary = dataset_summary(build_yolo_dataset(data_dir / "v", train=3, val=2))
    assert (summary["train_images"], summary["val_images"], summary["train_boxes"]) == (3, 2, 3)


@pytest.mark.parametrize("over, message", [
    ({"epochs": 0}, "epochs"), ({"batch": 0}, "batch=0"), ({"device": "gpu"}, "device"),
    ({"hyp": {"lr9": 1}}, "unknown hyperparameter"), ({"hyp": {"mosaic": 2}}, "mosaic"),
])
def test_bad_params(over: dict, message: str) -> None:
    base = {"run_id": 1, "data_yaml": "x", "model": "yolo26n", "run_dir": "r"}
    with pytest.raises(BadInput, match=message):
        clean_params({**base, **over})


def test_resolve_model_sources(data_dir: Path) -> None:
    assert MODELS[0] == "yolo26n"
    scratch = resolve_model("yolo11n", pretrained=False)
    assert (scratch["source"], scratch["load"], scratch["ok"]) == ("scratch", "yolo11n.yaml", True)
    assert resolve_model("yolo26s.yaml", pretrained=True)["source"] == "scratch"
    offline = resolve_model("yolo26n", pretrained=True, check_online=False)
    assert offline["source"] == "unavailable" and not offline["ok"] and "yolo26n.yaml" in offline["message"]
    local = data_dir / "weights" / "yolo26n.pt"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"stand-in")
    assert resolve_model("yolo26n", pretrained=True)["source"] == "local"
    assert resolve_model(str(local), pretrained=True)["source"] == "file"
    with pytest.raises(BadInput, match="unknown model"):
        resolve_model("resnet50", pretrained=True)


def test_ultralytics_env_and_fonts(data_dir: Path) -> None:
    env = ultralytics_env(data_dir)
    assert env["YOLO_OFFLINE"] == "1" and env["YOLO_AUTOINSTALL"] == "false"
    assert env["YOLO_CONFIG_DIR"] == str(data_dir / "ultralytics")
    assert install_fonts(data_dir / "fonts")
    assert (data_dir / "fonts" / "Arial.ttf").stat().st_size > 10000
