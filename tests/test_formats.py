"""Format readers and writers on the real exports in ../shared/data and on tiny generated folders."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import formats
from app.domain import Box
from app.errors import BadInput
from app.formats import Dataset, LabeledImage, coco, voc, yolo

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATUMARO = DATA / "datumaro_format_fixtures"


def _boxes(ds: Dataset) -> list[Box]:
    return [b for im in ds.images for b in im.boxes]


# ---- real exports ----------------------------------------------------------------------------

def test_cvat_video_real_export_exact_counts():
    ds = formats.read("cvat", DATA / "cvat_video_xml_real" / "traffic_job_4236878")
    boxes = _boxes(ds)
    assert len(boxes) == 1751
    assert len(ds.track_ids) == 20
    assert sum(b.outside for b in boxes) == 11
    assert sum(not b.keyframe for b in boxes) == 10
    assert ds.classes == ["person", "car"]
    assert {(im.width, im.height) for im in ds.images} == {(1280, 720)}
    assert min(im.frame_index for im in ds.images) == 0 and max(im.frame_index for im in ds.images) == 220
    first = next(b for b in boxes if b.track_id == 0 and b.frame == 0)
    assert (first.x1, first.y1, first.x2, first.y2) == (731.44, 259.31, 898.69, 683.76)
    assert not ds.skipped


def test_cvat_images_real_street_job():
    ds = formats.read("cvat", DATA / "cvat_images_xml_real" / "street_job4")
    assert len(ds.images) == 12 and ds.box_count == 125
    assert all(im.path is not None for im in ds.images)  # names with spaces and parentheses
    assert ds.classes == ["Car", "Person", "Road", "Roof", "Building"]
    assert not ds.skipped and not ds.adjusted


def test_cvat_images_real_catdog_size_mismatch_and_polyline():
    ds = formats.read("cvat", DATA / "cvat_images_xml_real" / "catdog_task153515")
    dog = next(im for im in ds.images if im.name == "dog.jpg")
    assert (dog.width, dog.height) == (2560, 1706)
    (box,) = dog.boxes
    scale = 2560 / 2765
    assert box.x1 == pytest.approx(352.20 * scale) and box.x2 == pytest.approx(2306.50 * scale)
    assert box.y2 == pytest.approx(1706, abs=0.01)
    assert [a.item for a in ds.adjusted] == ["dog.jpg"] and "0.926" in ds.adjusted[0].reason
    assert [s.reason for s in ds.skipped] == ["polyline shape, not a box"]


def test_cvat_coco_traffic_track_ids():
    ds = formats.read("coco", DATA / "cvat_coco_traffic")
    boxes = _boxes(ds)
    assert len(ds.images) == 463 and len(boxes) == 6355
    assert len(ds.track_ids) == 32
    assert sum(b.keyframe for b in boxes) == 766
    assert sum(1 for b in boxes if b.frame < 90) == 1491
    assert len({b.track_id for b in boxes if b.frame < 90}) == 19
    assert ds.classes == ["Car", "Bus", "Truck", "Tram", "Pedestrian"]
    assert {im.frame_index for im in ds.images} == set(range(463))


def test_lenient_coco_not_made_by_cvat():
    root = DATA / "cvat_images_xml_real" / "street_job4"
    ds = coco.read(root)  # no info/licenses, ids from 0, images found by file name
    assert len(ds.images) == 12 and ds.box_count == 100
    assert all(im.path is not None for im in ds.images)


@pytest.mark.parametrize("fmt, folder, images, boxes, skipped", [
    ("coco", "coco_dataset", 2, 2, 1),  # the iscrowd=1 RLE annotation is skipped
    ("voc", "voc_dataset", 1, 2, 0),
    ("yolo", "yolo_dataset/strict", 1, 2, 0),
    ("yolo", "yolo_dataset_c7bc106/yolo", 1, 2, 0),
    ("yolo", "yolo_dataset_c7bc106/yolov8", 1, 2, 0),
    ("yolo", "yolo_dataset_c7bc106/yolov8_with_list_of_names", 1, 2, 0),
    ("yolo", "yolo_dataset_c7bc106/yolov8_with_subset_txt", 1, 2, 0),
    ("yolo", "roboflow_dataset/yolo", 2, 2, 1),  # data.yaml names ../valid/images, which is absent
    ("cvat", "cvat_dataset/for_images/export_task", 2, 1, 3),
    ("cvat", "cvat_dataset/for_images/export_project", 6, 3, 9),
])
def test_datumaro_fixtures(fmt, folder, images, boxes, skipped):
    ds = formats.read(fmt, DATUMARO / folder)
    assert (len(ds.images), ds.box_count, len(ds.skipped)) == (images, boxes, skipped)
    assert all(im.path is not None for im in ds.images)


def test_datumaro_cvat_video_offsets_and_flags():
    ds = formats.read("cvat", DATUMARO / "cvat_dataset" / "for_video")
    assert [im.frame_index for im in ds.images] == [10, 13, 16]  # start 10, step 3: source frame numbers
    assert [(b.frame, b.outside) for b in _boxes(ds)] == [(10, False), (13, True), (16, True)]
    assert all(im.path is not None for im in ds.images)
    assert sorted(s.reason for s in ds.skipped) == ["2 points shape(s): only boxes are imported",
                                                    "2 polyline shape(s): only boxes are imported"]
    assert ds.meta["documents"][0]["frame_filter"] == "step=3"


def test_yolo_names_as_dict_and_list_agree():
    a = formats.read("yolo", DATUMARO / "yolo_dataset_c7bc106" / "yolov8")
    b = formats.read("yolo", DATUMARO / "yolo_dataset_c7bc106" / "yolov8_with_list_of_names")
    assert a.classes == b.classes == [f"label_{i}" for i in range(10)]
    assert [(x.label, x.x1, x.y1, x.x2, x.y2) for x in _boxes(a)] == [(x.label, x.x1, x.y1, x.x2, x.y2) for x in _boxes(b)]


def test_yolo_labels_only_uses_frame_size(tmp_path):
    (tmp_path / "obj.names").write_text("car\n")
    (tmp_path / "obj_train_data").mkdir()
    (tmp_path / "obj_train_data" / "frame_000007.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "obj.data").write_text("classes = 1\nnames = data/obj.names\n")
    with pytest.raises(BadInput):  # no list file and no images: nothing listed
        formats.read("yolo", tmp_path)
    (tmp_path / "train.txt").write_text("data/obj_train_data/frame_000007.jpg\n")
    (tmp_path / "obj.data").write_text("classes = 1\ntrain = data/train.txt\nnames = data/obj.names\n")
    ds = formats.read("yolo", tmp_path, frame_size=(200, 100))
    (im,) = ds.images
    assert im.frame_index == 7 and im.path is None
    assert (im.boxes[0].x1, im.boxes[0].y1, im.boxes[0].x2, im.boxes[0].y2) == (50, 25, 150, 75)


# ---- line / document builders ----------------------------------------------------------------

@pytest.mark.parametrize("line, expect", [
    ("0 0.5 0.5 0.2 0.4", (40.0, 30.0, 60.0, 70.0)),
    ("1 0.1 0.9 0.2 0.2 0.87", (0.0, 80.0, 20.0, 100.0)),  # a trailing confidence is tolerated
])
def test_yolo_parse_line(line, expect):
    b = yolo.parse_line(line, 100, 100, ["a", "b"])
    assert (b.x1, b.y1, b.x2, b.y2) == pytest.approx(expect)


@pytest.mark.parametrize("line, error", [
    ("0 0.5 0.5", "expected 'class cx cy w h'"),
    ("x 0.5 0.5 0.1 0.1", "not a number"),
    ("5 0.5 0.5 0.1 0.1", "not in the 2 names"),
    ("0 0.1 0.1 0.2 0.1 0.3 0.3 0.1", "polygon"),
    ("0 nan 0.5 0.1 0.1", "not finite"),
])
def test_yolo_parse_line_errors(line, error):
    with pytest.raises(ValueError, match=error):
        yolo.parse_line(line, 100, 100, ["a", "b"])


def test_yolo_label_line_round_trip():
    box = Box(10.5, 20.25, 70.0, 90.0, label="b")
    line = yolo.label_line(box, 640, 480, 1)
    back = yolo.parse_line(line, 640, 480, ["a", "b"])
    assert (back.x1, back.y1, back.x2, back.y2) == pytest.approx((10.5, 20.25, 70.0, 90.0), abs=1e-3)


def _tiny_dataset(tmp_path: Path) -> Dataset:
    images = []
    for i in range(4):
        path = tmp_path / "src" / f"f{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 64, 3), 40 * i, dtype=np.uint8)).save(path)
        boxes = [Box(2 + i, 3, 30 + i, 40, frame=i, label="car", track_id=7, keyframe=i in (0, 3))]
        if i == 2:
            boxes.append(Box(40, 10, 60, 20, frame=i, label="person"))
        images.append(LabeledImage(f"vid_{i:06d}.jpg", 64, 48, i, boxes, path=path))
    return Dataset(classes=["car", "person"], images=images, meta={"name": "vid", "frame_count": 6})


@pytest.mark.parametrize("write_fmt, read_fmt, tracks", [
    ("yolo", "yolo", False), ("coco", "coco", True), ("voc", "voc", False), ("cvat-video", "cvat", True),
])
def test_writer_reader_round_trip(tmp_path, write_fmt, read_fmt, tracks):
    ds = _tiny_dataset(tmp_path)
    formats.write(write_fmt, ds, tmp_path / "out")
    back = formats.read(read_fmt, tmp_path / "out")
    got = sorted((b.frame, b.label, round(b.x1, 2), round(b.y1, 2), round(b.x2, 2), round(b.y2, 2))
                 for b in _boxes(back) if not b.outside)
    want = sorted((b.frame, b.label, b.x1, b.y1, b.x2, b.y2) for b in _boxes(ds))
    assert got == want
    assert all(im.path is not None for im in back.images if any(not b.outside for b in im.boxes))
    if tracks:
        car = {b.track_id for b in _boxes(back) if b.label == "car"}
        assert len(car) == 1
    if write_fmt == "cvat-video":
        # The track ends at frame 3 of 6: CVAT needs an outside box on frame 4 to end it.
        assert [(b.frame, b.outside) for b in _boxes(back) if b.label == "car"][-1] == (4, True)
        assert {b.frame for b in _boxes(back) if b.label == "car" and not b.keyframe} == set()


def test_coco_document_carries_track_attributes(tmp_path):
    doc = coco.build_document(_tiny_dataset(tmp_path))
    anns = doc["annotations"]
    assert len(doc["images"]) == 4 and len(anns) == 5
    tracked = [a for a in anns if "track_id" in a["attributes"]]
    assert {a["attributes"]["track_id"] for a in tracked} == {7}
    assert [a["attributes"]["keyframe"] for a in tracked] == [True, False, False, True]


def test_voc_xml_has_no_outside_boxes(tmp_path):
    im = LabeledImage("a.jpg", 10, 10, 0, [Box(1, 1, 5, 5, label="x"), Box(1, 1, 5, 5, label="y", outside=True)])
    xml = voc.build_xml(im, "a.jpg")
    assert "<name>x</name>" in xml and "<name>y</name>" not in xml


# ---- bad input: table-driven ------------------------------------------------------------------

def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


_IMG = {"images/a.jpg": b""}  # replaced by a real JPEG in the test
_COCO_OK = {"images": [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 10}],
            "categories": [{"id": 1, "name": "car"}], "annotations": []}


@pytest.mark.parametrize("fmt, files, message", [
    ("coco", {"ann.json": "{not json"}, "malformed JSON"),
    ("coco", {"x.json": "[1, 2]"}, "no COCO annotation file"),
    ("coco", {"ann.json": json.dumps({**_COCO_OK, "images": _COCO_OK["images"] * 2})}, "duplicate image id 1"),
    ("coco", {"ann.json": json.dumps({**_COCO_OK, "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]})},
     "duplicate category id"),
    ("cvat", {"annotations.xml": "<annotations><track id='1'"}, "malformed XML"),
    ("cvat", {"annotations.xml": "<annotations><track id='1' label='a'/><track id='1' label='a'/></annotations>"},
     "duplicate track id 1"),
    ("cvat", {"a.xml": '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><annotations>&a;</annotations>'},
     "entity"),
    ("cvat", {"readme.txt": "hello"}, "no CVAT XML"),
    ("voc", {"Annotations/a.xml": "<annotation><size><width>x</width></size></annotation>"}, "size is not a number"),
    ("voc", {"Annotations/a.xml": "<notvoc/>"}, "no Pascal VOC"),
    ("yolo", {"data.yaml": "names: [a, b\ntrain: images"}, "malformed YAML"),
    ("yolo", {"data.yaml": "names: {0: a, 2: b}\ntrain: images"}, "without gaps"),
    ("yolo", {"notes.txt": "x"}, "no YOLO data.yaml"),
])
def test_bad_input(tmp_path, fmt, files, message):
    _write(tmp_path, files)
    with pytest.raises(BadInput, match=message):
        formats.read(fmt, tmp_path)


@pytest.mark.parametrize("bbox, outcome", [
    ([2, 2, 5, 5], "kept"),
    ([15, 5, 10, 10], "clipped"),  # reaches x 25 / y 15 on a 20x10 image
    ([30, 30, 5, 5], "skipped"),  # wholly outside
    ([2, 2, 0, 5], "skipped"),  # zero width
    ([2, 2, "w", 5], "skipped"),
])
def test_coco_box_checks(tmp_path, bbox, outcome):
    doc = {**_COCO_OK, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox}]}
    _write(tmp_path, {"ann.json": json.dumps(doc)})
    ds = formats.read("coco", tmp_path)
    boxes = _boxes(ds)
    if outcome == "skipped":
        assert not boxes and len(ds.skipped) == 1
    else:
        (b,) = boxes
        assert 0 <= b.x1 < b.x2 <= 20 and 0 <= b.y1 < b.y2 <= 10
        assert len(ds.adjusted) == (1 if outcome == "clipped" else 0)
        assert not ds.skipped


def test_coco_skips_duplicates_and_dangling(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3]},
            {"id": 2, "image_id": 9, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"id": 3, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]}]
    _write(tmp_path, {"ann.json": json.dumps({**_COCO_OK, "annotations": anns})})
    ds = formats.read("coco", tmp_path)
    assert ds.box_count == 1
    reasons = " | ".join(s.reason for s in ds.skipped)
    assert "duplicate annotation id" in reasons and "image_id 9" in reasons and "category_id 9" in reasons
