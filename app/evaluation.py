"""Evaluate a registered model on a dataset version's val or test split (Ultralytics val).

The result holds plain numbers and arrays (overall and per-class precision/recall/AP, a
precision-recall curve per class, the confusion matrix) so the app draws its own charts: no
Matplotlib plots, no fonts. `record_evaluation` appends it to models.metrics["evaluations"].
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from app.errors import BadInput, NotFound
from app.store.db import connect

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SPLITS = ("val", "test")
CURVE_POINTS = 101  # Ultralytics samples curves at 1000 points; a chart needs far fewer
CONFUSION_CONF = 0.25  # detections below this do not count in the confusion matrix (Ultralytics' default)
CONFUSION_IOU = 0.45


def _yaml_names(data: dict[str, Any]) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    return [str(n) for n in names or []]


def evaluation_params(model_id: int, version_id: int, split: str = "val", *, imgsz: int | None = None,
                      device: str | None = None) -> dict[str, Any]:
    """Checked, JSON-able params for an "evaluate" job (for app.jobstate.submit)."""
    from app.datasets import get_version, version_data_yaml
    from app.prelabel import model_class_names
    from app.registry import get_model

    if split not in SPLITS:
        raise BadInput(f"split {split!r}: use one of {', '.join(SPLITS)}")
    model = get_model(int(model_id))
    version = get_version(int(version_id))
    if not Path(model["path"]).is_file():
        raise NotFound(f"model {model['name']!r}: weights file {model['path']} is missing")
    data_yaml = version_data_yaml(int(version_id))
    try:
        data = yaml.safe_load(data_yaml.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"dataset version {version['name']!r}: cannot read {data_yaml} ({exc})") from None
    if not isinstance(data, dict) or not data.get(split):
        raise BadInput(f"dataset version {version['name']!r} has no {split} split")
    model_names, data_names = model_class_names(model), _yaml_names(data)
    if model_names != data_names:
        raise BadInput(f"model {model['name']!r} knows classes [{', '.join(model_names)}] but version "
                       f"{version['name']!r} has [{', '.join(data_names)}]: evaluate on a version with the same classes")
    params = model.get("params") or {}
    return {"model_id": int(model_id), "model_path": str(model["path"]), "version_id": int(version_id),
            "version_name": version["name"], "data_yaml": str(data_yaml), "split": split,
            "imgsz": int(imgsz or params.get("imgsz") or 640), "device": device}


def _validator_class() -> type:
    """Ultralytics' detection validator, also filling the confusion matrix when plots are off
    (it only does so for its Matplotlib plots)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    class Validator(DetectionValidator):
        def update_metrics(self, preds: Any, batch: Any) -> None:
            super().update_metrics(preds, batch)
            if self.args.plots:
                return
            for si, pred in enumerate(preds):
                self.confusion_matrix.process_batch(self._prepare_pred(pred), self._prepare_batch(si, batch),
                                                    conf=CONFUSION_CONF, iou_thres=CONFUSION_IOU)

    return Validator


def _f(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(v) else round(v, 6)


def _summarise(metrics: Any, names: list[str]) -> dict[str, Any]:
    box = metrics.box
    precision, recall, map50, map50_95 = (_f(v) for v in box.mean_results())
    instances = np.asarray(getattr(metrics, "nt_per_class", None) if getattr(metrics, "nt_per_class", None)
                           is not None else np.zeros(len(names)))
    per_class: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        per_class[name] = {"precision": None, "recall": None, "ap50": None, "ap50_95": None,
                           "instances": int(instances[i]) if i < len(instances) else 0}
    for k, c in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(k)
        per_class[names[int(c)]].update(precision=_f(p), recall=_f(r), ap50=_f(ap50), ap50_95=_f(ap))
    px = np.asarray(box.px) if len(getattr(box, "px", [])) else np.linspace(0, 1, 1000)
    pick = np.linspace(0, len(px) - 1, CURVE_POINTS).round().astype(int)
    prec = np.asarray(box.prec_values) if len(getattr(box, "prec_values", [])) else np.zeros((0, len(px)))
    pr_curve = {"recall": [round(float(x), 4) for x in px[pick]], "precision": {}}
    for k, c in enumerate(box.ap_class_index):
        if k < len(prec):
            pr_curve["precision"][names[int(c)]] = [round(float(y), 4) for y in prec[k][pick]]
    cm = getattr(metrics, "confusion_matrix", None)
    matrix = np.asarray(cm.matrix).astype(int).tolist() if cm is not None else []
    return {
        "precision": precision, "recall": recall, "map50": map50, "map50_95": map50_95,
        "per_class": per_class, "pr_curve": pr_curve,
        # matrix[predicted][true]; the last row/column is "background" (missed or spurious boxes)
        "confusion": {"labels": [*names, "background"], "matrix": matrix, "conf": CONFUSION_CONF,
                      "iou": CONFUSION_IOU},
        "instances": int(instances.sum()),
    }


def run_evaluation(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Worker side: Ultralytics val of the model on the version's split; returns plain metrics."""
    from app.predict import prepare_yolo

    data_dir = Path(ctx.data_dir)
    prepare_yolo(data_dir)
    from app.predict import check_weights_file, pick_device

    path = Path(params["model_path"])
    check_weights_file(path)
    from ultralytics import YOLO

    ctx.report(done=0, total=1, message=f"evaluating on {params['split']}")
    model = YOLO(str(path), task="detect")
    names = [str(model.names[i]) for i in sorted(model.names)]
    state = {"batches": 0, "seen": 0}

    def on_batch(validator: Any) -> None:
        state["batches"] += 1
        state["seen"] = int(getattr(validator, "seen", 0) or 0)
        total = len(validator.dataloader) if getattr(validator, "dataloader", None) is not None else 0
        ctx.report(done=state["batches"], total=max(total, state["batches"]),
                   message=f"batch {state['batches']} of {total}")

    model.add_callback("on_val_batch_end", on_batch)
    save_dir = data_dir / "evaluations" / str(ctx.job_id)
    started = time.monotonic()
    try:
        metrics = model.val(data=str(params["data_yaml"]), split=params["split"], imgsz=int(params["imgsz"]),
                            batch=8, device=pick_device(params.get("device")), workers=0, plots=False,
                            verbose=False, project=str(save_dir.parent), name=save_dir.name, exist_ok=True,
                            validator=_validator_class())
    except FileNotFoundError as exc:
        raise BadInput(f"dataset files for {params['data_yaml']} are missing: {exc}") from None
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)
    result = _summarise(metrics, names)
    result.update(model_id=params.get("model_id"), version_id=params.get("version_id"),
                  version_name=params.get("version_name"), split=params["split"], imgsz=int(params["imgsz"]),
                  images=state["seen"],
                  seconds=round(time.monotonic() - started, 2))
    ctx.report(done=1, total=1, message=f"mAP50 {result['map50']}")
    return result


def record_evaluation(job: dict[str, Any], result: dict[str, Any]) -> None:
    """Append the evaluation to the model's metrics["evaluations"] (newest last)."""
    from app.store import prelabel as sql

    model_id = int(job["params"]["model_id"])
    entry = {**result, "job_id": job.get("id"), "by": job.get("created_by"),
             "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with connect() as cur:
        if not sql.append_model_json(cur, model_id, "metrics", "evaluations", entry):
            raise NotFound(f"model {model_id} was deleted before its evaluation was recorded")


def evaluations(model: dict[str, Any]) -> list[dict[str, Any]]:
    """A model row's recorded evaluations, newest first."""
    items = (model.get("metrics") or {}).get("evaluations") or []
    return list(reversed([e for e in items if isinstance(e, dict)]))


def pr_frame(evaluation: dict[str, Any]) -> pd.DataFrame:
    """The PR curves of an evaluation as long rows (class, recall, precision) for a chart."""
    import pandas as pd

    curve = evaluation.get("pr_curve") or {}
    recall = curve.get("recall") or []
    rows = [(name, r, p) for name, values in (curve.get("precision") or {}).items()
            for r, p in zip(recall, values, strict=True)]
    return pd.DataFrame(rows, columns=["class", "recall", "precision"])


def confusion_frame(evaluation: dict[str, Any]) -> pd.DataFrame:
    """The confusion matrix as long rows (predicted, actual, count, share of the actual class)."""
    import pandas as pd

    cm = evaluation.get("confusion") or {}
    labels, matrix = cm.get("labels") or [], np.asarray(cm.get("matrix") or [], dtype=float)
    if matrix.size == 0:
        return pd.DataFrame(columns=["predicted", "actual", "count", "share"])
    totals = matrix.sum(axis=0)
    rows = [(labels[i], labels[j], int(matrix[i, j]), float(matrix[i, j] / totals[j]) if totals[j] else 0.0)
            for i in range(len(labels)) for j in range(len(labels))]
    return pd.DataFrame(rows, columns=["predicted", "actual", "count", "share"])


def per_class_frame(evaluation: dict[str, Any]) -> pd.DataFrame:
    """Per-class precision / recall / AP50 / AP50-95 / instances of an evaluation."""
    import pandas as pd

    per = evaluation.get("per_class") or {}
    return pd.DataFrame([{"class": k, **v} for k, v in per.items()],
                        columns=["class", "precision", "recall", "ap50", "ap50_95", "instances"])
