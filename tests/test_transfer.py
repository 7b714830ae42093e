"""Import into and export out of DuckDB + the frame store: real exports, round trips, bad archives."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.errors import BadInput, TooLarge
from app.projects import create_project, get_project
from app.store import db
from app.transfer import export_dataset, import_annotations

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STREET = DATA / "cvat_images_xml_real" / "street_job4"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tpod")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TPOD_DATA_DIR", str(root))
        mp.setenv("TPOD_MAX_ARCHIVE_MB", "20")
        yield root
        db.release()


_names = iter(range(10_000))


def _project(prefix: str = "p"):
    return create_project(f"{prefix}-{next(_names)}")


def _counts(project_id: int) -> tuple[int, int, int, int]:
    """(videos, frames, tracks, boxes) rows of a project."""
    with db.connect() as cur:
        return cur.execute(
            "SELECT (SELECT count(*) FROM videos WHERE project_id = $p), "
            "(SELECT count(*) FROM frames f JOIN videos v ON v.id = f.video_id WHERE v.project_id = $p), "
            "(SELECT count(*) FROM tracks t JOIN videos v ON v.id = t.video_id WHERE v.project_id = $p), "
            "(SELECT count(*) FROM boxes b JOIN videos v ON v.id = b.video_id WHERE v.project_id = $p)",
            {"p": project_id},
        ).fetchone()


def _boxes(video_id: int) -> list[tuple]:
    with db.connect() as cur:
        return cur.execute(
            "SELECT b.frame_idx, c.name, b.track_id, b.x1, b.y1, b.x2, b.y2, b.keyframe, b.outside, b.source "
            "FROM boxes b JOIN label_classes c ON c.id = b.class_id WHERE b.video_id = ? "
            "ORDER BY b.frame_idx, b.x1, b.y1", [video_id]).fetchall()


def _zip(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return path


def _jpeg(w: int = 20, h: int = 10) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 120, dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _frame_dirs(root: Path) -> set[str]:
    videos = root / "videos"
    return {p.name for p in videos.iterdir()} if videos.exists() else set()


# ---- real exports -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def traffic(data_dir):
    """The 90-frame 1080p traffic clip ingested at a 960-pixel working size."""
    from app.ingest import ingest_now

    project = _project("traffic")
    (video,) = ingest_now(project.id, [("traffic.mp4", DATA / "cvat_coco_traffic" / "traffic_first90_1080p_h264.mp4")],
                          max_side=960)
    return project, video


def test_traffic_coco_onto_90_frame_video(traffic, data_dir, tmp_path):
    project, video = traffic
    report = import_annotations(DATA / "cvat_coco_traffic" / "task_2047617_annotations_2026_02_25_14_34_26_coco 1.0.zip",
                                project.id, "coco", video_id=video["id"], author="alice")
    assert (report["boxes"], report["tracks"], report["frames"]) == (1491, 19, 90)
    assert report["classes_created"] == ["Car", "Pedestrian", "Tram"]  # only classes with boxes in frames 0-89
    lacking = [s for s in report["skipped"] if "is not in video" in s["reason"]]
    assert len(lacking) == 463 - 90
    assert sum(int(s["reason"].split("; ")[1].split()[0]) for s in lacking) == 6355 - 1491
    rows = _boxes(video["id"])
    assert len(rows) == 1491 and {r[9] for r in rows} == {"imported"}
    assert sum(r[7] for r in rows) == len([1 for r in rows if r[7]])  # keyframe flags kept as read
    src = json.loads((DATA / "cvat_coco_traffic" / "instances_default.json").read_text())
    first = next(a for a in src["annotations"] if a["id"] == 1)  # track 17 on frame 0
    x, y, w, h = first["bbox"]
    assert any(r[0] == 0 and r[3:7] == pytest.approx((x, y, x + w, y + h)) for r in rows)
    assert sum(r[7] for r in rows) == sum(1 for a in src["annotations"] if a["image_id"] <= 90 and a["attributes"]["keyframe"])

    # Export: frames are stored at 960x540, so boxes come out halved; pycocotools reads it.
    from pycocotools.coco import COCO

    out = export_dataset(project.id, "coco", tmp_path / "traffic_coco.zip")
    assert (out["images"], out["boxes"], out["tracks"]) == (90, 1491, 19)
    with zipfile.ZipFile(out["path"]) as zf:
        zf.extractall(tmp_path / "x")
        assert sum(n.endswith(".jpg") for n in zf.namelist()) == 90
    coco = COCO(str(tmp_path / "x" / "annotations" / "instances_default.json"))
    assert len(coco.getImgIds()) == 90 and len(coco.getAnnIds()) == 1491 and len(coco.getCatIds()) == 3
    img = coco.loadImgs(coco.getImgIds())[0]
    assert (img["width"], img["height"]) == (960, 540)
    exported = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
    assert any(a["bbox"] == pytest.approx([x / 2, y / 2, w / 2, h / 2], abs=1e-3) for a in exported)
    assert len({a["attributes"]["track_id"] for a in coco.loadAnns(coco.getAnnIds())}) == 19


def test_cvat_video_real_onto_video_keeps_flags_and_skips_missing_frames(traffic):
    # The CVAT job is 1280x720 and 221 frames; the clip is 1920x1080 and 90 frames: scaled, and the rest skipped.
    project, video = traffic
    report = import_annotations(DATA / "cvat_video_xml_real" / "traffic_job_4236878", project.id, "cvat",
                                video_id=video["id"], class_map={"car": "Car", "person": "Pedestrian"})
    assert report["classes_created"] == []
    assert any("scaled" in a["reason"] for a in report["adjusted"])
    assert report["skipped"] and all("is not in video" in s["reason"] for s in report["skipped"])
    assert report["boxes"] + sum(int(s["reason"].split("; ")[1].split()[0]) for s in report["skipped"]) == 1751


def test_cvat_images_real_as_new_image_sets(data_dir):
    project = _project()
    report = import_annotations(STREET, project.id, "cvat", author="bob")
    assert report["new_image_set"] and (report["frames"], report["boxes"], report["tracks"]) == (12, 125, 125)
    assert report["skipped"] == [] and report["video_name"] == "street_job4"
    assert (data_dir / "videos" / str(report["video_id"]) / "frames" / "000011.jpg").exists()
    assert _counts(project.id) == (1, 12, 125, 125)

    report = import_annotations(DATA / "cvat_images_xml_real" / "catdog_task153515", project.id, "cvat")
    assert report["frames"] == 2 and report["boxes"] == 1
    assert [a["item"] for a in report["adjusted"]] == ["dog.jpg"]
    assert report["skipped"][0]["reason"] == "polyline shape, not a box"
    (box,) = _boxes(report["video_id"])
    assert box[3:7] == pytest.approx((352.20 * 2560 / 2765, 63.30 * 1706 / 1843, 2306.50 * 2560 / 2765, 1706), abs=0.01)


# ---- round trips --------------------------------------------------------------------------------

def _tracked_source(tmp_path: Path) -> Path:
    """A CVAT-for-video archive with images: 2 tracks over 6 frames, keyframes, an outside box."""
    xml = ['<?xml version="1.0"?><annotations><version>1.1</version><meta><task><size>6</size>'
           '<labels><label><name>car</name></label><label><name>person</name></label></labels>'
           '<original_size><width>64</width><height>48</height></original_size></task></meta>'
           '<track id="0" label="car">']
    for f in range(4):
        xml.append(f'<box frame="{f}" keyframe="{int(f in (0, 3))}" outside="0" occluded="0" '
                   f'xtl="{2 + f}.5" ytl="3" xbr="{30 + f}" ybr="40.25"/>')
    xml.append('<box frame="4" keyframe="1" outside="1" occluded="0" xtl="5.5" ytl="3" xbr="33" ybr="40.25"/>')
    xml.append('</track><track id="1" label="person">')
    for f in range(2, 6):
        xml.append(f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="40" ytl="{10 + f}" xbr="60" ybr="30"/>')
    xml.append("</track></annotations>")
    files: dict[str, bytes | str] = {"annotations.xml": "".join(xml)}
    for f in range(6):
        files[f"images/frame_{f:06d}.jpg"] = _jpeg(64, 48)
    return _zip(tmp_path / "tracked.zip", files)


@pytest.mark.parametrize("fmt, read_as, keeps_tracks", [
    ("yolo", "yolo", False), ("coco", "coco", True), ("voc", "voc", False), ("cvat-video", "cvat", True),
])
def test_round_trip(data_dir, tmp_path, fmt, read_as, keeps_tracks):
    source = _project("src")
    first = import_annotations(_tracked_source(tmp_path), source.id, "cvat")
    assert (first["boxes"], first["outside"], first["tracks"], first["frames"]) == (9, 1, 2, 6)
    out = export_dataset(source.id, fmt, tmp_path / f"out_{fmt}.zip")
    assert (out["images"], out["boxes"]) == (6, 8)

    target = _project("dst")
    back = import_annotations(Path(out["path"]), target.id, read_as)
    assert back["skipped"] == [] and back["adjusted"] == []
    before = [r for r in _boxes(first["video_id"]) if not r[8]]
    after = [r for r in _boxes(back["video_id"]) if not r[8]]

    def geometry(rows):
        return sorted((r[0], r[1], round(r[3], 2), round(r[4], 2), round(r[5], 2), round(r[6], 2)) for r in rows)

    assert geometry(after) == geometry(before)
    if keeps_tracks:
        groups = lambda rows: sorted(sorted(r[0] for r in rows if r[2] == t) for t in {r[2] for r in rows})  # noqa: E731
        assert groups(after) == groups(before)
        assert back["tracks"] == 2
    if fmt == "cvat-video":
        assert [(r[0], r[7]) for r in after if r[1] == "car"] == [(f, True) for f in range(4)]
        assert [r[0] for r in _boxes(back["video_id"]) if r[8]] == [4]  # the outside flag survived
    if fmt == "coco":
        assert [r[7] for r in after if r[1] == "car"] == [True, False, False, True]


# ---- bad input: nothing partially imported -------------------------------------------------------

def _coco_zip(tmp_path: Path, doc: dict, with_image: bool = True) -> Path:
    files: dict[str, bytes | str] = {"annotations/instances_default.json": json.dumps(doc)}
    if with_image:
        files["images/a.jpg"] = _jpeg()
    return _zip(tmp_path / "in.zip", files)


_DOC = {"images": [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 10}],
        "categories": [{"id": 1, "name": "zebra"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}


def _bomb(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations.xml", b"\0" * (30 * 1024 * 1024))
    return path


@pytest.mark.parametrize("case, build, kwargs, error, message", [
    ("malformed json", lambda t: _zip(t / "a.zip", {"ann.json": "{oops"}), {"fmt": "coco"}, BadInput, "malformed JSON"),
    ("malformed xml", lambda t: _zip(t / "a.zip", {"annotations.xml": "<annotations>"}), {"fmt": "cvat"}, BadInput,
     "malformed XML"),
    ("malformed yaml", lambda t: _zip(t / "a.zip", {"data.yaml": "names: [a"}), {"fmt": "yolo"}, BadInput, "YAML"),
    ("zip slip", lambda t: _zip(t / "a.zip", {"../evil.xml": "<annotations/>"}), {"fmt": "cvat"}, BadInput, "outside"),
    ("absolute member", lambda t: _zip(t / "a.zip", {"/etc/x.xml": "<annotations/>"}), {"fmt": "cvat"}, BadInput,
     "absolute"),
    ("zip bomb", _bomb, {"fmt": "cvat"}, TooLarge, "MB"),
    ("empty archive", lambda t: _zip(t / "a.zip", {}), {"fmt": "coco"}, BadInput, "empty"),
    ("not a zip", lambda t: (t / "a.zip").write_bytes(b"hello") and t / "a.zip", {"fmt": "coco"}, BadInput,
     "not a zip"),
    ("no images, no video", lambda t: _coco_zip(t, _DOC, with_image=False), {"fmt": "coco"}, BadInput,
     "carries no images"),
    ("duplicate image ids", lambda t: _coco_zip(t, {**_DOC, "images": _DOC["images"] * 2}), {"fmt": "coco"}, BadInput,
     "duplicate image id"),
    ("unknown class refused", lambda t: _coco_zip(t, _DOC), {"fmt": "coco", "create_classes": False}, BadInput,
     "zebra"),
    ("bad mapped class name", lambda t: _coco_zip(t, _DOC), {"fmt": "coco", "class_map": {"zebra": "a\x07b"}}, BadInput,
     "control characters"),
])
def test_bad_archives_write_nothing(data_dir, tmp_path, case, build, kwargs, error, message):
    project = _project("bad")
    dirs = _frame_dirs(data_dir)
    with pytest.raises(error, match=message):
        import_annotations(build(tmp_path), project.id, **kwargs)
    assert _counts(project.id) == (0, 0, 0, 0)
    assert get_project(project.id).classes == ()
    assert _frame_dirs(data_dir) == dirs  # no frame folder, no staging folder left behind


def test_outside_boxes_clipped_and_reported(data_dir, tmp_path):
    doc = {**_DOC, "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [15, 5, 10, 10]},  # reaches 25 x 15 on 20 x 10
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 40, 5, 5]},  # wholly outside
    ]}
    project = _project()
    report = import_annotations(_coco_zip(tmp_path, doc), project.id, "coco")
    assert report["boxes"] == 1 and report["classes_created"] == ["zebra"]
    assert "clipped" in report["adjusted"][0]["reason"]
    assert "outside the 20x10 image" in report["skipped"][0]["reason"]
    ((_, _, _, x1, y1, x2, y2, *_),) = _boxes(report["video_id"])
    assert (x1, y1, x2, y2) == (15, 5, 20, 10)


def test_export_refuses_empty_and_unknown(data_dir, tmp_path):
    project = _project()
    with pytest.raises(BadInput, match="nothing to export"):
        export_dataset(project.id, "yolo", tmp_path / "x.zip")
    with pytest.raises(BadInput, match="unknown export format"):
        export_dataset(project.id, "darknet", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_export_frozen_version(traffic, tmp_path):
    """A version exports its snapshot: its splits, its classes, boxes scaled to the shipped 960x540 frames."""
    from app.datasets import create_version, version_items

    project, video = traffic
    if _counts(project.id)[3] == 0:  # run on its own: label the clip first
        import_annotations(DATA / "cvat_coco_traffic" / "instances_default.json", project.id, "coco",
                           video_id=video["id"])
    version = create_version(project.id, f"v-{next(_names)}", split="blocks", val=0.2, block_size=15)
    items = version_items(version["id"])
    out = export_dataset(project.id, "yolo", tmp_path / "v.zip", version_id=version["id"])
    frames = items[["video_id", "frame_idx"]].drop_duplicates()
    assert out["images"] == len(frames) and out["boxes"] == int(items["x1"].notna().sum())
    assert out["classes"] == version["names"] and out["missing_images"] == []
    with zipfile.ZipFile(out["path"]) as zf:
        names = zf.namelist()
        assert {n.split("/")[1] for n in names if n.startswith("images/")} == set(items["split"])
        row = items[items["x1"].notna()].iloc[0]
        label = next(n for n in names if n.startswith(f"labels/{row['split']}/") and n.endswith(f"_{row['frame_idx']:06d}.txt"))
        lines = zf.read(label).decode().splitlines()
    cx = (row["x1"] + row["x2"]) / 2 / row["width"]
    assert any(abs(float(line.split()[1]) - cx) < 1e-5 for line in lines)


def test_import_upload_and_export_for_download(data_dir, tmp_path):
    from app.transfer import export_for_download, import_upload, parse_class_map

    project = _project("up")
    data = _coco_zip(tmp_path, _DOC).read_bytes()
    report = import_upload("my set.zip", io.BytesIO(data), project.id, "coco",
                           class_map=parse_class_map("zebra -> horse\n\n"))
    assert report["video_name"] == "my set" and report["classes_created"] == ["horse"]
    assert not any((data_dir / "uploads").rglob("*.zip"))  # the staged upload is gone
    out = export_for_download(project.id, "voc")
    assert out["file_name"].endswith("-voc.zip") and Path(out["path"]).is_file() and out["boxes"] == 1


@pytest.mark.parametrize("text, expect", [
    ("a -> b", {"a": "b"}), ("a = b\n c->d ", {"a": "b", "c": "d"}), ("", {}),
])
def test_parse_class_map(text, expect):
    from app.transfer import parse_class_map

    assert parse_class_map(text) == expect


@pytest.mark.parametrize("text", ["just a label", "a -> ", " = b"])
def test_parse_class_map_refuses(text):
    from app.transfer import parse_class_map

    with pytest.raises(BadInput):
        parse_class_map(text)
