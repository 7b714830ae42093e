"""Train an Ultralytics YOLO detector on a materialised dataset version (worker side).

`run_training(params, ctx)` reads only the version's files (an Ultralytics layout whose
data.yaml holds an absolute `path`), never DuckDB. It reports honest live progress through
`ctx.report` (each report carries the whole per-epoch history, because the web side only keeps
the latest one), honours cancel between batches while keeping the best weights so far, and
returns a JSON-able result that app.registry.record_training stores.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from app.errors import BadInput, JobFailed
from app.weights import configure_ultralytics, download_weights, prepare_offline, resolve_model

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

# Hyperparameters a user may set: (min, max, Ultralytics default, what it does).
HYPERPARAMETERS: dict[str, tuple[float, float, float, str]] = {
    "lr0": (1e-6, 1.0, 0.01, "initial learning rate (setting it or momentum switches the optimizer to SGD)"),
    "lrf": (1e-4, 1.0, 0.01, "final learning rate as a fraction of lr0"),
    "momentum": (0.0, 0.999, 0.937, "SGD momentum"),
    "weight_decay": (0.0, 0.1, 0.0005, "L2 weight decay"),
    "warmup_epochs": (0.0, 20.0, 3.0, "epochs of learning-rate warm-up"),
    "mosaic": (0.0, 1.0, 1.0, "probability of 4-image mosaic augmentation"),
    "fliplr": (0.0, 1.0, 0.5, "probability of a horizontal flip"),
    "hsv_h": (0.0, 1.0, 0.015, "hue jitter (fraction)"),
    "hsv_s": (0.0, 1.0, 0.7, "saturation jitter (fraction)"),
    "hsv_v": (0.0, 1.0, 0.4, "brightness jitter (fraction)"),
    "degrees": (0.0, 180.0, 0.0, "rotation range (+/- degrees)"),
    "scale": (0.0, 0.95, 0.5, "scale jitter (+/- gain)"),
    "translate": (0.0, 0.9, 0.1, "translation jitter (+/- fraction)"),
}
# Ultralytics' optimizer=auto ignores lr0 and momentum: a user who sets them gets SGD, which uses both.
SGD_KEYS = ("lr0", "momentum")
DEFAULTS: dict[str, Any] = {"pretrained": True, "epochs": 50, "imgsz": 640, "batch": -1, "patience": 20,
                            "device": "auto", "hyp": {}}
CPU_BATCH = 8  # "auto" batch on CPU: AutoBatch measures CUDA memory only
REPORT_EVERY_S = 1.0  # batch-level reports; epoch ends always report
STOP_POLL_S = 0.5  # a cancel check may hit the queue's storage: not on every batch
GPU_WORKERS = 4  # dataloader processes on CUDA; on CPU Ultralytics forces 0


# ---------------------------------------------------------------------------- dataset checks


def _split_paths(root: Path, value: Any) -> list[Path]:
    if value is None or value == "" or value == []:
        return []
    items = value if isinstance(value, list) else [value]
    return [p if p.is_absolute() else root / p for p in (Path(str(v)) for v in items)]


def _images_in(paths: list[Path]) -> list[Path]:
    images: list[Path] = []
    for p in paths:
        if p.is_dir():
            images += [f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS]
        elif p.is_file() and p.suffix == ".txt":
            base = p.parent
            for line in p.read_text().splitlines():
                line = line.strip()
                if line:
                    f = Path(line)
                    images.append(f if f.is_absolute() else base / f)
    return images


def _label_of(image: Path) -> Path:
    # Ultralytics' rule (data/utils.img2label_paths): last /images/ -> /labels/, suffix -> .txt
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    s = str(image)
    if sa in s:
        s = sb.join(s.rsplit(sa, 1))
    return Path(s).with_suffix(".txt")


def _box_count(images: list[Path]) -> int:
    n = 0
    for img in images:
        try:
            n += sum(1 for line in _label_of(img).read_text().splitlines() if line.strip())
        except OSError:
            continue
    return n


def dataset_summary(data_yaml: str | Path) -> dict[str, Any]:
    """Count images and boxes of an Ultralytics dataset from its files (no torch, no DuckDB).

    Raises BadInput when the data.yaml is missing or unreadable, when there are no training
    images or no boxes to learn from, or when the validation split is empty.
    """
    path = Path(data_yaml)
    if not path.is_file():
        raise BadInput(f"dataset file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path} is not a data.yaml mapping")
    root = Path(str(data.get("path") or path.parent))
    if not root.is_absolute():
        root = path.parent / root
    names = data.get("names") or []
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    names = [str(n) for n in names]
    if not names:
        raise BadInput(f"{path} names no classes")
    train = _images_in(_split_paths(root, data.get("train")))
    val = _images_in(_split_paths(root, data.get("val")))
    if not train:
        raise BadInput(f"the dataset at {root} has no training images")
    train_boxes = _box_count(train)
    if train_boxes == 0:
        raise BadInput(f"the dataset at {root} has no boxes in its training images: nothing to learn")
    if not val:
        raise BadInput(f"the dataset at {root} has no validation images: make a version with a val split")
    return {"path": str(root), "names": names, "train_images": len(train), "val_images": len(val),
            "train_boxes": train_boxes, "val_boxes": _box_count(val)}


# ---------------------------------------------------------------------------- params


def _number(params: dict[str, Any], key: str, kind: type, lo: float, hi: float) -> Any:
    raw = params.get(key, DEFAULTS.get(key))
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise BadInput(f"{key}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise BadInput(f"{key}={value} must be between {lo} and {hi}")
    return value


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validated training params with defaults filled in (both sides call this)."""
    p = {**DEFAULTS, **params}
    for key in ("run_id", "data_yaml", "model", "run_dir"):
        if p.get(key) in (None, ""):
            raise BadInput(f"training params lack {key!r}")
    p["epochs"] = _number(p, "epochs", int, 1, 10000)
    p["imgsz"] = _number(p, "imgsz", int, 32, 4096)
    p["batch"] = _number(p, "batch", int, -1, 1024)
    if p["batch"] == 0:
        raise BadInput("batch=0: use -1 for automatic, or a positive batch size")
    p["patience"] = _number(p, "patience", int, 0, 10000)
    p["pretrained"] = bool(p["pretrained"])
    device = str(p.get("device") or "auto").strip().lower()
    if device not in ("auto", "cpu") and not all(part.strip().isdigit() for part in device.split(",")):
        raise BadInput(f"device={device!r}: use auto, cpu, or a CUDA index such as 0")
    p["device"] = device
    hyp = dict(p.get("hyp") or {})
    for key in hyp:
        if key not in HYPERPARAMETERS:
            raise BadInput(f"unknown hyperparameter {key!r}: use {', '.join(HYPERPARAMETERS)}")
        hyp[key] = _number(hyp, key, float, *HYPERPARAMETERS[key][:2])
    p["hyp"] = hyp
    return p


def _pick_device(requested: str) -> str:
    import torch

    if requested == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        if requested == "auto":
            return "cpu"
        raise BadInput(f"device {requested!r} asked for, but this worker has no CUDA GPU: use auto or cpu")
    if requested == "auto":
        return "0"
    count = torch.cuda.device_count()
    for part in requested.split(","):
        if int(part) >= count:
            raise BadInput(f"device {part} asked for, but this worker has {count} CUDA GPU(s)")
    return requested


# ---------------------------------------------------------------------------- progress


def _short(key: str) -> str:
    # "metrics/mAP50-95(B)" -> "map50_95", "train/box_loss" -> "train_box_loss"
    table = {"metrics/precision(B)": "precision", "metrics/recall(B)": "recall",
             "metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50_95"}
    return table.get(key) or key.replace("/", "_").replace("-", "_").lower()


def _round(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return round(v, 5) if math.isfinite(v) else None


class _Progress:
    """Ultralytics callbacks that turn trainer state into ctx.report payloads and obey cancel."""

    def __init__(self, ctx: Any, epochs: int, device: str, started: float) -> None:
        self.ctx = ctx
        self.epochs = epochs
        self.device = device
        self.started = started
        self.train_started: float | None = None
        self.history: list[dict[str, Any]] = []
        self.epoch_open = False  # on_train_epoch_end seen, on_fit_epoch_end pending
        self.batch = 0
        self.batches = 0
        self.losses: dict[str, float | None] = {}
        self.last_report = 0.0
        self.last_poll = 0.0
        self.cancelled = False
        self.final_metrics: dict[str, float | None] = {}
        self.per_class_ap: dict[str, float | None] = {}
        self.batch_size: int | None = None

    # -- helpers
    def _gpu_mem_gb(self) -> float | None:
        if self.device == "cpu":
            return None
        import torch

        return round(torch.cuda.memory_reserved() / 2**30, 2) if torch.cuda.is_available() else None

    def _poll_stop(self, trainer: Any, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_poll < STOP_POLL_S:
            return
        self.last_poll = now
        if self.cancelled or self.ctx.should_stop():
            if not self.cancelled:
                log.info("training cancel requested; stopping after this batch")
            self.cancelled = True
            trainer.stop = True

    def send(self, state: str, epoch: int, message: str = "", **extra: Any) -> None:
        now = time.time()
        fraction = 0.0
        if self.batches:
            fraction = min(1.0, (len(self.history) + self.batch / self.batches) / self.epochs)
        elapsed_train = now - self.train_started if self.train_started else 0.0
        eta = elapsed_train * (1 - fraction) / fraction if fraction > 0.0 else None
        self.ctx.report(
            state=state, done=round(fraction * self.epochs, 3), total=self.epochs,
            message=message or state, epoch=epoch, epochs=self.epochs, batch=self.batch,
            batches=self.batches, losses=dict(self.losses), history=list(self.history),
            elapsed_s=round(now - self.started, 1), eta_s=None if eta is None else round(eta, 1),
            gpu_mem_gb=self._gpu_mem_gb(), device=self.device, cancelling=self.cancelled, **extra,
        )
        self.last_report = time.monotonic()

    # -- Ultralytics events
    def on_pretrain_routine_end(self, trainer: Any) -> None:
        # _setup_train resets trainer.stop just before this event: re-apply a pending cancel.
        self.batch_size = int(getattr(trainer, "batch_size", 0) or 0) or None
        self._poll_stop(trainer, force=True)
        self.send("training", 1, f"starting epoch 1/{self.epochs}", batch_size=self.batch_size)

    def on_train_start(self, trainer: Any) -> None:
        self.train_started = time.time()

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.batch = 0
        self.batches = len(trainer.train_loader)

    def on_train_batch_end(self, trainer: Any) -> None:
        self.batch += 1
        if trainer.tloss:
            self.losses = {k.split("/", 1)[1]: _round(v)
                           for k, v in trainer.label_loss_items(trainer.tloss, prefix="train").items()}
        first = self.batch == 1
        if first or time.monotonic() - self.last_report >= REPORT_EVERY_S:
            epoch = trainer.epoch + 1
            self.send("training", epoch, f"epoch {epoch}/{self.epochs} · batch {self.batch}/{self.batches}")
        self._poll_stop(trainer, force=first)

    def on_train_epoch_end(self, trainer: Any) -> None:
        self.epoch_open = True
        if self.batch < self.batches:
            self.send("validating", trainer.epoch + 1, "cancelled: validating the partial epoch")
        else:
            self.send("validating", trainer.epoch + 1, f"epoch {trainer.epoch + 1}/{self.epochs} · validating")

    def on_fit_epoch_end(self, trainer: Any) -> None:
        metrics = {_short(k): _round(v) for k, v in (trainer.metrics or {}).items()}
        if not self.epoch_open:
            # The extra call after the loop: final validation of best.pt, not a new epoch.
            self.final_metrics = {k: metrics.get(k) for k in ("precision", "recall", "map50", "map50_95")}
            self.per_class_ap = _per_class_ap(trainer)
            return
        self.epoch_open = False
        entry: dict[str, Any] = {"epoch": trainer.epoch + 1}
        entry.update({f"train_{k}": v for k, v in self.losses.items()})
        entry.update(metrics)
        entry["lr"] = _round(next(iter((getattr(trainer, "lr", None) or {}).values()), None))
        entry["time_s"] = _round(getattr(trainer, "epoch_time", None))
        entry["partial"] = self.batch < self.batches
        self.history.append(entry)
        self.batch = 0  # progress is now whole epochs; ETA must not count this one twice
        self.send("training", trainer.epoch + 1,
                  f"epoch {trainer.epoch + 1}/{self.epochs} done · mAP50-95 {entry.get('map50_95')}")

    def attach(self, model: Any) -> None:
        for event in ("on_pretrain_routine_end", "on_train_start", "on_train_epoch_start",
                      "on_train_batch_end", "on_train_epoch_end", "on_fit_epoch_end"):
            model.add_callback(event, getattr(self, event))


def _per_class_ap(trainer: Any) -> dict[str, float | None]:
    try:
        box = trainer.validator.metrics.box
        names = trainer.validator.names
        return {str(names[int(c)]): _round(ap) for c, ap in zip(box.ap_class_index, box.ap, strict=False)}
    except (AttributeError, IndexError, KeyError, TypeError):
        return {}


@contextlib.contextmanager
def _no_amp_download(device: str) -> Iterator[None]:
    """On CUDA Ultralytics checks AMP by loading yolo26n.pt, downloading it when missing; offline
    that can stall for minutes. Without the file here, skip the check the way Ultralytics does
    when its download fails: keep AMP on."""
    if device == "cpu":
        yield
        return
    import ultralytics.engine.trainer as trainer_module
    from ultralytics.utils import WEIGHTS_DIR

    from app.weights import is_online

    if (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file() or is_online():
        yield
        return
    original = trainer_module.check_amp

    def check_amp_offline(model: Any) -> bool:
        log.warning("AMP check skipped: yolo26n.pt is not in %s and the release host is unreachable", WEIGHTS_DIR)
        return True

    trainer_module.check_amp = check_amp_offline
    try:
        yield
    finally:
        trainer_module.check_amp = original


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "out of memory" in text or "cublas_status_alloc_failed" in text


# ---------------------------------------------------------------------------- the job


def run_training(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Train YOLO on a materialised dataset version; see the module docstring for the contract.

    Returns {"state": "done"|"cancelled", "weights", "last", "metrics", "per_class_ap",
    "history", "classes", "epochs_done", "device", "elapsed_s", ...}.
    """
    started = time.time()
    p = clean_params(params)
    summary = dataset_summary(p["data_yaml"])  # refuse bad data before paying for torch
    data_dir = Path(ctx.data_dir)
    run_dir = Path(p["run_dir"])
    base = {"run_id": p["run_id"], "classes": summary["names"], "run_dir": str(run_dir), "model": p["model"]}
    if ctx.should_stop():
        return {**base, "state": "cancelled", "weights": None, "last": None, "metrics": {}, "per_class_ap": {},
                "history": [], "epochs_done": 0, "device": None, "elapsed_s": round(time.time() - started, 1)}
    ctx.report(state="preparing", done=0, total=p["epochs"], message="loading Ultralytics", epoch=0,
               epochs=p["epochs"], history=[])
    prepare_offline(data_dir)
    import torch
    from ultralytics import YOLO

    configure_ultralytics(data_dir)
    device = _pick_device(p["device"])
    choice = resolve_model(p["model"], p["pretrained"], data_dir)
    if not choice["ok"]:
        raise BadInput(choice["message"])
    if choice["source"] == "download":
        ctx.report(state="preparing", done=0, total=p["epochs"], message=f"downloading {choice['name']}.pt",
                   epoch=0, epochs=p["epochs"], history=[])
        download_weights(choice["name"], data_dir)

    batch = p["batch"]
    if batch == -1 and device == "cpu":
        batch = CPU_BATCH
    progress = _Progress(ctx, p["epochs"], "cpu" if device == "cpu" else f"cuda:{device}", started)
    model = YOLO(choice["load"])
    progress.attach(model)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    train_args = dict(
        data=str(p["data_yaml"]), epochs=p["epochs"], imgsz=p["imgsz"], batch=batch, patience=p["patience"],
        device=device, workers=0 if device == "cpu" else min(GPU_WORKERS, os.cpu_count() or 1),
        project=str(run_dir.parent), name=run_dir.name, exist_ok=True, plots=False, verbose=False,
        seed=0, **p["hyp"],
    )
    if any(k in p["hyp"] for k in SGD_KEYS):
        train_args["optimizer"] = "SGD"
    log.info("training run %s: %s on %s, %s", p["run_id"], choice["load"], device, train_args)
    try:
        with _no_amp_download(device):
            model.train(**train_args)
    except RuntimeError as exc:
        if _is_oom(exc):
            raise JobFailed(
                f"GPU out of memory training {choice['name']} at batch={batch}, imgsz={p['imgsz']}: "
                "use a smaller batch (or auto) or a smaller image size"
            ) from exc
        raise
    finally:
        trainer = getattr(model, "trainer", None)
        save_dir = Path(trainer.save_dir) if trainer is not None else run_dir
        model = None
        if device != "cpu" and torch.cuda.is_available():
            torch.cuda.empty_cache()  # a long-lived worker hands the GPU to the next job

    best, last = save_dir / "weights" / "best.pt", save_dir / "weights" / "last.pt"
    weights = best if best.is_file() else last if last.is_file() else None
    final = progress.final_metrics or {
        k: (progress.history[-1].get(k) if progress.history else None)
        for k in ("precision", "recall", "map50", "map50_95")
    }
    epochs_done = sum(1 for h in progress.history if not h.get("partial"))
    state = "cancelled" if progress.cancelled else "done"
    result = {
        **base, "state": state, "weights": str(weights) if weights else None,
        "last": str(last) if last.is_file() else None, "metrics": final, "per_class_ap": progress.per_class_ap,
        "history": progress.history, "epochs_done": epochs_done,
        "early_stopped": state == "done" and epochs_done < p["epochs"],
        "device": progress.device, "batch": progress.batch_size or batch, "imgsz": p["imgsz"],
        "arch": choice["name"], "weights_source": choice["source"], "elapsed_s": round(time.time() - started, 1),
        "dataset": {k: summary[k] for k in ("train_images", "val_images", "train_boxes", "val_boxes")},
    }
    progress.send(state, len(progress.history), f"{state}: {epochs_done}/{p['epochs']} epochs", final=True,
                  metrics=final)
    return result
