"""app/ingest.py: uploads -> rows + frame store, through the job contract; refusals leave nothing."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app import framestore, ingest, jobstate
from app.errors import BadInput, Conflict, NotFound, TooLarge
from app.jobctx import LocalContext
from app.projects import create_project
from app.store.db import connect

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CROSSING = SHARED / "otb_crossing" / "crossing_h264.mp4"
DATUMARO = SHARED / "datumaro_format_fixtures" / "cvat_dataset" / "test.mp4"
OTB_IMGS = sorted((SHARED / "otb_crossing" / "img").glob("*.jpg"))


@pytest.fixture
def project(data_dir: Path):
    return create_project("ingest test")


def rows(sql: str, args: list | None = None) -> list[tuple]:
    with connect() as cur:
        return cur.execute(sql, args or []).fetchall()


def assert_nothing_left(data_dir: Path) -> None:
    assert rows("SELECT id, name FROM videos") == []
    assert rows("SELECT count(*) FROM frames") == [(0,)]
    for sub in ("videos", "uploads"):
        folder = data_dir / sub
        left = [p.name for p in folder.iterdir() if p.name != ".staging"] if folder.exists() else []
        staged = list((folder / ".staging").iterdir()) if (folder / ".staging").exists() else []
        assert left == [] and staged == [], f"{sub} holds {left + staged}"


def test_ingest_video_with_stride_and_max_side(project, data_dir: Path) -> None:
    [video] = ingest.ingest_now(project.id, [("crossing.mp4", CROSSING)], stride=2, max_side=180)
    assert video["status"] == "ready" and video["kind"] == "video"
    assert (video["width"], video["height"], video["work_width"], video["work_height"]) == (360, 240, 180, 120)
    assert (video["frame_count"], video["stride"], video["codec"]) == (60, 2, "h264")
    assert video["fps"] == 30.0
    frames = rows("SELECT idx, source_idx, ts, width, height FROM frames WHERE video_id = ? ORDER BY idx",
                  [video["id"]])
    assert len(frames) == 60
    assert frames[1] == (1, 2, pytest.approx(2 / 30, abs=1e-5), 360, 240)
    assert framestore.scale_of(video["id"]) == 2.0
    assert framestore.read_bgr(video["id"], 59).shape == (120, 180, 3)
    assert (data_dir / "uploads" / str(video["id"]) / "crossing.mp4").read_bytes() == CROSSING.read_bytes()
    assert CROSSING.exists(), "the caller's file must never be moved"
    assert not (data_dir / "videos" / f"{video['id']}.tmp").exists()
    assert ingest.thumbnails(video["id"], 4) == [0, 20, 39, 59]
    assert [v["id"] for v in ingest.list_videos(project.id)] == [video["id"]]


def test_zip_and_loose_images_become_image_sets(project, tmp_path: Path) -> None:
    z = tmp_path / "frames.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, img in enumerate(OTB_IMGS[:12]):
            zf.write(img, f"seq/frame_{i}.jpg")  # natural order: frame_2 before frame_10
        zf.writestr("seq/notes.txt", "ignored")
    videos = ingest.ingest_now(project.id, [("frames.zip", z), ("a.jpg", OTB_IMGS[0]), ("b.jpg", OTB_IMGS[1])])
    by_name = {v["name"]: v for v in videos}
    assert set(by_name) == {"frames.zip", "a and 1 more"}
    zipped = by_name["frames.zip"]
    assert (zipped["kind"], zipped["frame_count"], zipped["status"]) == ("images", 12, "ready")
    names = [r[0] for r in rows("SELECT name FROM frames WHERE video_id = ? ORDER BY idx", [zipped["id"]])]
    assert names == [f"seq/frame_{i}.jpg" for i in range(12)]
    assert framestore.read_jpeg(zipped["id"], 10) == OTB_IMGS[10].read_bytes()
    assert by_name["a and 1 more"]["frame_count"] == 2


def test_through_the_job_queue(project, data_dir: Path) -> None:
    """The web-side path: start_ingest submits jobs; reconcile() records them."""
    queue = jobstate.InlineQueue()
    [job_id] = ingest.start_ingest(queue, project.id, [("clip.mp4", DATUMARO)], author="ann")
    jobstate.reconcile(queue)
    job = jobstate.get_job(job_id)
    assert job["state"] == "done", job
    assert job["progress"]["done"] == 30
    video = ingest.list_videos(project.id)[0]
    assert (video["status"], video["frame_count"], video["created_by"], video["job_id"]) == ("ready", 30, "ann", job_id)


def test_staged_upload_is_moved(project, data_dir: Path) -> None:
    with open(DATUMARO, "rb") as fh:
        staged = ingest.stage_upload("my clip.mp4", fh)
    assert staged.is_relative_to(data_dir / "uploads" / ".staging")
    [(vid, _, params)] = ingest.prepare_ingest(project.id, [("my clip.mp4", staged)])
    assert not staged.exists() and not staged.parent.exists()
    assert params["sources"] == [f"uploads/{vid}/my_clip.mp4"]
    assert ingest.get_video(vid)["status"] == "ingesting"


def test_failed_and_cancelled_jobs_leave_nothing(project, data_dir: Path, tmp_path: Path) -> None:
    # passes the quick checks (the first frames decode) but is truncated further on
    data = CROSSING.read_bytes()
    moov = data.find(b"moov")
    assert 0 < moov < 100, "crossing_h264.mp4 is expected to have its index first (faststart)"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BadInput, match="truncated"):
        ingest.ingest_now(project.id, [("cut.mp4", cut)])
    assert_nothing_left(data_dir)

    [(vid, job_id, params)] = ingest.prepare_ingest(project.id, [("c.mp4", CROSSING)])
    ctx = LocalContext(job_id)
    ctx.stop_requested = True
    result = ingest.run_ingest(params, ctx)
    assert result["state"] == "cancelled"
    ingest.record_ingest({"id": job_id, "kind": "ingest", "params": params}, result)
    assert_nothing_left(data_dir)

    [(vid, job_id, params)] = ingest.prepare_ingest(project.id, [("c.mp4", CROSSING)])
    ingest.run_ingest(params, LocalContext(job_id))
    ingest.fail_ingest({"id": job_id, "kind": "ingest", "params": params}, "worker lost")
    assert_nothing_left(data_dir)


def _bad_uploads(tmp: Path) -> dict[str, Path]:
    (tmp / "notes.txt").write_text("hello")
    (tmp / "text.mp4").write_text("not a video " * 100)
    (tmp / "random.mov").write_bytes(os.urandom(5000))
    (tmp / "empty.mkv").write_bytes(b"")
    (tmp / "fake.png").write_text("not a png")
    with zipfile.ZipFile(tmp / "slip.zip", "w") as zf:
        zf.writestr("../../evil.jpg", b"x")
    with zipfile.ZipFile(tmp / "textonly.zip", "w") as zf:
        zf.writestr("readme.txt", b"x")
    (tmp / "broken.zip").write_bytes(b"PK\x03\x04garbage")
    return {p.name: p for p in tmp.iterdir()}


BAD = {
    "notes.txt": (BadInput, "unsupported file type .txt"),
    "text.mp4": (BadInput, "not a readable video"),
    "random.mov": (BadInput, "not a readable video"),
    "empty.mkv": (BadInput, "empty"),
    "fake.png": (BadInput, "not a readable image"),
    "slip.zip": (BadInput, "outside"),
    "textonly.zip": (BadInput, "no images"),
    "broken.zip": (BadInput, "not a readable zip"),
}


def test_bad_uploads_are_refused_before_anything_is_written(project, data_dir: Path, tmp_path: Path) -> None:
    files = _bad_uploads(tmp_path)
    for name, (exc, message) in BAD.items():
        staged = ingest.stage_upload(name, files[name].read_bytes())
        # a good file in the same batch must not be half-ingested either
        with pytest.raises(exc, match=message):
            ingest.prepare_ingest(project.id, [("ok.mp4", DATUMARO), (name, staged)])
        assert not staged.exists()
        assert_nothing_left(data_dir)
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_names_limits_and_quota(project, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Conflict, match="appears twice"):
        ingest.prepare_ingest(project.id, [("a.mp4", DATUMARO), ("a.mp4", CROSSING)])
    assert_nothing_left(data_dir)
    ingest.ingest_now(project.id, [("a.mp4", DATUMARO)])
    with pytest.raises(Conflict, match="already has a video named 'a.mp4'"):
        ingest.prepare_ingest(project.id, [("b.mp4", CROSSING), ("a.mp4", CROSSING)])
    assert [r[0] for r in rows("SELECT name FROM videos")] == ["a.mp4"]

    monkeypatch.setenv("TPOD_MAX_VIDEO_FRAMES", "50")
    with pytest.raises(TooLarge, match="120 frames .* over the limit of 50"):
        ingest.prepare_ingest(project.id, [("c.mp4", CROSSING)])
    assert ingest.ingest_now(project.id, [("c.mp4", CROSSING)], stride=3)[0]["frame_count"] == 40

    monkeypatch.setenv("TPOD_MAX_UPLOAD_MB", "1")
    big = SHARED / "opencv_vtest" / "vtest.avi"
    with pytest.raises(TooLarge, match="over the upload limit of 1 MB"):
        ingest.prepare_ingest(project.id, [("vtest.avi", big)])
    with pytest.raises(TooLarge):
        ingest.stage_upload("vtest.avi", big.read_bytes())

    monkeypatch.setenv("TPOD_PROJECT_MAX_VIDEOS", "3")
    with pytest.raises(TooLarge, match="limit of 3"):
        ingest.prepare_ingest(project.id, [("d.mp4", DATUMARO), ("e.mp4", DATUMARO)])
    assert len(ingest.list_videos(project.id)) == 2
    assert sorted(p.name for p in (data_dir / "uploads").iterdir() if p.name != ".staging") == sorted(
        str(v["id"]) for v in ingest.list_videos(project.id))

    with pytest.raises(BadInput, match="stride"):
        ingest.prepare_ingest(project.id, [("f.mp4", DATUMARO)], stride=0)
    with pytest.raises(BadInput, match="time range"):
        ingest.prepare_ingest(project.id, [("f.mp4", DATUMARO)], start_s=5, end_s=2)


def test_delete_video_removes_only_that_video(project, data_dir: Path) -> None:
    a, b = ingest.ingest_now(project.id, [("a.mp4", DATUMARO), ("b.mp4", DATUMARO)])
    with connect() as cur:
        cls = cur.execute("INSERT INTO label_classes (project_id, name, color) VALUES (?, 'car', '#ff0000') "
                          "RETURNING id", [project.id]).fetchone()[0]
        for vid in (a["id"], b["id"]):
            tid = cur.execute("INSERT INTO tracks (video_id, class_id) VALUES (?, ?) RETURNING id",
                              [vid, cls]).fetchone()[0]
            cur.execute("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source) "
                        "VALUES (?, 0, ?, ?, 1, 1, 5, 5, 'manual')", [vid, tid, cls])
    ingest.delete_video(a["id"])
    with pytest.raises(NotFound):
        ingest.get_video(a["id"])
    for table, col in (("frames", "video_id"), ("boxes", "video_id"), ("tracks", "video_id")):
        assert rows(f"SELECT {col}, count(*) FROM {table} GROUP BY {col}") == [(b["id"], 30 if table == "frames" else 1)]
    assert not framestore.video_dir(a["id"]).exists() and framestore.video_dir(b["id"]).exists()
    assert not (data_dir / "uploads" / str(a["id"])).exists()
    with pytest.raises(NotFound):
        ingest.delete_video(a["id"])


def test_record_after_delete_cleans_up(project, data_dir: Path) -> None:
    """A video deleted while its job ran: recording the late result removes the orphan files."""
    [(vid, job_id, params)] = ingest.prepare_ingest(project.id, [("a.mp4", DATUMARO)])
    result = ingest.run_ingest(params, LocalContext(job_id))
    ingest.delete_video(vid)
    framestore.video_dir(vid).mkdir(parents=True)  # pretend the worker finished after the delete
    ingest.record_ingest({"id": job_id, "kind": "ingest", "params": params}, result)
    assert_nothing_left(data_dir)


def test_image_set_of_different_sizes_records_per_frame_size(project, tmp_path: Path) -> None:
    import cv2

    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((40, 60, 3), np.uint8))
    [video] = ingest.ingest_now(project.id, [("big.jpg", OTB_IMGS[0]), ("small.png", small)],
                                image_set_name="mixed")
    assert video["name"] == "mixed"
    sizes = rows("SELECT name, width, height FROM frames WHERE video_id = ? ORDER BY idx", [video["id"]])
    assert sizes == [("big.jpg", 360, 240), ("small.png", 60, 40)]
    assert framestore.frame_size(video["id"], 1) == (60, 40)
    [scaled] = ingest.ingest_now(project.id, [("big.jpg", OTB_IMGS[0]), ("small.png", small)],
                                 image_set_name="mixed small", max_side=30)
    assert [framestore.frame_scale(scaled["id"], i) for i in (0, 1)] == [12.0, 2.0]


def test_too_many_files_in_one_upload_are_refused(data_dir, monkeypatch) -> None:
    import cv2
    import numpy as np

    from app import ingest, projects
    from app.errors import TooLarge
    from app.store import db

    monkeypatch.setenv("TPOD_MAX_UPLOAD_FILES", "3")
    project = projects.create_project("many", ["a"])
    files = []
    for i in range(4):
        path = data_dir.parent / f"img{i}.png"
        cv2.imwrite(str(path), np.full((8, 8, 3), i * 40, np.uint8))
        files.append((path.name, path))
    with pytest.raises(TooLarge, match="TPOD_MAX_UPLOAD_FILES"):
        ingest.prepare_ingest(project.id, files)
    with db.connect() as cur:
        assert cur.execute("SELECT count(*) FROM videos").fetchone()[0] == 0
    assert len(ingest.prepare_ingest(project.id, files[:3])) == 1  # three loose images: one image set
