"""Dataset versions: frozen snapshots, leak-free splits, dedupe, YOLO layout, refusals."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from app import framestore
from app.datasets import create_version, delete_version, get_version, list_versions, version_data_yaml, version_items
from app.errors import BadInput, Conflict, NotFound
from app.projects import create_project
from app.store.db import connect, release

ORIG_W, ORIG_H = 640, 480      # original video size: boxes are in these pixels
WORK_W, WORK_H = 64, 48        # stored frames are smaller: labels must not care


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TPOD_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "data"
    release()


def write_frame(video_id: int, idx: int, seed: int) -> None:
    path = framestore.frame_file(video_id, idx)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # blocky noise: distinct images keep distinct phashes even after JPEG
    img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    Image.fromarray(img).save(path, quality=90)


def add_video(project_id: int, name: str, frames: int, *, boxed: range | list[int] | None = None,
              class_id: int, reviewed: tuple[int, ...] = (), same_image: dict[int, int] | None = None) -> int:
    """A ready video of `frames` frames (JPEGs written), one box of `class_id` on each frame of `boxed`
    (all frames by default). same_image maps a frame to the frame whose picture it repeats."""
    with connect() as cur:
        vid = int(cur.execute(
            "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count, work_width, work_height) "
            "VALUES (?, ?, 'ready', ?, ?, 30, ?, ?, ?) RETURNING id",
            [project_id, name, ORIG_W, ORIG_H, frames, WORK_W, WORK_H]).fetchone()[0])
        cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts, reviewed) "
                    "SELECT ?, i, i, i / 30.0, list_contains(?::INTEGER[], i) FROM range(?) t(i)",
                    [vid, list(reviewed), frames])
        track = int(cur.execute("INSERT INTO tracks (video_id, class_id) VALUES (?, ?) RETURNING id",
                                [vid, class_id]).fetchone()[0])
        for i in (range(frames) if boxed is None else boxed):
            cur.execute("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'manual')", [vid, i, track, class_id, 64, 48, 192, 144])
    for i in range(frames):
        write_frame(vid, i, seed=vid * 100_000 + (same_image or {}).get(i, i))
    return vid


@pytest.fixture
def project():
    return create_project("p", ["car", "person"])


def splits_of(version: dict) -> dict[tuple[int, int], str]:
    items = version_items(version["id"])
    return {(int(r.video_id), int(r.frame_idx)): r.split for r in items.itertuples()}


def test_yolo_layout_and_frozen_after_edits(project):
    car, person = (c.id for c in project.classes)
    videos = [add_video(project.id, f"v{i}.mp4", 6, class_id=car) for i in range(3)]
    version = create_version(project.id, "v1", val=0.34, seed=1, author="ann")
    root = Path(version["path"])
    assert root.is_absolute() and root.is_dir()
    doc = yaml.safe_load((root / "data.yaml").read_text())
    assert doc["path"] == str(root) and doc["names"] == ["car", "person"]
    assert doc["train"] == "images/train" and doc["val"] == "images/val" and "test" not in doc
    stats = version["stats"]
    assert stats["images"] == 18 and stats["boxes"] == 18
    assert stats["splits"]["val"]["images"] == 6 and stats["splits"]["train"]["images"] == 12
    assert version["created_by"] == "ann" and version["params"]["seed"] == 1

    image = next((root / "images" / "val").iterdir())
    vid, idx = (int(x) for x in image.stem[1:].split("_"))
    assert image.stat().st_ino == framestore.frame_file(vid, idx).stat().st_ino  # a hard link
    label = (root / "labels" / "val" / (image.stem + ".txt")).read_text().split()
    # normalised by the ORIGINAL 640x480, though the stored JPEG is 64x48
    assert label == ["0", "0.200000", "0.200000", "0.200000", "0.200000"]

    before_rows = version_items(version["id"])
    before_label = (root / "labels" / "val" / (image.stem + ".txt")).read_text()
    with connect() as cur:
        cur.execute("UPDATE boxes SET x1 = 0, class_id = ? WHERE video_id = ?", [person, videos[0]])
        cur.execute("DELETE FROM boxes WHERE video_id = ?", [videos[1]])
    assert version_items(version["id"]).equals(before_rows)
    assert (root / "labels" / "val" / (image.stem + ".txt")).read_text() == before_label
    assert get_version("v1", project.id)["stats"] == stats
    assert [v["name"] for v in list_versions(project.id)] == ["v1"]


def test_ultralytics_reads_the_data_yaml(project, tmp_path, monkeypatch):
    cfg = tmp_path / "yolo_cfg"
    cfg.mkdir()
    import matplotlib

    font = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    shutil.copy(font, cfg / "Arial.ttf")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(cfg))
    car = project.classes[0].id
    for i in range(3):
        add_video(project.id, f"v{i}.mp4", 4, class_id=car)
    version = create_version(project.id, "yolo", val=0.3, test=0.3, seed=0)
    from ultralytics.data.utils import check_det_dataset, verify_image_label

    data = check_det_dataset(str(version_data_yaml(version["id"])))
    assert data["nc"] == 2 and list(data["names"].values()) == ["car", "person"]
    for split in ("train", "val", "test"):
        assert Path(data[split]).is_dir() and any(Path(data[split]).iterdir())
    image = next(Path(data["val"]).iterdir())
    label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
    result = verify_image_label((str(image), str(label), "", False, 2, 0, 0, False))
    assert result[-1] == ""  # no message: image and label are valid
    assert result[1].shape == (1, 5)


def test_split_by_video_keeps_each_video_on_one_side(project):
    car = project.classes[0].id
    videos = [add_video(project.id, f"v{i}.mp4", 5, class_id=car) for i in range(5)]
    version = create_version(project.id, "byvideo", val=0.2, test=0.2, seed=3)
    splits = splits_of(version)
    for vid in videos:
        assert len({s for (v, _), s in splits.items() if v == vid}) == 1
    assert set(splits.values()) == {"train", "val", "test"}
    again = create_version(project.id, "byvideo again", val=0.2, test=0.2, seed=3)
    assert splits_of(again) == splits  # deterministic for a seed


@pytest.mark.parametrize("every_nth,block_size", [(1, None), (1, 7), (2, 10), (3, None)])
def test_blocks_never_put_neighbours_on_both_sides(project, every_nth, block_size):
    car = project.classes[0].id
    vid = add_video(project.id, "long.mp4", 120, class_id=car)
    version = create_version(project.id, "blocks", split="blocks", val=0.3, test=0.1,
                             every_nth=every_nth, block_size=block_size, seed=5)
    splits = splits_of(version)
    guard = version["params"]["blocks"]["guard"][str(vid)]
    assert guard >= 1
    assert set(splits.values()) == {"train", "val", "test"}
    frames = sorted(splits.items())
    for (va, ia), sa in frames:
        for (vb, ib), sb in frames:
            if va == vb and sa != sb:
                assert abs(ia - ib) > guard, (ia, sa, ib, sb)
    assert all(i % every_nth == 0 for (_, i) in splits)
    assert version["stats"]["guard_dropped_frames"] > 0


def test_dedupe_drops_near_identical_frames(project):
    car = project.classes[0].id
    # frames 1-3 repeat frame 0; frames 5-6 repeat frame 4: 10 frames, 7 unique pictures... minus 5
    add_video(project.id, "a.mp4", 10, class_id=car, same_image={1: 0, 2: 0, 3: 0, 5: 4, 6: 4})
    add_video(project.id, "b.mp4", 4, class_id=car)
    plain = create_version(project.id, "all", val=0.25)
    deduped = create_version(project.id, "unique", val=0.25, dedupe_threshold=4)
    assert plain["stats"]["images"] == 14
    assert deduped["stats"]["images"] == 9
    assert deduped["stats"]["deduped_frames"] == 5


def test_include_empty_adds_reviewed_background_frames(project):
    car = project.classes[0].id
    add_video(project.id, "a.mp4", 6, class_id=car, boxed=[0, 1], reviewed=(2, 3))
    add_video(project.id, "b.mp4", 6, class_id=car, boxed=[0, 1], reviewed=(4,))
    without = create_version(project.id, "without", val=0.5)
    with_empty = create_version(project.id, "with", val=0.5, include_empty=True)
    assert without["stats"]["images"] == 4
    assert with_empty["stats"]["images"] == 7
    empties = sum(s["empty_images"] for s in with_empty["stats"]["splits"].values())
    assert empties == 3
    root = Path(with_empty["path"])
    sizes = sorted(p.stat().st_size for p in root.glob("labels/*/*.txt"))
    assert sizes.count(0) == 3
    items = version_items(with_empty["id"])
    assert items["class_index"].isna().sum() == 3


def test_class_filter_and_index_order(project):
    car, person = (c.id for c in project.classes)
    add_video(project.id, "a.mp4", 4, class_id=person)
    add_video(project.id, "b.mp4", 4, class_id=person)
    add_video(project.id, "c.mp4", 4, class_id=car)
    version = create_version(project.id, "people", class_ids=[person], val=0.5)
    assert version["names"] == ["person"]
    assert version["stats"]["images"] == 8
    assert set(version_items(version["id"])["class_index"]) == {0}


def test_refusals_leave_nothing_behind(project, data_dir):
    car = project.classes[0].id
    a = add_video(project.id, "only.mp4", 8, class_id=car)
    cases = [
        (dict(name="one video"), BadInput, "split='blocks'"),
        (dict(name="x", split="random"), BadInput, "split"),
        (dict(name="x", val=0), BadInput, "validation"),
        (dict(name="x", val=0.6, test=0.5), BadInput, "test"),
        (dict(name="x", every_nth=0), BadInput, "every_nth"),
        (dict(name="x", dedupe_threshold=99), BadInput, "Hamming"),
        (dict(name="x", video_ids=[]), BadInput, "no labeled frames"),
        (dict(name="x", class_ids=[project.classes[1].id]), BadInput, "no labeled frames"),
        (dict(name="x", class_ids=[424242]), NotFound, "class"),
        (dict(name="x", split="blocks", block_size=1000, val=0.2), BadInput, "no validation frames"),
        (dict(name="  "), BadInput, "empty"),
    ]
    for kwargs, exc, text in cases:
        with pytest.raises(exc, match=text):
            create_version(project.id, **kwargs)
    create_version(project.id, "ok", split="blocks", val=0.3)
    with pytest.raises(Conflict, match="already exists"):
        create_version(project.id, "ok", split="blocks", val=0.3)
    # a frame missing from the frame store: all-or-nothing
    framestore.frame_file(a, 3).unlink()
    with pytest.raises(NotFound, match="frame store"):
        create_version(project.id, "broken", split="blocks", val=0.3)
    assert [v["name"] for v in list_versions(project.id)] == ["ok"]
    with connect() as cur:
        assert cur.execute("SELECT count(DISTINCT version_id) FROM version_items").fetchone()[0] == 1
    leftovers = sorted(p.name for p in (data_dir / "versions" / str(project.id)).iterdir())
    assert leftovers == [str(list_versions(project.id)[0]["id"])]


def test_delete_version_and_data_yaml(project):
    car = project.classes[0].id
    for i in range(2):
        add_video(project.id, f"v{i}.mp4", 3, class_id=car)
    version = create_version(project.id, "gone", val=0.5)
    path = version_data_yaml(version["id"])
    assert path.exists() and Path(version["data_yaml"]) == path
    delete_version(version["id"])
    assert not Path(version["path"]).exists()
    assert list_versions(project.id) == []
    with connect() as cur:
        assert cur.execute("SELECT count(*) FROM version_items").fetchone()[0] == 0
    with pytest.raises(NotFound):
        get_version(version["id"], project.id)
    with pytest.raises(NotFound):
        delete_version(version["id"])
