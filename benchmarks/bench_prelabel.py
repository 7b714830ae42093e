"""Pre-label throughput on CPU against a bare Ultralytics predict loop, and ONNX export time.

    .venv/bin/python benchmarks/bench_prelabel.py [--quick] [--frames N] [--imgsz 640] [--device cpu]

Model: yolo26n built from its YAML (random weights: speed does not depend on training). Frames:
OpenCV's vtest.avi (768x576) in a scratch frame store. The baseline is what a user would write
by hand: read each JPEG with cv2 and call model.predict on it, one frame at a time. The ratio
says what tpod's job adds or saves (batched predict, box conversion, track linking, Parquet).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VIDEO = ROOT.parent / "shared" / "data" / "opencv_vtest" / "vtest.avi"


def make_store(data_dir: Path, n: int) -> int:
    """A frame store (video id 1) with the first n frames of vtest.avi, as ingest lays it out."""
    import cv2

    from app import framestore

    cap = cv2.VideoCapture(str(VIDEO))
    (framestore.video_dir(1, data_dir) / "frames").mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        ok, img = cap.read()
        if not ok:
            break
        cv2.imwrite(str(framestore.frame_file(1, i, data_dir)), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append([i, i / 10.0])
        h, w = img.shape[:2]
    cap.release()
    (framestore.video_dir(1, data_dir) / "meta.json").write_text(json.dumps(
        {"width": w, "height": h, "work_width": w, "work_height": h, "fps": 10.0, "frames": frames}))
    return len(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="16 frames instead of 64")
    ap.add_argument("--frames", type=int)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--conf", type=float, default=0.25, help="random weights give no box at 0.25; "
                    "try 0.001 to load the linker")
    args = ap.parse_args()
    n = args.frames or (16 if args.quick else 64)

    data_dir = Path(tempfile.mkdtemp(prefix="bench_prelabel_"))
    os.environ["TPOD_DATA_DIR"] = str(data_dir)
    from app.predict import prepare_yolo

    prepare_yolo(data_dir)
    import cv2
    import torch
    from ultralytics import YOLO

    from app import framestore
    from app.jobctx import LocalContext
    from app.modelexport import run_export_model
    from app.prelabel import run_prelabel

    torch.manual_seed(0)
    weights = data_dir / "yolo26n-random.pt"
    YOLO("yolo26n.yaml").save(str(weights))
    n = make_store(data_dir, n)
    print(f"frames: {n} of {VIDEO.name}, imgsz {args.imgsz}, conf {args.conf}, device {args.device}, torch threads "
          f"{torch.get_num_threads()}")

    # warm both paths once (model load, first-call allocations), then time them
    bare = YOLO(str(weights), task="detect")
    bare.predict(cv2.imread(str(framestore.frame_file(1, 0, data_dir))), imgsz=args.imgsz, device=args.device,
                 verbose=False)
    params = {"model_path": str(weights), "video_id": 1, "keep": list(range(80)), "conf": args.conf, "imgsz": args.imgsz,
              "start": 0, "end": 1, "device": args.device, "link": True}
    run_prelabel(params, LocalContext("warm"))

    t = time.perf_counter()
    boxes_bare = 0
    for i in range(n):
        r = bare.predict(cv2.imread(str(framestore.frame_file(1, i, data_dir))), imgsz=args.imgsz, conf=args.conf,
                         device=args.device, verbose=False)[0]
        boxes_bare += len(r.boxes)
    bare_s = time.perf_counter() - t

    t = time.perf_counter()
    result = run_prelabel({**params, "end": n}, LocalContext("bench"))
    pre_s = time.perf_counter() - t

    t = time.perf_counter()
    export = run_export_model({"model_path": str(weights), "format": "onnx", "imgsz": args.imgsz,
                               "name": "bench", "classes": [str(bare.names[i]) for i in sorted(bare.names)]},
                              LocalContext("bench-export"))
    export_s = time.perf_counter() - t

    print(f"bare model.predict loop : {n / bare_s:7.2f} frames/s ({bare_s:.2f} s, {boxes_bare} boxes)")
    print(f"run_prelabel            : {n / pre_s:7.2f} frames/s ({pre_s:.2f} s, {result['detections']} boxes, "
          f"{result['tracks']} tracks)")
    print(f"ratio prelabel/bare     : {bare_s / pre_s:7.2f}x")
    print(f"ONNX export + zip       : {export_s:7.2f} s ({export['size'] / 1e6:.1f} MB zip)")


if __name__ == "__main__":
    main()
