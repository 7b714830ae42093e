"""Per-video partial stats: after each kind of label change the cached answer (which counts again
only the changed videos) must equal a full recount, and only the changed video is counted again."""
from __future__ import annotations

import random

import pytest

from app import labels
from app import stats as stats_mod
from app.projects import create_project
from app.stats import project_stats
from app.store import stats as stats_sql
from app.store.db import connect

pytestmark = pytest.mark.usefixtures("fresh_stats")


def add_video(project_id: int, name: str, width: int | None, height: int | None, frames: int) -> int:
    with connect() as cur:
        vid = cur.execute(
            "INSERT INTO videos (project_id, name, kind, status, width, height, fps, frame_count) "
            "VALUES (?, ?, ?, 'ready', ?, ?, 30, ?) RETURNING id",
            [project_id, name, "video" if width else "images", width, height, frames],
        ).fetchone()[0]
        # image sets (no video size) keep one size per image
        cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts, width, height, reviewed) "
                    "SELECT ?, i, i, i / 30.0, CASE WHEN ? THEN 300 + 10 * i END, CASE WHEN ? THEN 200 + 5 * i END, "
                    "i % 9 = 0 FROM range(?) t(i)", [vid, width is None, width is None, frames])
    return int(vid)


def raw_boxes(video_id: int, frames: int, classes: list[int], n: int, seed: int) -> None:
    """Boxes the labeling API would refuse (degenerate, far outside, sub-pixel) next to ordinary ones."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        x1, y1 = rng.uniform(-50, 700), rng.uniform(-50, 500)
        w, h = rng.choice([0.0, -3.0, 0.5, 2.0, rng.uniform(1, 300), rng.uniform(1, 3000)]), rng.uniform(-2, 200)
        rows.append([video_id, rng.randrange(frames), 10_000 * video_id + i, rng.choice(classes), x1, y1, x1 + w,
                     y1 + h, rng.choice(["manual", "tracked", "predicted"]), rng.random() < 0.05,
                     rng.choice(["ann", "bob", None]), f"2024-01-0{rng.randrange(1, 4)} {rng.randrange(24):02d}:30:00"])
    with connect() as cur:
        cur.executemany(
            "INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, outside, author, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@pytest.fixture
def project():
    p = create_project("partials", ["car", "person", "dog"])
    classes = [c.id for c in p.classes]
    vids = [add_video(p.id, "a.mp4", 640, 480, 120), add_video(p.id, "b.mp4", 1280, 720, 80),
            add_video(p.id, "imgs", None, None, 30)]
    for k, vid in enumerate(vids):
        raw_boxes(vid, 30 if k == 2 else 80, classes, 300, seed=k)
    return {"id": p.id, "videos": vids, "classes": classes}


def assert_same(pid: int, **filters) -> dict:
    cached = project_stats(pid, **filters)
    assert cached == project_stats(pid, use_cache=False, **filters)
    stats_mod.settle()   # partials a first call builds in the background: counted before the next step
    return cached


@pytest.fixture
def recounted(monkeypatch):
    """The video ids each box pass of the partial path was asked for (None = all)."""
    calls: list = []
    real = stats_sql.box_aggregates

    def spy(cur, project_id, video_ids, class_ids, **kwargs):
        if kwargs.get("by_video"):
            calls.append(None if video_ids is None else sorted(video_ids))
        return real(cur, project_id, video_ids, class_ids, **kwargs)

    monkeypatch.setattr(stats_sql, "box_aggregates", spy)
    return calls


def test_every_kind_of_change_matches_a_full_recount(project, recounted, monkeypatch):
    monkeypatch.setattr(stats_mod, "MIN_GAP_FRAMES", 5)
    pid, (a, b, imgs), (car, _person, dog) = project["id"], project["videos"], project["classes"]
    first = assert_same(pid)   # one plain pass answers; the partials are built in the background
    assert first["boxes"] > 800

    box = labels.create_box(a, 3, car, (10, 10, 60, 50), author="ann")
    assert_same(pid)           # waits for those partials, then counts the edited video only
    assert recounted == [None, [a]]

    labels.update_box(box.id, (20, 20, 200, 90), expected_rev=None, author="bob")
    assert_same(pid)
    labels.set_track_class(box.track_id, dog, author="ann")      # bumps rev, not updated_at
    assert assert_same(pid)["classes"][2]["boxes"] == first["classes"][2]["boxes"] + 1
    labels.mark_frames_reviewed(b, [1, 2, 3], author="ann")
    assert_same(pid)
    assert recounted[-1] == [b]
    labels.mark_frames_reviewed(b, [2], reviewed=False, author="ann")
    labels.mark_frames_reviewed(b, [4], author="ann")            # same count of reviewed frames, moved
    assert_same(pid)
    labels.undo_last(b, "ann")
    labels.undo_last(a, "ann")                                   # restores rows with their old rev
    assert_same(pid)
    labels.delete_box(box.id, author="bob")
    after = assert_same(pid)
    assert after["boxes"] == first["boxes"]

    n = len(recounted)
    assert project_stats(pid) == after and len(recounted) == n   # nothing changed: nothing counted
    with connect() as cur:
        cur.execute("UPDATE boxes SET x2 = x2 + 5, updated_at = current_timestamp, rev = rev + 1 "
                    "WHERE video_id = ? AND frame_idx = 0", [imgs])
    assert_same(pid)
    assert recounted[-1] == [imgs]


def test_filters_videos_removed_and_added(project, recounted):
    pid, (a, b, imgs), (car, person, dog) = project["id"], project["videos"], project["classes"]
    for filters in ({}, {"video_ids": [a, imgs]}, {"class_ids": [person]}, {"video_ids": [b], "class_ids": [car, dog]},
                    {"video_ids": []}):
        assert_same(pid, **filters)
    labels.create_box(b, 5, person, (100, 100, 180, 300), author="cy")
    assert_same(pid, class_ids=[person])
    assert recounted[-1] == [b]
    n = len(recounted)
    assert_same(pid, video_ids=[a, imgs])                        # b is not in it: nothing counted
    assert len(recounted) == n and recounted.count([a, imgs]) == 1
    c = add_video(pid, "c.mp4", 320, 240, 40)
    raw_boxes(c, 40, project["classes"], 50, seed=9)
    assert_same(pid)
    assert recounted[-1] == [b, c]                               # b changed since this selection's last call
    with connect() as cur:
        cur.execute("DELETE FROM boxes WHERE video_id = ?", [a])
        cur.execute("DELETE FROM frames WHERE video_id = ?", [a])
        cur.execute("DELETE FROM videos WHERE id = ?", [a])
    gone = assert_same(pid)
    assert [v["video_id"] for v in gone["per_video"]] == [b, imgs, c]


def test_partials_and_full_pass_agree_on_nan_and_infinite_bins(project):
    """Zero-size boxes give NaN/infinite aspect bins in SQL; summing partials must not split them."""
    pid, (a, b, _), (car, *_) = project["id"], project["videos"], project["classes"]
    with connect() as cur:
        cur.execute("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source) VALUES "
                    "(?, 1, 900001, ?, 5, 5, 5, 5, 'manual'), (?, 1, 900002, ?, 5, 5, 5, 5, 'manual'), "
                    "(?, 2, 900003, ?, 5, 5, 9, 5, 'manual')", [a, car, b, car, b, car])
    s = assert_same(pid)
    degenerate = next(w for w in s["warnings"] if w["kind"] == "degenerate")
    assert degenerate["count"] >= 3
