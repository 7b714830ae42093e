"""The whole loop from the command line, with a real huey_consumer doing ingest and training.

video in -> import labels -> stats -> frozen version -> train 1 epoch (model YAML, CPU) ->
registered model -> export dataset + model -> predict -> pre-label the video.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.slow

TRAFFIC = SHARED / "cvat_coco_traffic"


def cli(*args: str, timeout: int = 600) -> dict:
    r = subprocess.run([sys.executable, "-m", "app", *args, "--json"], cwd=ROOT, env=dict(os.environ),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_video_to_model_to_prelabel(worker, data_dir: Path, tmp_path: Path) -> None:
    from app import jobstate

    ingest = cli("ingest", str(TRAFFIC / "traffic_first90_1080p_h264.mp4"), "--project", "Traffic",
                 "--max-side", "480")
    assert ingest["frames"] == 90 and ingest["width"] == 1920 and abs(ingest["fps"] - 29.97) < 0.01

    report = cli("import", str(TRAFFIC / "instances_default.json"), "--project", "Traffic", "--format", "coco",
                 "--video", str(ingest["video_id"]))
    assert report["boxes"] == 1491 and report["tracks"] == 19 and report["skipped"]

    stats = cli("stats", "--project", "Traffic")
    assert stats["boxes"] == 1491 and sum(stats["per_class"].values()) == 1491

    version = cli("version", "create", "--project", "Traffic", "--name", "v1", "--split", "blocks", "--val", "0.25")
    splits = version["stats"]["splits"]
    assert splits["train"]["images"] > 0 and splits["val"]["images"] > 0
    listed = cli("version", "list", "--project", "Traffic")
    assert [v["name"] for v in listed["versions"]] == ["v1"]

    train = cli("train", "--project", "Traffic", "--version", "v1", "--model", "yolo26n.yaml", "--epochs", "1",
                "--imgsz", "64", "--batch", "8", "--device", "cpu", "--wait", timeout=900)
    assert train["status"] == "done" and train["model"], train
    job = jobstate.get_job(train["job"])
    assert job["result"]["epochs_done"] == 1 and job["result"]["history"]
    assert worker.poll() is None  # the training ran in the huey_consumer, which is still up

    out = tmp_path / "v1.zip"
    cli("export", "--project", "Traffic", "--version", "v1", "--format", "yolo", "--out", str(out))
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert any(n.endswith("data.yaml") for n in names) and any(n.endswith(".txt") for n in names)

    model_zip = tmp_path / "model.zip"
    cli("export-model", str(train["model"]), "--format", "pt", "--out", str(model_zip))
    with zipfile.ZipFile(model_zip) as zf:
        assert {"README.md", "infer.py"} <= set(zf.namelist())

    pred = cli("predict", str(train["model"]), str(SHARED / "otb_crossing" / "img" / "0001.jpg"), "--conf", "0.001")
    assert pred["frames"] == 1

    pre = cli("prelabel", str(train["model"]), "--video", str(ingest["video_id"]), "--conf", "0.001", "--wait")
    assert pre["status"] == "done" and pre["result"]["frames"] == 90

    jobs = cli("jobs")
    kinds = {j["kind"] for j in jobs["jobs"] if j["state"] == "done"}
    assert {"ingest", "train", "prelabel", "export_model"} <= kinds
