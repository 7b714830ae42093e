"""Pre-labelling a real clip with a real (tiny) detector: tracks, confidences, manual boxes kept."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.domain import Box
from app.errors import BadInput, NotFound
from app.jobctx import LocalContext
from app.prelabel import class_mapping, fail_prelabel, link_tracks, prelabel_params, record_prelabel, run_prelabel
from app.projects import create_project
from app.store.db import connect
from tests._tiny_model import IMGSZ, add_model_row, make_video, tiny_model

CONF = 0.005  # the tiny model is barely trained: a low threshold still gives boxes on every frame


@pytest.fixture(scope="module")
def weights() -> Path:
    return tiny_model()


def _job(params: dict, job_id: str) -> dict:
    return {"id": job_id, "kind": "prelabel", "project_id": params["project_id"], "params": params,
            "created_by": "tester"}


def _run(params: dict, job_id: str) -> tuple[dict, dict]:
    ctx = LocalContext(job_id)
    result = run_prelabel(json.loads(json.dumps(params)), ctx)
    assert ctx.reports[-1]["done"] == ctx.reports[-1]["total"] == params["end"] - params["start"]
    return result, record_prelabel(_job(params, job_id), json.loads(json.dumps(result)))


def _boxes(video_id: int) -> pd.DataFrame:
    with connect() as cur:
        return cur.execute("SELECT b.*, c.name AS label FROM boxes b JOIN label_classes c ON c.id = b.class_id "
                           "WHERE video_id = ? ORDER BY frame_idx, id", [video_id]).df()


def test_prelabel_creates_predicted_tracks_in_original_pixels(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    # frames stored at half size: boxes must still come back in the original 360x240 pixels
    vid = make_video(project.id, work_scale=0.5, frames=list(range(0, 40)))
    model_id = add_model_row(project.id, weights, ["person"])
    params = prelabel_params(model_id, vid, conf=CONF, start=0, end=30)
    assert params["imgsz"] == IMGSZ and params["keep"] == [0]

    result, recorded = _run(params, "job-a")
    assert Path(result["path"]).is_file() and result["frames"] == 30 and result["detections"] > 0
    assert recorded["boxes"] == result["detections"] and recorded["skipped"] == 0

    boxes = _boxes(vid)
    assert len(boxes) == recorded["boxes"]
    assert set(boxes["source"]) == {"predicted"} and set(boxes["label"]) == {"person"}
    assert boxes["confidence"].between(CONF, 1.0).all()
    assert boxes["frame_idx"].between(0, 29).all()
    assert (boxes["x1"] >= 0).all() and (boxes["x2"] <= 360).all() and (boxes["y2"] <= 240).all()
    assert boxes["x2"].max() > 180 or boxes["y2"].max() > 120, "boxes were not scaled to original pixels"
    # linked: fewer tracks than boxes, one box per track per frame, tracks exist as rows
    assert boxes["track_id"].nunique() == recorded["tracks"] < len(boxes)
    assert not boxes.duplicated(["track_id", "frame_idx"]).any()
    assert boxes.groupby("track_id")["frame_idx"].count().max() > 5
    with connect() as cur:
        n_tracks = cur.execute("SELECT count(*) FROM tracks WHERE video_id = ?", [vid]).fetchone()[0]
    assert n_tracks == recorded["tracks"]

    # recording the same predictions again (a retried recorder) adds nothing
    again = record_prelabel(_job(params, "job-a"), result)
    assert again["boxes"] == 0 and again["skipped"] == result["detections"]
    assert len(_boxes(vid)) == len(boxes)


def test_manual_boxes_are_never_overwritten_or_duplicated(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    vid = make_video(project.id, frames=list(range(10)))
    model_id = add_model_row(project.id, weights, ["person"])
    params = prelabel_params(model_id, vid, conf=CONF, start=0, end=10)
    ctx = LocalContext("job-probe")
    probe = pd.read_parquet(run_prelabel(params, ctx)["path"])
    first = probe[probe["frame_idx"] == 3].iloc[0]
    fail_prelabel({"id": "job-probe", "params": params}, "probe only")

    # a manual box where the model will predict one (same class, same frame), slightly moved
    manual = (first.x1 + 1, first.y1 + 1, first.x2 + 1, first.y2)
    with connect() as cur:
        cid = cur.execute("SELECT id FROM label_classes WHERE project_id = ?", [project.id]).fetchone()[0]
        tid = cur.execute("INSERT INTO tracks (video_id, class_id) VALUES (?, ?) RETURNING id", [vid, cid]).fetchone()[0]
        cur.execute("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, author) "
                    "VALUES (?, 3, ?, ?, ?, ?, ?, ?, 'manual', 'ann')", [vid, tid, cid, *manual])

    result, recorded = _run(params, "job-b")
    assert recorded["skipped"] >= 1
    boxes = _boxes(vid)
    manual_rows = boxes[boxes["source"] == "manual"]
    assert len(manual_rows) == 1
    row = manual_rows.iloc[0]
    assert (row.x1, row.y1, row.x2, row.y2) == pytest.approx(manual) and row.author == "ann"
    pred3 = boxes[(boxes["source"] == "predicted") & (boxes["frame_idx"] == 3)]
    from app.domain import iou

    assert all(iou(manual, (r.x1, r.y1, r.x2, r.y2)) <= 0.5 for r in pred3.itertuples())


def test_class_mapping_by_name_create_or_refuse(data_dir: Path, weights: Path) -> None:
    assert class_mapping(["person", "car"], ["car", "dog"], False) == {"keep": [1], "create": [], "ignored": ["person"]}
    assert class_mapping(["person", "car"], ["dog"], True) == {"keep": [0, 1], "create": ["person", "car"],
                                                               "ignored": []}
    with pytest.raises(BadInput, match="share no name"):
        class_mapping(["person"], ["cat", "dog"], False)

    project = create_project("pets", ["cat", "dog"])
    vid = make_video(project.id, frames=list(range(6)))
    model_id = add_model_row(project.id, weights, ["person"])
    with pytest.raises(BadInput, match=r"model's classes \(person\) share no name"):
        prelabel_params(model_id, vid, conf=CONF)
    params = prelabel_params(model_id, vid, conf=CONF, create_classes=True)
    _, recorded = _run(params, "job-c")
    assert recorded["classes_created"] == ["person"] and recorded["boxes"] > 0
    assert set(_boxes(vid)["label"]) == {"person"}


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"model_id": 999, "video_id": None}, NotFound),
    ({"video_id": 999}, NotFound),
    ({"conf": 1.5}, BadInput),
    ({"start": 50, "end": 40}, BadInput),
])
def test_prelabel_params_refuse_bad_input(data_dir: Path, weights: Path, kwargs: dict, error: type) -> None:
    project = create_project("p", ["person"])
    vid = make_video(project.id, frames=list(range(4)))
    model_id = add_model_row(project.id, weights, ["person"])
    args = {"model_id": model_id, "video_id": vid, **{k: v for k, v in kwargs.items() if v is not None}}
    if kwargs.get("video_id", 0) is None:
        args["video_id"] = vid
    with pytest.raises(error):
        prelabel_params(args.pop("model_id"), args.pop("video_id"), **args)


def test_failed_prelabel_leaves_no_file(data_dir: Path, weights: Path) -> None:
    project = create_project("p", ["person"])
    vid = make_video(project.id, frames=list(range(4)))
    params = prelabel_params(add_model_row(project.id, weights, ["person"]), vid, conf=CONF)
    result = run_prelabel(params, LocalContext("job-f"))
    fail_prelabel({"id": "job-f", "params": params}, "cancelled")
    assert not Path(result["path"]).exists()
    assert _boxes(vid).empty


def _b(frame: int, x: float, label: str = "person") -> Box:
    return Box(x, 10, x + 20, 50, frame=frame, label=label, source="predicted", confidence=0.9)


def test_link_tracks_table() -> None:
    frames = [
        [_b(0, 10), _b(0, 100)],
        [_b(1, 12), _b(1, 103), _b(1, 12, "car")],
        [],  # a miss: tracks survive a gap
        [_b(3, 15)],
        [_b(4, 200)],  # too far from any track: a new one
    ]
    linked = link_tracks(frames, iou_threshold=0.3, max_gap=2)
    ids = {(b.frame, b.label, b.x1): b.track_id for b in linked}
    assert ids[(0, "person", 10)] == ids[(1, "person", 12)] == ids[(3, "person", 15)]
    assert ids[(0, "person", 100)] == ids[(1, "person", 103)]
    assert len({ids[(0, "person", 10)], ids[(0, "person", 100)], ids[(1, "car", 12)],
                ids[(4, "person", 200)]}) == 4
    # after a gap longer than max_gap the track ends
    late = link_tracks([[_b(0, 10)], [_b(5, 10)]], max_gap=2)
    assert late[0].track_id != late[1].track_id
