"""A tiny real YOLO detector trained on OTB "Crossing" (class "person"), shared by the model tests.

Trained once per content hash and cached under /tmp so repeated test runs skip training. Also
builds a tiny Ultralytics dataset (data.yaml with val and test splits) for evaluation tests, and
a frame store + video rows for the OTB clip, as the ingest job would leave them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OTB = DATA / "otb_crossing"
ARCH = "yolo26n.yaml"
IMGSZ = 128
EPOCHS = 12
TRAIN_FRAMES = list(range(0, 120, 5))  # 24 frames
VAL_FRAMES = list(range(2, 120, 15))
TEST_FRAMES = list(range(7, 120, 20))
_VERSION = "1"


def otb_gt() -> list[tuple[float, float, float, float]]:
    """OTB ground truth as xyxy per frame (0-based)."""
    rows = []
    for line in (OTB / "groundtruth_rect.txt").read_text().split("\n"):
        if line.strip():
            x, y, w, h = (float(v) for v in line.replace(",", "\t").split())
            rows.append((x, y, x + w, y + h))
    return rows


def otb_frame(i: int) -> Path:
    return OTB / "img" / f"{i + 1:04d}.jpg"


def build_dataset(root: Path) -> Path:
    """A YOLO dataset of OTB frames (train/val/test), returns its data.yaml."""
    gt = otb_gt()
    for split, idxs in (("train", TRAIN_FRAMES), ("val", VAL_FRAMES), ("test", TEST_FRAMES)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in idxs:
            shutil.copyfile(otb_frame(i), root / "images" / split / f"{i:04d}.jpg")
            x1, y1, x2, y2 = gt[i]
            W, H = 360.0, 240.0
            (root / "labels" / split / f"{i:04d}.txt").write_text(
                f"0 {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}\n")
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n  0: person\n")
    return yaml


def _key() -> str:
    import ultralytics

    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(ultralytics.__version__.encode())
    for i in TRAIN_FRAMES:
        h.update(otb_frame(i).read_bytes())
    return h.hexdigest()[:16]


def tiny_model() -> Path:
    """Path of the cached tiny model (best.pt), training it first if needed (~30-60 s on CPU)."""
    from app.predict import prepare_yolo

    cache = Path(tempfile.gettempdir()) / "tpod_tiny_model" / f"{_key()}"
    weights = cache / "best.pt"
    if weights.exists():
        return weights
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tiny_train_", dir=cache))
    prepare_yolo(work)
    from ultralytics import YOLO

    data = build_dataset(work / "ds")
    model = YOLO(ARCH)
    model.train(data=str(data), epochs=EPOCHS, imgsz=IMGSZ, batch=8, device="cpu", workers=0, plots=False,
                amp=False, val=False, project=str(work), name="run", exist_ok=True, verbose=False, seed=0,
                mosaic=0.0, deterministic=True, pretrained=False)
    best = work / "run" / "weights" / "last.pt"
    tmp = cache / f"best.{os.getpid()}.pt"
    shutil.copyfile(best, tmp)
    tmp.replace(weights)
    shutil.rmtree(work, ignore_errors=True)
    return weights


def make_video(project_id: int, name: str = "crossing", frames: list[int] | None = None,
               work_scale: float = 1.0) -> int:
    """Insert a ready video with OTB frames into the current data dir (as an ingest would).

    `work_scale` < 1 stores frames downscaled, to check that boxes come back in original pixels.
    """
    from app import framestore
    from app.store.db import connect

    frames = list(range(120)) if frames is None else frames
    W, H = 360, 240
    ww, wh = int(round(W * work_scale)), int(round(H * work_scale))
    with connect() as cur:
        vid = cur.execute(
            "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count, duration, codec, "
            "work_width, work_height) VALUES (?, ?, 'ready', ?, ?, 30.0, ?, ?, 'h264', ?, ?) RETURNING id",
            [project_id, name, W, H, len(frames), len(frames) / 30.0, ww, wh]).fetchone()[0]
        for k, i in enumerate(frames):
            cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts, width, height) VALUES (?, ?, ?, ?, ?, ?)",
                        [vid, k, i, i / 30.0, W, H])
    vdir = framestore.video_dir(vid)
    (vdir / "frames").mkdir(parents=True, exist_ok=True)
    for k, i in enumerate(frames):
        img = cv2.imread(str(otb_frame(i)))
        if work_scale != 1.0:
            img = cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(framestore.frame_file(vid, k)), img)
    (vdir / "meta.json").write_text(json.dumps({
        "width": W, "height": H, "work_width": ww, "work_height": wh, "fps": 30.0,
        "frames": [[i, i / 30.0] for i in frames]}))
    return int(vid)


def add_model_row(project_id: int, path: Path, classes: list[str], name: str = "tiny",
                  version_id: int | None = None) -> int:
    """A models row as the training recorder would write it."""
    from app.store.db import connect

    with connect() as cur:
        return int(cur.execute(
            "INSERT INTO models (project_id, version_id, name, arch, path, classes, metrics, params) "
            "VALUES (?, ?, ?, 'yolo26n', ?, ?, ?, ?) RETURNING id",
            [project_id, version_id, name, str(path), json.dumps(classes),
             json.dumps({"mAP50": 0.1, "mAP50-95": 0.05}), json.dumps({"imgsz": IMGSZ, "epochs": EPOCHS})],
        ).fetchone()[0])
