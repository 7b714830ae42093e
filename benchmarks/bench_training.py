"""Overhead of app.training.run_training (checks, callbacks, progress, cancel polls) over a bare
`YOLO(...).train(...)` with the same dataset and settings, measured in the same process.

    .venv/bin/python benchmarks/bench_training.py [--quick] [--device cpu|0] [--repeat N]

Prints both wall times (best of N, runs interleaved) and the ratio; the goal is <= 1.05x.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OTB = ROOT.parent / "shared" / "data" / "otb_crossing"
sys.path.insert(0, str(ROOT))


def build_dataset(root: Path, n_train: int, n_val: int) -> Path:
    rows = [line.replace(",", "\t").split() for line in (OTB / "groundtruth_rect.txt").read_text().splitlines()]
    frames = list(range(1, 121))[:: max(1, 120 // (n_train + n_val))][: n_train + n_val]
    for n, frame in enumerate(frames):
        split = "train" if n < n_train else "val"
        for sub in ("images", "labels"):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OTB / "img" / f"{frame:04d}.jpg", root / "images" / split / f"{frame:04d}.jpg")
        x, y, w, h = (float(v) for v in rows[frame - 1])
        (root / "labels" / split / f"{frame:04d}.txt").write_text(
            f"0 {(x + w / 2) / 360:.6f} {(y + h / 2) / 240:.6f} {w / 360:.6f} {h / 240:.6f}\n")
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"path": str(root), "train": "images/train", "val": "images/val", "names": {0: "person"}}))
    return root / "data.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 epoch, 12 images, imgsz 96")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    epochs, n_train, n_val, imgsz = (1, 8, 4, 96) if args.quick else (3, 32, 8, 160)
    batch = 4 if args.device == "cpu" else 16

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ["TPOD_DATA_DIR"] = str(tmp / "data")
    from app.jobctx import LocalContext
    from app.training import run_training
    from app.weights import configure_ultralytics, prepare_offline

    data_dir = tmp / "data"
    prepare_offline(data_dir)  # both contenders run offline, with the same fonts and settings
    from ultralytics import YOLO

    configure_ultralytics(data_dir)
    data_yaml = build_dataset(data_dir / "versions" / "bench", n_train, n_val)
    hyp = {"mosaic": 0.0, "warmup_epochs": 0.0}
    common = dict(epochs=epochs, imgsz=imgsz, batch=batch, patience=0, seed=0, **hyp)

    def bare(i: int) -> float:
        t = time.perf_counter()
        YOLO("yolo26n.yaml").train(data=str(data_yaml), device=args.device, workers=0,
                                   project=str(data_dir / "bare"), name=str(i), exist_ok=True,
                                   plots=False, verbose=False, **common)
        return time.perf_counter() - t

    def ours(i: int) -> float:
        params = {"run_id": i, "data_yaml": str(data_yaml), "model": "yolo26n.yaml", "pretrained": False,
                  "device": args.device, "run_dir": str(data_dir / "runs" / str(i)), "hyp": hyp,
                  **{k: common[k] for k in ("epochs", "imgsz", "batch", "patience")}}
        t = time.perf_counter()
        result = run_training(params, LocalContext(str(i)))
        assert result["state"] == "done", result
        return time.perf_counter() - t

    bare(-1)  # warm-up: imports, first-time caches
    times_bare, times_ours = [], []
    for i in range(args.repeat):
        times_bare.append(bare(i))
        times_ours.append(ours(i))
    b, o = min(times_bare), min(times_ours)
    print(f"dataset: {n_train} train / {n_val} val images, {epochs} epoch(s), imgsz {imgsz}, batch {batch}, "
          f"device {args.device}, best of {args.repeat}")
    print(f"bare YOLO.train : {b:7.2f} s   (all: {', '.join(f'{t:.2f}' for t in times_bare)})")
    print(f"run_training    : {o:7.2f} s   (all: {', '.join(f'{t:.2f}' for t in times_ours)})")
    print(f"ratio           : {o / b:7.3f}x  (goal <= 1.05x)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
