"""Exporting the tiny real model: zip contents, ONNX parity with the .pt, recorded exports."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import pytest

from app.errors import BadInput
from app.jobctx import LocalContext
from app.modelexport import available_formats, export_params, exports_of, record_export_model, run_export_model
from app.predict import predict_frames
from app.projects import create_project
from app.registry import get_model
from tests._tiny_model import IMGSZ, add_model_row, otb_frame, tiny_model

CONF = 0.005


@pytest.fixture(scope="module")
def weights() -> Path:
    return tiny_model()


def _export(model_id: int, fmt: str, job_id: str) -> tuple[dict, dict]:
    params = export_params(model_id, fmt)
    result = run_export_model(json.loads(json.dumps(params)), LocalContext(job_id))
    record_export_model({"id": job_id, "params": params, "created_by": "tester"}, result)
    return params, result


def _unzip(path: str, into: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        zf.extractall(into)
    return into


def _load_infer(folder: Path):
    spec = importlib.util.spec_from_file_location(f"infer_{folder.name}", folder / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onnx_export_runs_in_onnxruntime_like_the_pt(data_dir: Path, weights: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    project = create_project("p", ["person"])
    model_id = add_model_row(project.id, weights, ["person"])
    params, result = _export(model_id, "onnx", "exp-onnx")
    assert result["format"] == "onnx" and Path(result["path"]).parent == data_dir / "exports"
    folder = _unzip(result["path"], tmp_path / "onnx")
    assert {"README.md", "infer.py", "classes.json", result["model_file"]} <= {p.name for p in folder.iterdir()}
    assert not list((data_dir / "exports").glob("tmp-*")), "work folder left behind"
    assert "person" in (folder / "README.md").read_text()

    infer = _load_infer(folder)
    session = ort.InferenceSession(str(folder / result["model_file"]), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, IMGSZ, IMGSZ]
    for i in (0, 60):
        image = cv2.imread(str(otb_frame(i)))
        onnx_boxes = infer.detect(session, image, conf=CONF)
        # the .pt on the same letterboxed input, mapped back to the image
        boxed, r, left, top = infer.letterbox(image, IMGSZ)
        pt_boxes = predict_frames(weights, [boxed], conf=CONF, imgsz=IMGSZ, device="cpu")[0]
        assert pt_boxes and onnx_boxes
        assert abs(len(pt_boxes) - len(onnx_boxes)) <= 2
        for b in sorted(pt_boxes, key=lambda b: -b.confidence)[:5]:
            h, w = image.shape[:2]
            want = (min(max((b.x1 - left) / r, 0), w), min(max((b.y1 - top) / r, 0), h),
                    min(max((b.x2 - left) / r, 0), w), min(max((b.y2 - top) / r, 0), h))
            match = [d for d in onnx_boxes if max(abs(u - v) for u, v in zip(d["box"], want, strict=True)) < 1.0]
            assert match, f"no ONNX box near {want}"
            assert min(abs(d["confidence"] - b.confidence) for d in match) < 1e-3
            assert match[0]["class"] == "person"

    # the shipped script runs on its own
    out = subprocess.run([sys.executable, str(folder / "infer.py"), str(otb_frame(0)), "--conf", str(CONF)],
                         capture_output=True, text=True, timeout=60, check=True)
    line = json.loads(out.stdout.splitlines()[0])
    assert line["detections"] and line["detections"][0]["class"] == "person"

    recorded = exports_of(get_model(model_id))
    assert recorded[0]["format"] == "onnx" and recorded[0]["path"] == result["path"]


def test_pt_and_torchscript_exports(data_dir: Path, weights: Path, tmp_path: Path) -> None:
    assert {"pt", "onnx", "torchscript"} <= set(available_formats())
    project = create_project("p", ["person"])
    model_id = add_model_row(project.id, weights, ["person"])
    _, pt = _export(model_id, "pt", "exp-pt")
    folder = _unzip(pt["path"], tmp_path / "pt")
    assert (folder / pt["model_file"]).read_bytes() == weights.read_bytes()
    assert "from ultralytics import YOLO" in (folder / "infer.py").read_text()

    _, ts = _export(model_id, "torchscript", "exp-ts")
    folder = _unzip(ts["path"], tmp_path / "ts")
    assert ts["model_file"].endswith(".torchscript")
    import torch

    module = torch.jit.load(str(folder / ts["model_file"]))
    out = module(torch.zeros(1, 3, IMGSZ, IMGSZ))
    out = out[0] if isinstance(out, (list, tuple)) else out
    assert out.shape[0] == 1 and 5 in out.shape  # 4 box values + 1 class
    assert [e["format"] for e in exports_of(get_model(model_id))] == ["torchscript", "pt"]


def test_export_refuses_bad_requests(data_dir: Path, weights: Path, tmp_path: Path) -> None:
    project = create_project("p", ["person"])
    model_id = add_model_row(project.id, weights, ["person"])
    with pytest.raises(BadInput, match="format 'tflite' is not available"):
        export_params(model_id, "tflite")
    with pytest.raises(BadInput, match="multiple of 32"):
        export_params(model_id, "onnx", imgsz=100)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    bad_id = add_model_row(project.id, bad, ["person"], name="bad")
    with pytest.raises(BadInput, match="not a PyTorch checkpoint"):
        run_export_model(export_params(bad_id, "onnx"), LocalContext("exp-bad"))
    assert not list((data_dir / "exports").glob("*"))


def test_import_model_needs_login(data_dir: Path, weights: Path) -> None:
    from app.errors import PermissionDenied
    from app.modelexport import import_model

    project = create_project("p", ["person"])
    with pytest.raises(PermissionDenied, match="login"):
        import_model(project.id, "mine.pt", weights.read_bytes())
    (data_dir / "users.json").write_text("{}")  # login configured
    with pytest.raises(BadInput, match="not a PyTorch checkpoint"):
        import_model(project.id, "junk.pt", b"junk")
    model_id = import_model(project.id, "mine.pt", weights.read_bytes(), author="admin")
    model = get_model(model_id)
    assert model["name"] == "mine" and model["classes"] == ["person"] and model["params"]["imgsz"] == IMGSZ
    assert Path(model["path"]).read_bytes() == weights.read_bytes()
    assert len(list((data_dir / "weights" / "uploaded" / str(project.id)).iterdir())) == 1  # junk removed
