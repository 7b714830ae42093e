"""Stored stats bins (boxes.bin_* and bins_rev): the figures from stored bins equal the figures
from binning every box inline, whoever wrote the boxes and whatever happened to them since."""
from __future__ import annotations

import random

import duckdb
import pytest

from app import labels
from app.projects import create_project
from app.stats import project_stats
from app.store import boxes as box_sql
from app.store import db
from app.store.db import connect
from app.store.schema import MIGRATIONS
from app.store.stats import fill_bins

pytestmark = pytest.mark.usefixtures("fresh_stats")


def boxes(video_id: int, classes: list[int], n: int, seed: int, frames: int = 40) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x1, y1 = rng.uniform(-40, 650), rng.uniform(-40, 490)
        w, h = rng.choice([0.0, -2.0, 0.5, 3.0, rng.uniform(1, 300), rng.uniform(1, 2000)]), rng.uniform(-1, 300)
        out.append({"video_id": video_id, "frame_idx": rng.randrange(frames), "track_id": 50_000 + 1000 * seed + i,
                    "class_id": rng.choice(classes), "x1": x1, "y1": y1, "x2": x1 + w, "y2": y1 + h,
                    "source": rng.choice(["manual", "tracked", "imported"]), "outside": rng.random() < 0.05,
                    "author": rng.choice(["ann", None])})
    return out


def add_video(cur, project_id: int, name: str, width: int | None, height: int | None, frames: int = 40) -> int:
    vid = cur.execute("INSERT INTO videos (project_id, name, status, width, height, frame_count) "
                      "VALUES (?, ?, 'ready', ?, ?, ?) RETURNING id", [project_id, name, width, height, frames]).fetchone()[0]
    cur.execute("INSERT INTO frames (video_id, idx, source_idx, ts, width, height) SELECT ?, i, i, i, "
                "CASE WHEN ? THEN 200 + 7 * i END, CASE WHEN ? THEN 100 + 3 * i END FROM range(?) t(i)",
                [vid, width is None, width is None, frames])
    return int(vid)


def stale_count(cur) -> tuple[int, int]:
    return cur.execute("SELECT count(*) FILTER (WHERE bins_rev IS DISTINCT FROM rev), count(*) FROM boxes").fetchall()[0]


def inline_stats(project_id: int, **filters) -> dict:
    """The stats with every stored bin ignored (each box binned in the query), bins restored after."""
    with connect() as cur:
        cur.execute("CREATE TABLE kept AS SELECT id, bins_rev FROM boxes")
        cur.execute("UPDATE boxes SET bins_rev = NULL")
    try:
        return project_stats(project_id, use_cache=False, **filters)
    finally:
        with connect() as cur:
            cur.execute("UPDATE boxes SET bins_rev = k.bins_rev FROM kept k WHERE k.id = boxes.id")
            cur.execute("DROP TABLE kept")


def test_bulk_inserts_store_bins_and_they_match_inline_binning():
    p = create_project("bins", ["car", "person"])
    classes = [c.id for c in p.classes]
    with connect() as cur:
        a = add_video(cur, p.id, "a.mp4", 640, 480)
        imgs = add_video(cur, p.id, "imgs", None, None)
        box_sql.insert_boxes_df(cur, boxes(a, classes, 400, seed=1))
        box_sql.insert_boxes_df(cur, boxes(imgs, classes, 300, seed=2))
        assert stale_count(cur) == (0, 700)
    stored = project_stats(p.id, use_cache=False)
    assert stored["boxes"] > 600 and any(w["kind"] == "degenerate" for w in stored["warnings"])
    assert stored == inline_stats(p.id)
    for filters in ({"video_ids": [imgs]}, {"class_ids": [classes[1]]}):
        assert project_stats(p.id, use_cache=False, **filters) == inline_stats(p.id, **filters)


def test_single_box_edits_stay_exact_until_a_bulk_write_stores_them():
    p = create_project("edits", ["car", "person"])
    classes = [c.id for c in p.classes]
    with connect() as cur:
        a = add_video(cur, p.id, "a.mp4", 640, 480)
        box_sql.insert_boxes_df(cur, boxes(a, classes, 200, seed=3))
    before = project_stats(p.id)
    box = labels.create_box(a, 2, classes[0], (0, 0, 600, 400), author="ann")       # big, touching the border
    moved = labels.update_box(box.id, (100, 100, 102, 300), expected_rev=None, author="ann")  # now tiny
    labels.set_track_class(moved.track_id, classes[1], author="ann")  # a rev bump that keeps the bins
    after = project_stats(p.id)
    assert after == project_stats(p.id, use_cache=False) == inline_stats(p.id)
    tiny = {w["kind"]: w["count"] for w in after["warnings"]}["tiny"]
    assert tiny == {w["kind"]: w["count"] for w in before["warnings"]}["tiny"] + 1
    with connect() as cur:
        assert stale_count(cur)[0] == 1                  # the moved box: binned inline meanwhile
        box_sql.insert_boxes_df(cur, boxes(a, classes, 5, seed=4))
        assert stale_count(cur)[0] == 0                  # a bulk write of its video stored it
        cur.execute("UPDATE boxes SET x2 = x2 + 50, rev = rev + 1 WHERE id % 2 = 0")  # raw SQL
    assert project_stats(p.id) == project_stats(p.id, use_cache=False) == inline_stats(p.id)


def test_migration_stores_the_bins_of_an_older_data_dir(data_dir):
    path = data_dir / "tpod.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute(MIGRATIONS[0][1])
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO projects (name) VALUES ('old')")
    pid = conn.execute("SELECT id FROM projects").fetchone()[0]
    conn.execute("INSERT INTO label_classes (project_id, name, color) VALUES (?, 'car', '#f00')", [pid])
    cid = conn.execute("SELECT id FROM label_classes").fetchone()[0]
    vid = add_video(conn, pid, "a.mp4", 320, 240)
    rows = boxes(vid, [cid], 150, seed=5)
    conn.executemany("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, outside, "
                     "author) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [list(r.values()) for r in rows])
    conn.close()
    assert db.schema_version(path) == MIGRATIONS[-1][0]
    with connect() as cur:
        assert stale_count(cur) == (0, 150)
        fill_bins(cur)                                    # nothing left to do: a no-op
        assert stale_count(cur) == (0, 150)
    assert project_stats(pid, use_cache=False) == inline_stats(pid)
