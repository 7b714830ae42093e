"""Crash safety and concurrency of label writes on a real DuckDB file with real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import labels
from app.errors import Conflict
from app.projects import create_project
from app.store import db
from tests.conftest import ROOT

WRITER = """
import sys
from app import labels
vid, cls = int(sys.argv[1]), int(sys.argv[2])
i = 0
while True:
    b = labels.create_box(vid, i % 40, cls, (10 + i % 50, 10, 60 + i % 50, 80), author="writer")
    print(b.id, flush=True)   # acknowledged: the call returned
    i += 1
"""


def _video(project_id: int, frames: int = 40) -> int:
    with db.connect() as cur:
        return int(cur.execute(
            "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count, duration, codec) "
            "VALUES (?, 'v', 'ready', 320, 240, 10.0, ?, ?, 'test') RETURNING id", [project_id, frames, frames / 10],
        ).fetchone()[0])


def test_sigkill_of_the_writing_process_loses_no_acknowledged_box(data_dir: Path) -> None:
    p = create_project("crash", ["thing"])
    vid = _video(p.id)
    db.release()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(vid), str(p.classes[0].id)], cwd=ROOT,
                            env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    acked: list[int] = []
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip().isdigit():
            acked.append(int(line))
    proc.send_signal(signal.SIGKILL)   # mid-write: no shutdown hook, no checkpoint
    proc.wait(timeout=10)
    acked += [int(x) for x in proc.stdout.read().split() if x.isdigit()]
    assert len(acked) >= 60
    with db.connect() as cur:
        stored = {r[0] for r in cur.execute("SELECT id FROM boxes WHERE video_id = ?", [vid]).fetchall()}
        edits = cur.execute("SELECT count(*) FROM edits WHERE author = 'writer'").fetchone()[0]
    assert set(acked) <= stored
    assert edits >= len(acked)


def test_concurrent_sessions_lose_no_update_and_stale_edits_are_refused(data_dir: Path) -> None:
    p = create_project("team", ["thing"])
    vid = _video(p.id)
    cls = p.classes[0].id
    errors: list[BaseException] = []
    made: list[int] = []
    lock = threading.Lock()

    def session(n: int) -> None:
        try:
            for i in range(15):
                b = labels.create_box(vid, (n * 15 + i) % 40, cls, (n, i, n + 30, i + 30), author=f"user{n}")
                with lock:
                    made.append(b.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.connect() as cur:
        assert cur.execute("SELECT count(*) FROM boxes WHERE video_id = ?", [vid]).fetchone()[0] == len(made) == 150

    # two people load the same box; the second edit, based on the old revision, is refused
    box = labels.frame_boxes(vid, 0)[0]
    rev = labels.frame_box_revs(vid, 0)[box.id]
    labels.update_box(box.id, (1, 1, 50, 50), expected_rev=rev, author="ana")
    with pytest.raises(Conflict, match="changed by someone else"):
        labels.update_box(box.id, (5, 5, 60, 60), expected_rev=rev, author="bob")
    [after] = [b for b in labels.frame_boxes(vid, 0) if b.id == box.id]
    assert (after.x1, after.y1, after.x2, after.y2) == (1, 1, 50, 50)
