"""Export a registered model as a self-contained zip: the model file, a README and an infer.py.

Like OpenTPOD's model download, the zip is meant to be used without tpod: unzip, install the
two or three packages the README names, run `python infer.py image.jpg`. Formats: the PyTorch
weights as trained ("pt"), ONNX, TorchScript, and OpenVINO when its package is installed here.
Exports run offline: Ultralytics may not pip-install anything (no onnxslim: simplify=False).
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from app.errors import BadInput, NotFound
from app.names import safe_filename
from app.store.db import connect

log = logging.getLogger(__name__)

# format -> (label, file suffix of the exported model, Python module it needs here, or None)
FORMATS: dict[str, tuple[str, str, str | None]] = {
    "pt": ("PyTorch weights (.pt, as trained)", ".pt", None),
    "onnx": ("ONNX (onnxruntime, any language)", ".onnx", "onnx"),
    "torchscript": ("TorchScript (.torchscript)", ".torchscript", None),
    "openvino": ("OpenVINO IR (Intel CPUs/GPUs)", "_openvino_model", "openvino"),
}


def available_formats() -> dict[str, str]:
    """{format: label} for the formats this installation can export."""
    return {k: label for k, (label, _, module) in FORMATS.items()
            if module is None or importlib.util.find_spec(module) is not None}


def export_params(model_id: int, fmt: str, *, imgsz: int | None = None) -> dict[str, Any]:
    """Checked, JSON-able params for an "export_model" job (for app.jobstate.submit)."""
    from app.prelabel import model_class_names
    from app.registry import get_model

    formats = available_formats()
    if fmt not in formats:
        raise BadInput(f"format {fmt!r} is not available here: use one of {', '.join(formats)}")
    model = get_model(int(model_id))
    if not Path(model["path"]).is_file():
        raise NotFound(f"model {model['name']!r}: weights file {model['path']} is missing")
    size = int(imgsz or (model.get("params") or {}).get("imgsz") or 640)
    if not 32 <= size <= 4096 or size % 32:
        raise BadInput(f"image size {size} must be a multiple of 32 between 32 and 4096")
    return {"model_id": int(model_id), "model_path": str(model["path"]), "name": model["name"],
            "arch": model.get("arch"), "classes": model_class_names(model), "format": fmt, "imgsz": size}


def _readme(params: dict[str, Any], model_file: str) -> str:
    fmt, classes = params["format"], params["classes"]
    needs = {"onnx": "onnxruntime numpy opencv-python-headless",
             "pt": "ultralytics", "torchscript": "ultralytics", "openvino": "ultralytics openvino"}[fmt]
    class_lines = "\n".join(f"| {i} | {name} |" for i, name in enumerate(classes))
    return f"""# {params['name']}

A YOLO object detector ({params.get('arch') or 'YOLO'}) exported by tpod as **{FORMATS[fmt][0]}**.

- model file: `{model_file}`
- input: {params['imgsz']}x{params['imgsz']} RGB, letterboxed (aspect kept, grey 114 padding), 0..1 floats
- classes:

| index | name |
|------:|------|
{class_lines}

## Run it

```
pip install {needs}
python infer.py path/to/image.jpg --conf 0.25 --save annotated.jpg
```

`infer.py` prints one JSON line per image: boxes as pixel `[x1, y1, x2, y2]` in the original
image, with `confidence` and `class`. Import `detect()` from it to use the model in your code.
"""


_INFER_ONNX = '''"""Run the exported ONNX detector with onnxruntime (no torch, no ultralytics needed).

    python infer.py image.jpg [more.jpg ...] [--conf 0.25] [--iou 0.7] [--save out.jpg]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
MODEL = HERE / "MODEL_FILE"
CLASSES = json.loads((HERE / "classes.json").read_text())


def letterbox(img, size):
    """Resize keeping the aspect ratio and pad to size x size, as Ultralytics does."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    if (w, h) != (nw, nh):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return img, r, left, top


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        ious = inter / (area(boxes[i]) + area(boxes[order[1:]]) - inter + 1e-9)
        order = order[1:][ious <= iou]
    return np.array(keep, dtype=int)


def detect(session, image_bgr, conf=0.25, iou=0.7, max_det=300):
    """Boxes in the image's pixels: [{"box": [x1, y1, x2, y2], "confidence", "class", "class_id"}]."""
    inp = session.get_inputs()[0]
    size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else 640
    img, r, left, top = letterbox(image_bgr, size)
    x = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    out = session.run(None, {inp.name: x})[0][0]
    if out.shape[-1] == 6:  # NMS-free head: (max_det, 6) = x1, y1, x2, y2, score, class
        boxes, scores, cls = out[:, :4], out[:, 4], out[:, 5].astype(int)
        keep = scores > conf
        boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
    else:  # (4 + classes, anchors): cx, cy, w, h, then one score per class
        out = out.T
        cls_scores = out[:, 4:]
        cls = cls_scores.argmax(1)
        scores = cls_scores[np.arange(len(cls)), cls]
        keep = scores > conf
        xywh, scores, cls = out[keep, :4], scores[keep], cls[keep]
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        # per-class NMS: shift each class to its own region so boxes of different classes never suppress
        offset = cls[:, None].astype(np.float32) * 7680.0
        k = nms(boxes + offset, scores, iou)[:max_det]
        boxes, scores, cls = boxes[k], scores[k], cls[k]
    boxes = (boxes - np.array([left, top, left, top], dtype=np.float32)) / r
    h, w = image_bgr.shape[:2]
    boxes = boxes.clip(0, [w, h, w, h])
    return [{"box": [round(float(v), 2) for v in b], "confidence": round(float(s), 5),
             "class_id": int(c), "class": CLASSES[int(c)] if int(c) < len(CLASSES) else str(int(c))}
            for b, s, c in zip(boxes, scores, cls)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("images", nargs="+")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--save", help="write the (first) image with boxes drawn here")
    args = ap.parse_args(argv)
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    for i, name in enumerate(args.images):
        img = cv2.imread(name)
        if img is None:
            sys.exit(f"cannot read {name}")
        dets = detect(session, img, args.conf, args.iou)
        print(json.dumps({"image": name, "detections": dets}))
        if args.save and i == 0:
            for d in dets:
                x1, y1, x2, y2 = (int(v) for v in d["box"])
                cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 2)
                cv2.putText(img, f"{d['class']} {d['confidence']:.2f}", (x1, max(y1 - 4, 10)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
            cv2.imwrite(args.save, img)


if __name__ == "__main__":
    main()
'''

_INFER_ULTRALYTICS = '''"""Run the exported detector with Ultralytics.

    python infer.py image.jpg [more.jpg ...] [--conf 0.25] [--iou 0.7] [--save out.jpg]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ultralytics import YOLO

HERE = Path(__file__).resolve().parent
MODEL = HERE / "MODEL_FILE"
IMGSZ = IMAGE_SIZE


def detect(model, image, conf=0.25, iou=0.7):
    """Boxes in the image's pixels: [{"box": [x1, y1, x2, y2], "confidence", "class", "class_id"}]."""
    r = model.predict(image, conf=conf, iou=iou, imgsz=IMGSZ, verbose=False)[0]
    return [{"box": [round(float(v), 2) for v in b], "confidence": round(float(s), 5), "class_id": int(c),
             "class": r.names[int(c)]}
            for b, s, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(), r.boxes.cls.tolist())]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("images", nargs="+")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--save", help="write the (first) image with boxes drawn here")
    args = ap.parse_args(argv)
    model = YOLO(str(MODEL), task="detect")
    for i, name in enumerate(args.images):
        print(json.dumps({"image": name, "detections": detect(model, name, args.conf, args.iou)}))
        if args.save and i == 0:
            import cv2

            cv2.imwrite(args.save, model.predict(name, conf=args.conf, imgsz=IMGSZ, verbose=False)[0].plot())


if __name__ == "__main__":
    main()
'''


def _infer_py(fmt: str, model_file: str, imgsz: int) -> str:
    template = _INFER_ONNX if fmt == "onnx" else _INFER_ULTRALYTICS
    return template.replace("MODEL_FILE", model_file).replace("IMAGE_SIZE", str(int(imgsz)))


def run_export_model(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Worker side: export the weights to params["format"] and zip them with a README and infer.py
    under <data_dir>/exports/. Returns {"path", "format", "size", "seconds", "model_file"}."""
    from app.predict import check_weights_file, prepare_yolo

    fmt = params["format"]
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}")
    source = Path(params["model_path"])
    check_weights_file(source)
    data_dir = Path(ctx.data_dir)
    exports = data_dir / "exports"
    work = exports / f"tmp-{safe_filename(str(ctx.job_id), 'job')}"
    base = safe_filename(f"{params['name']}-{fmt}", "model")
    target = exports / f"{base}-{safe_filename(str(ctx.job_id), 'job')}.zip"
    started = time.monotonic()
    ctx.report(done=0, total=2, message=f"exporting to {fmt}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        # Ultralytics writes the export next to the weights: work on a copy, never in the run dir
        weights = work / "model.pt"
        shutil.copyfile(source, weights)
        if fmt == "pt":
            produced = weights
        else:
            prepare_yolo(data_dir)
            from ultralytics import YOLO

            model = YOLO(str(weights), task="detect")
            extra = {"simplify": False} if fmt == "onnx" else {}  # onnxslim would be pip-installed
            try:
                produced = Path(model.export(format=fmt, imgsz=int(params["imgsz"]), device="cpu", verbose=False,
                                             **extra))
            except Exception as exc:  # Ultralytics wraps exporter failures in plain exceptions
                raise BadInput(f"export to {fmt} failed: {str(exc).splitlines()[0][:300]}") from exc
        ctx.report(done=1, total=2, message="writing the zip")
        model_file = produced.name
        tmp = target.with_suffix(".part")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            if produced.is_dir():
                for f in sorted(produced.rglob("*")):
                    if f.is_file():
                        zf.write(f, f"{produced.name}/{f.relative_to(produced)}")
            else:
                zf.write(produced, model_file)
            zf.writestr("README.md", _readme(params, model_file))
            zf.writestr("infer.py", _infer_py(fmt, model_file, int(params["imgsz"])))
            zf.writestr("classes.json", json.dumps(params["classes"]))
            zf.writestr("model.json", json.dumps({k: params.get(k) for k in ("name", "arch", "format", "imgsz",
                                                                                "classes", "model_id")}, indent=2))
        tmp.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ctx.report(done=2, total=2, message=f"{target.name} ready")
    return {"path": str(target), "format": fmt, "model_file": model_file, "size": target.stat().st_size,
            "seconds": round(time.monotonic() - started, 2), "imgsz": int(params["imgsz"])}


def record_export_model(job: dict[str, Any], result: dict[str, Any]) -> None:
    """Remember the zip in models.params["exports"] (the page offers it for download)."""
    from app.store import prelabel as sql

    model_id = int(job["params"]["model_id"])
    entry = {k: result.get(k) for k in ("path", "format", "size", "imgsz", "seconds")}
    entry.update(job_id=job.get("id"), by=job.get("created_by"),
                 at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    with connect() as cur:
        if not sql.append_model_json(cur, model_id, "params", "exports", entry):
            Path(result["path"]).unlink(missing_ok=True)
            raise NotFound(f"model {model_id} was deleted before its export was recorded")


def exports_of(model: dict[str, Any]) -> list[dict[str, Any]]:
    """A model row's recorded exports whose zip still exists, newest first."""
    items = (model.get("params") or {}).get("exports") or []
    return [{**e, "file_name": Path(e["path"]).name} for e in reversed(items)
            if isinstance(e, dict) and e.get("path") and Path(e["path"]).is_file()]


def read_export(path: str | Path) -> bytes:
    """The bytes of an export zip (only files under the exports dir are served)."""
    from app.settings import get_settings

    path = Path(path).resolve()
    root = get_settings().exports_dir.resolve()
    if root not in path.parents or path.suffix != ".zip":
        raise BadInput(f"{path.name} is not an export of this server")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"export {path.name} was removed") from None


def import_model(project_id: int, filename: str, data: bytes, *, name: str | None = None,
                 author: str | None = None) -> int:
    """Register an uploaded Ultralytics .pt as a model of the project; returns its id.

    Loading a .pt unpickles it, which can run code: allowed only when login is configured
    (the page also requires a signed-in user).
    """
    import uuid

    from app.errors import PermissionDenied, TooLarge
    from app.names import clean_name
    from app.predict import load_model
    from app.settings import get_settings
    from app.store import registry as model_sql

    settings = get_settings()
    if not settings.auth_enabled:
        raise PermissionDenied("uploading .pt weights needs login to be configured (a .pt file can run code)")
    if len(data) > settings.max_upload_mb * 1024 * 1024:
        raise TooLarge(f"{filename} is over the {settings.max_upload_mb} MB upload limit")
    if not filename.lower().endswith(".pt"):
        raise BadInput(f"{filename}: upload an Ultralytics .pt weights file")
    folder = settings.weights_dir / "uploaded" / str(int(project_id))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex[:8]}-{safe_filename(filename, 'model.pt')}"
    path.write_bytes(data)
    try:
        model = load_model(path)
        classes = [str(model.names[i]) for i in sorted(model.names)]
        args = (getattr(model, "ckpt", None) or {}).get("train_args") or {}
        imgsz = args.get("imgsz") if isinstance(args.get("imgsz"), int) else 640
        label = clean_name(name or Path(filename).stem, "model name")
        with connect() as cur:
            return model_sql.insert_model(cur, int(project_id), None, None, label,
                                          Path(str(args.get("model") or "uploaded")).stem, str(path), classes,
                                          {}, {"imgsz": imgsz, "uploaded_by": author, "source": filename})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
