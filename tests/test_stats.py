"""Dataset health statistics on a tiny hand-made project: exact numbers, filters, warnings."""
from __future__ import annotations

import pytest

from app import stats as stats_mod
from app.errors import NotFound
from app.projects import create_project
from app.stats import project_stats, stats_revision
from app.store.db import connect, release


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TPOD_DATA_DIR", str(tmp_path))
    yield tmp_path
    release()


def add_video(project_id: int, name: str, width: int, height: int, frames: int,
              reviewed: tuple[int, ...] = ()) -> int:
    with connect() as cur:
        vid = cur.execute(
            "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count) "
            "VALUES (?, ?, 'ready', ?, ?, 30, ?) RETURNING id", [project_id, name, width, height, frames],
        ).fetchone()[0]
        cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts, reviewed) "
                    "SELECT ?, i, i, i / 30.0, list_contains(?::INTEGER[], i) FROM range(?) t(i)",
                    [vid, list(reviewed), frames])
    return int(vid)


_track = iter(range(1, 10_000))


def add_box(video_id: int, frame: int, class_id: int, xyxy: tuple[float, float, float, float], *,
            source: str = "manual", author: str | None = "ann", outside: bool = False,
            created: str = "2024-01-01 10:00:00") -> None:
    with connect() as cur:
        cur.execute(
            "INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, outside, "
            "author, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [video_id, frame, next(_track), class_id, *xyxy, source, outside, author, created, created],
        )


def add_edit(project_id: int, video_id: int, author: str, at: str) -> None:
    with connect() as cur:
        cur.execute("INSERT INTO edits (project_id, video_id, author, edited_at, action) VALUES (?, ?, ?, ?, 'add')",
                    [project_id, video_id, author, at])


@pytest.fixture
def tiny():
    project = create_project("tiny", ["car", "person", "dog"])
    car, person, dog = (c.id for c in project.classes)
    a = add_video(project.id, "a.mp4", 1000, 500, 10, reviewed=(5,))
    b = add_video(project.id, "b.mp4", 200, 100, 5)
    add_box(a, 0, car, (10, 10, 110, 60))
    add_box(a, 0, person, (0, 0, 50, 100))                       # touches the left/top border
    add_box(a, 1, car, (12, 10, 112, 60), source="tracked")
    add_box(a, 2, car, (12, 10, 112, 60), source="tracked", outside=True)   # not counted
    add_box(a, 3, car, (990, 400, 1010, 450), source="imported", author=None)  # sticks out on the right
    add_box(b, 0, dog, (100, 50, 102, 52), author="bob", created="2024-01-01 12:00:00")  # tiny
    add_edit(project.id, a, "ann", "2024-01-01 10:30:00")
    add_edit(project.id, a, "ann", "2024-01-01 11:15:00")
    return {"project": project, "a": a, "b": b, "car": car, "person": person, "dog": dog}


def by(items: list[dict], key: str) -> dict:
    return {d[key]: d for d in items}


def test_counts_classes_and_balance(tiny):
    s = project_stats(tiny["project"].id)
    assert s["boxes"] == 5
    assert s["videos"] == 2 and s["frames"] == 15
    classes = by(s["classes"], "name")
    assert [classes[n]["boxes"] for n in ("car", "person", "dog")] == [3, 1, 1]
    assert classes["car"]["share"] == pytest.approx(0.6)
    assert s["balance"]["min_max_ratio"] == pytest.approx(1 / 3)
    assert s["balance"]["rating"] == "imbalanced"
    assert 0 < s["balance"]["entropy"] < 1
    assert {d["source"]: d["boxes"] for d in s["sources"]} == {"manual": 3, "tracked": 1, "imported": 1}


def test_frames_per_video_and_boxes_per_frame(tiny):
    s = project_stats(tiny["project"].id)
    per = by(s["per_video"], "name")
    assert (per["a.mp4"]["labeled"], per["a.mp4"]["empty"], per["a.mp4"]["unlabeled"]) == (3, 1, 6)
    assert (per["b.mp4"]["labeled"], per["b.mp4"]["empty"], per["b.mp4"]["unlabeled"]) == (1, 0, 4)
    assert per["a.mp4"]["boxes"] == 4
    bpf = {d["n"]: d["frames"] for d in s["boxes_per_frame"]}
    assert (bpf[0], bpf[1], bpf[2], bpf[3]) == (11, 3, 1, 0)
    assert s["reviewed_share"] == pytest.approx(1 / 15)


def test_size_aspect_and_heat_bins(tiny):
    s = project_stats(tiny["project"].id)
    widths = {i: d["boxes"] for i, d in enumerate(s["width_hist"])}
    assert (widths[0], widths[1], widths[2]) == (2, 1, 2)
    assert sum(widths.values()) == 5
    aspect = {d["label"]: d["boxes"] for d in s["aspect_hist"] if d["boxes"]}
    assert aspect == {"2:1": 2, "1:2": 1, "1:1": 1, "1:2.83": 1}
    assert sum(d["boxes"] for d in s["area_hist"]) == 5
    heat = {(c["x"], c["y"]): c for c in s["heatmap"]["cells"]}
    assert len(heat) == 400
    assert heat[(1, 1)]["boxes"] == 2 and heat[(1, 1)]["density"] == 1.0   # both cars of video a
    assert sum(c["boxes"] for c in heat.values()) == 5


def test_authors_and_boxes_per_hour(tiny):
    authors = by(project_stats(tiny["project"].id)["authors"], "author")
    ann, bob = authors["ann"], authors["bob"]
    assert (ann["boxes"], ann["manual_boxes"], ann["edits"], ann["active_hours"]) == (3, 2, 2, 2)
    assert ann["boxes_per_hour"] == pytest.approx(1.5)
    assert (bob["boxes"], bob["active_hours"], bob["boxes_per_hour"]) == (1, 1, 1.0)
    assert authors[stats_mod.UNKNOWN_AUTHOR]["boxes"] == 1


def test_warnings(tiny, monkeypatch):
    monkeypatch.setattr(stats_mod, "MIN_GAP_FRAMES", 3)
    warnings = project_stats(tiny["project"].id)["warnings"]
    kinds = {}
    for w in warnings:
        kinds.setdefault(w["kind"], []).append(w)
    assert kinds["tiny"][0]["count"] == 1
    assert kinds["outside_image"][0]["count"] == 1
    assert kinds["touching_edge"][0]["count"] == 2
    assert {w["class_id"] for w in kinds["few_examples"]} == {tiny["car"], tiny["person"], tiny["dog"]}
    gaps = {(w["video_id"], w["first"], w["last"]) for w in kinds["unlabeled_gap"]}
    assert gaps == {(tiny["a"], 6, 9), (tiny["b"], 1, 4)}
    assert all(w["message"] and w["level"] in ("info", "warning", "error") for w in warnings)


def test_filters(tiny):
    pid = tiny["project"].id
    only_b = project_stats(pid, video_ids=[tiny["b"]])
    assert only_b["boxes"] == 1 and only_b["frames"] == 5
    assert [v["name"] for v in only_b["per_video"]] == ["b.mp4"]
    cars = project_stats(pid, class_ids=[tiny["car"]])
    assert cars["boxes"] == 3
    assert [c["name"] for c in cars["classes"]] == ["car"]
    assert cars["balance"]["rating"] == "single class"
    per = by(cars["per_video"], "name")
    assert per["a.mp4"]["labeled"] == 3 and per["b.mp4"]["labeled"] == 0
    assert project_stats(pid, video_ids=[])["boxes"] == 0
    both = project_stats(pid, video_ids=[tiny["a"]], class_ids=[tiny["person"], tiny["dog"]])
    assert both["boxes"] == 1 and by(both["classes"], "name")["dog"]["boxes"] == 0


def test_empty_project_and_unknown_project():
    project = create_project("nothing", ["x"])
    s = project_stats(project.id)
    assert s["boxes"] == 0 and s["frames"] == 0 and s["classes"][0]["share"] == 0.0
    with pytest.raises(NotFound):
        project_stats(9999)


def test_revision_changes_on_writes(tiny):
    pid = tiny["project"].id
    first = stats_revision(pid)
    assert stats_revision(pid) == first
    add_box(tiny["b"], 3, tiny["dog"], (1, 1, 20, 20))
    second = stats_revision(pid)
    assert second != first
    with connect() as cur:
        cur.execute("UPDATE frames SET reviewed = true WHERE video_id = ? AND idx = 4", [tiny["b"]])
    assert stats_revision(pid) != second
    assert project_stats(pid)["revision"] == stats_revision(pid)


def test_cache_answers_copies_and_follows_the_revision(tiny):
    pid = tiny["project"].id
    first = project_stats(pid)
    first["classes"].clear()                       # a caller mutating its copy
    again = project_stats(pid)
    assert again["boxes"] == 5 and len(again["classes"]) == 3
    assert again == project_stats(pid, use_cache=False)
    add_box(tiny["b"], 3, tiny["dog"], (1, 1, 20, 20))
    assert project_stats(pid)["boxes"] == 6


def test_active_hours_floor_timestamps(tiny):
    # 10:59:59.6 is still the 10 o'clock hour, not 11
    add_box(tiny["a"], 7, tiny["car"], (10, 10, 60, 60), author="cy", created="2024-01-01 10:59:59.6")
    add_box(tiny["a"], 8, tiny["car"], (10, 10, 60, 60), author="cy", created="2024-01-01 10:00:00")
    assert by(project_stats(tiny["project"].id)["authors"], "author")["cy"]["active_hours"] == 1
