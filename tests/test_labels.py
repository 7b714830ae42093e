"""Label storage and operations on a real frame store (OTB Crossing frames), real trackers."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from app import labels
from app.errors import BadInput, Conflict
from app.projects import create_project
from app.store import db

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OTB = DATA / "otb_crossing"


def otb_gt(frame: int) -> tuple[float, float, float, float]:
    """Ground-truth xyxy of the pedestrian on 0-based frame `frame`."""
    line = (OTB / "groundtruth_rect.txt").read_text().splitlines()[frame]
    x, y, w, h = (float(v) for v in line.replace(",", "\t").split())
    return (x, y, x + w, y + h)


def make_video(project_id: int, images: list[Path], name: str = "clip", work_width: int | None = None) -> int:
    """A ready video: a videos row, frames rows and the frame store, as ingest would leave them."""
    from app import framestore

    first = cv2.imread(str(images[0]))
    h, w = first.shape[:2]
    with db.connect() as cur:
        vid = int(cur.execute(
            "INSERT INTO videos (project_id, name, status, width, height, fps, frame_count, duration, codec) "
            "VALUES (?, ?, 'ready', ?, ?, 30.0, ?, ?, 'mjpeg') RETURNING id",
            [project_id, name, w, h, len(images), len(images) / 30.0],
        ).fetchone()[0])
        cur.execute(
            "INSERT INTO frames (video_id, idx, source_idx, ts, width, height) "
            "SELECT ?, i, i, i / 30.0, ?, ? FROM range(?) t(i)", [vid, w, h, len(images)]
        )
    out = framestore.video_dir(vid) / "frames"
    out.mkdir(parents=True, exist_ok=True)
    ww = work_width or w
    wh = round(h * ww / w)
    for i, src in enumerate(images):
        img = cv2.imread(str(src))
        if ww != w:
            img = cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"{i:06d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    meta = {"width": w, "height": h, "work_width": ww, "work_height": wh, "fps": 30.0,
            "frames": [[i, i / 30.0] for i in range(len(images))]}
    (framestore.video_dir(vid) / "meta.json").write_text(json.dumps(meta))
    return vid


@pytest.fixture
def otb(data_dir):
    """(video id, person class id, car class id) on the first 40 OTB Crossing frames."""
    project = create_project("crossing", ["person", "car"])
    vid = make_video(project.id, sorted((OTB / "img").glob("*.jpg"))[:40])
    return vid, project.classes[0].id, project.classes[1].id


def test_create_read_and_timeline(otb):
    vid, person, car = otb
    b = labels.create_box(vid, 3, person, otb_gt(3), "ann")
    assert (b.source, b.keyframe, b.label, b.frame) == ("manual", True, "person", 3)
    assert b.track_id is not None and b.id is not None
    # continuing the selected track on another frame keeps the track and its class
    b2 = labels.create_box(vid, 5, car, otb_gt(5), "ann", track_id=b.track_id)
    assert (b2.track_id, b2.class_id) == (b.track_id, person)
    with pytest.raises(Conflict, match="already has a box on frame 5"):
        labels.create_box(vid, 5, person, otb_gt(5), "ann", track_id=b.track_id)
    other = labels.create_box(vid, 3, car, (10, 10, 40, 30), "ann")
    assert other.track_id != b.track_id
    boxes = labels.frame_boxes(vid, 3)
    assert [x.id for x in boxes] == [b.id, other.id]
    assert labels.frame_box_revs(vid, 3) == {b.id: 1, other.id: 1}
    tl = labels.timeline(vid)
    assert len(tl) == 40 and tl[3] == "manual" and tl[5] == "manual" and tl[4] == "none"
    assert labels.next_keyframe(vid, 3) == 5 and labels.prev_keyframe(vid, 5) == 3
    assert labels.next_keyframe(vid, 3, track_id=other.track_id) is None
    assert labels.next_unlabeled(vid, 2) == 4
    assert labels.next_track_start(vid, 0) == 3 and labels.next_track_start(vid, 3) is None


@pytest.mark.parametrize("xyxy, match", [
    ((5, 5, 5.5, 40), "smaller than 1 pixel"),
    ((400, 5, 500, 40), "smaller than 1 pixel"),  # entirely right of the 360 px frame
    ((1, 2, 3), "4 numbers"),
])
def test_create_box_refuses_bad_geometry(otb, xyxy, match):
    vid, person, _ = otb
    with pytest.raises(BadInput, match=match):
        labels.create_box(vid, 0, person, xyxy, "ann")


def test_create_box_clips_and_checks_frame(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, (350, 200, 300, 260), "ann")  # corners swapped, runs off the bottom
    assert (b.x1, b.y1, b.x2, b.y2) == (300, 200, 350, 240)
    with pytest.raises(BadInput, match="frame 40 is outside"):
        labels.create_box(vid, 40, person, (1, 1, 20, 20), "ann")


def test_update_makes_manual_keyframe_and_stale_rev_conflicts(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, otb_gt(0), "ann")
    labels.propagate(vid, [b.track_id], 0, 3, tracker="csrt", author="ann")
    tracked = labels.frame_boxes(vid, 2)[0]
    assert tracked.source == "tracked" and not tracked.keyframe
    rev = labels.frame_box_revs(vid, 2)[tracked.id]
    moved = labels.update_box(tracked.id, (200, 150, 220, 200), expected_rev=rev, author="bob")
    assert (moved.source, moved.keyframe, moved.x1) == ("manual", True, 200)
    with pytest.raises(Conflict, match="changed by someone else"):
        labels.update_box(tracked.id, (201, 150, 221, 200), expected_rev=rev, author="ann")
    assert labels.frame_boxes(vid, 2)[0].x1 == 200


def test_undo_reverts_own_changes_in_order(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, (10, 10, 50, 50), "ann")
    labels.update_box(b.id, (20, 20, 60, 60), expected_rev=1, author="ann")
    labels.create_box(vid, 0, person, (100, 100, 150, 150), "bob")
    labels.delete_box(b.id, "ann")
    assert [x.label for x in labels.frame_boxes(vid, 0)] == ["person"]
    assert labels.undo_last(vid, "ann") == "delete_box"
    restored = labels.frame_boxes(vid, 0)[0]
    assert (restored.id, restored.x1, restored.track_id) == (b.id, 20, b.track_id)
    assert labels.undo_last(vid, "ann") == "update_box"
    assert labels.frame_boxes(vid, 0)[0].x1 == 10
    assert labels.undo_last(vid, "ann") == "create_box"
    assert [x.x1 for x in labels.frame_boxes(vid, 0)] == [100]  # bob's box stays
    assert labels.tracks(vid)[0]["id"] != b.track_id  # ann's track went with its only box
    assert labels.undo_last(vid, "ann") is None


def test_undo_refuses_to_clobber_someone_elses_change(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, (10, 10, 50, 50), "ann")
    labels.update_box(b.id, (20, 20, 60, 60), expected_rev=1, author="ann")
    labels.update_box(b.id, (30, 30, 70, 70), expected_rev=2, author="bob")
    with pytest.raises(Conflict, match="changed since"):
        labels.undo_last(vid, "ann")
    assert labels.undo_last(vid, "bob") == "update_box"
    assert labels.undo_last(vid, "ann") == "update_box"
    assert labels.frame_boxes(vid, 0)[0].x1 == 10


def test_propagate_on_real_clip_writes_tracked_boxes_in_bulk(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, otb_gt(0), "ann")
    seen: list[tuple[int, int]] = []
    res = labels.propagate(vid, None, 0, 30, tracker="csrt", author="ann", on_progress=lambda d, t: seen.append((d, t)))
    assert res["tracks"] == 1 and res["written"] >= 25 and not res["stopped"]
    assert seen[-1][1] == 30
    track = [x for f in range(1, 31) for x in labels.frame_boxes(vid, f)]
    assert all(x.source == "tracked" and x.track_id == b.track_id and x.class_id == person for x in track)
    from app.domain import iou
    ious = [iou((x.x1, x.y1, x.x2, x.y2), otb_gt(x.frame)) for x in track]
    assert sum(ious) / len(ious) > 0.5  # it follows the pedestrian, not just writes rows
    # one edit, undone in one step
    assert labels.undo_last(vid, "ann") == "propagate"
    assert all(not labels.frame_boxes(vid, f) for f in range(1, 31))


def test_propagate_stops_at_manual_keyframe_and_repropagation_replaces(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, otb_gt(0), "ann")
    res = labels.propagate(vid, [b.track_id], 0, None, tracker="csrt", author="ann", chunk=7)
    assert res["written"] > 10
    first_run = {x.frame: x.id for f in range(40) for x in labels.frame_boxes(vid, f)}
    # correct frame 12: a manual keyframe now splits the track
    fix = labels.frame_boxes(vid, 12)[0]
    manual = labels.update_box(fix.id, otb_gt(12), expected_rev=1, author="ann")
    # re-propagate from 5: it replaces 6..11 and never touches the manual box on 12 or beyond
    res2 = labels.propagate(vid, None, 5, None, tracker="csrt", author="ann")
    assert res2["replaced"] == 6 and res2["written"] <= 6
    after = {x.frame: x for f in range(40) for x in labels.frame_boxes(vid, f)}
    assert after[12] == manual
    assert all(after[f].id != first_run[f] for f in range(6, 12) if f in after)
    assert all(after[f].id == first_run[f] for f in range(13, 40) if f in first_run)
    assert labels.next_keyframe(vid, 0, track_id=b.track_id) == 12


def test_propagate_stop_keeps_saved_chunks(otb):
    vid, person, _ = otb
    labels.create_box(vid, 0, person, otb_gt(0), "ann")
    progress: list[int] = []
    res = labels.propagate(vid, None, 0, None, tracker="csrt", author="ann", chunk=5,
                           should_stop=lambda: len(progress) >= 12, on_progress=lambda d, t: progress.append(d))
    assert res["stopped"] and res["frames"] == 12
    frames = sorted(x.frame for f in range(40) for x in labels.frame_boxes(vid, f))
    assert frames == list(range(13))


def test_propagate_needs_box_on_start_frame(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 4, person, otb_gt(4), "ann")
    with pytest.raises(BadInput, match="no box on frame 0"):
        labels.propagate(vid, [b.track_id], 0, 5, tracker="csrt", author="ann")


def test_interpolate_between_manual_keyframes(otb):
    vid, person, _ = otb
    b = labels.create_box(vid, 0, person, (10, 10, 30, 50), "ann")
    labels.create_box(vid, 4, person, (50, 10, 70, 50), "ann", track_id=b.track_id)
    labels.create_box(vid, 5, person, (52, 10, 72, 50), "ann", track_id=b.track_id)
    assert labels.interpolate_track(b.track_id, "ann") == 3
    mid = labels.frame_boxes(vid, 2)[0]
    assert (mid.source, mid.x1, mid.x2) == ("interpolated", 30, 50)
    assert labels.timeline(vid)[:6] == ["manual", "interpolated", "interpolated", "interpolated", "manual", "manual"]
    # again: replaces, does not duplicate
    assert labels.interpolate_track(b.track_id, "ann") == 3
    assert len(labels.frame_boxes(vid, 2)) == 1


def test_track_actions(otb):
    vid, person, car = otb
    a = labels.create_box(vid, 0, person, (10, 10, 30, 50), "ann")
    labels.interpolate_track(a.track_id, "ann")
    for f in (1, 2, 3):
        labels.create_box(vid, f, person, (10 + f, 10, 30 + f, 50), "ann", track_id=a.track_id)
    labels.set_track_class(a.track_id, car, "ann")
    assert {x.label for f in range(4) for x in labels.frame_boxes(vid, f)} == {"car"}
    assert labels.end_track(a.track_id, 2, "ann") == 2
    assert [f for f in range(4) if labels.frame_boxes(vid, f)] == [0, 1]
    # merge: other track overlaps on frame 1 with a weaker box -> keep's manual box stays
    o = labels.create_box(vid, 5, person, (40, 10, 60, 50), "ann")
    labels.create_box(vid, 1, person, (90, 10, 99, 50), "ann", track_id=o.track_id)
    labels.propagate(vid, [o.track_id], 5, 2, tracker="csrt", author="ann")
    res = labels.merge_tracks(a.track_id, o.track_id, "ann")
    assert res["dropped"] == 1
    assert {x.track_id for f in range(8) for x in labels.frame_boxes(vid, f)} == {a.track_id}
    assert labels.frame_boxes(vid, 1)[0].x1 == 11
    assert len(labels.tracks(vid)) == 1
    assert labels.undo_last(vid, "ann") == "merge_tracks"
    assert len(labels.tracks(vid)) == 2
    labels.mark_track_reviewed(a.track_id)
    assert [t["reviewed"] for t in labels.tracks(vid)] == [True, False]
    assert labels.delete_track(a.track_id, "ann") == 2
    with pytest.raises(BadInput, match="itself"):
        labels.merge_tracks(o.track_id, o.track_id, "ann")


def test_review_and_predicted_boxes(otb):
    vid, person, _ = otb
    labels.mark_frames_reviewed(vid, [0, 1, 2], author="ann")
    assert labels.reviewed_frames(vid) == {0, 1, 2}
    assert labels.next_unreviewed(vid, 0) == 3 and labels.prev_unreviewed(vid, 3) is None
    assert labels.undo_last(vid, "ann") == "review_frames"
    assert labels.reviewed_frames(vid) == set()
    with db.connect() as cur:  # what a prelabel job leaves: predicted boxes on their own tracks
        for i, conf in enumerate((0.9, 0.6, 0.3)):
            t = cur.execute("INSERT INTO tracks (video_id, class_id) VALUES (?, ?) RETURNING id", [vid, person]).fetchone()[0]
            cur.execute("INSERT INTO boxes (video_id, frame_idx, track_id, class_id, x1, y1, x2, y2, source, confidence) "
                        "VALUES (?, 7, ?, ?, ?, 10, ?, 40, 'predicted', ?)", [vid, t, person, 10 + 50 * i, 40 + 50 * i, conf])
    assert labels.timeline(vid)[7] == "predicted"
    assert labels.accept_all_above(vid, 0.5, "ann") == 2
    boxes = labels.frame_boxes(vid, 7)
    assert [x.source for x in boxes] == ["manual", "manual", "predicted"]
    assert labels.reject_boxes([x.id for x in boxes], "ann") == 1  # only the predicted one goes
    assert len(labels.frame_boxes(vid, 7)) == 2 and len(labels.tracks(vid)) == 2
    with db.connect() as cur:
        n = cur.execute("SELECT count(*) FROM edits WHERE video_id = ? AND author = 'ann'", [vid]).fetchone()[0]
    assert n == 3
