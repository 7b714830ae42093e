"""Labels: boxes and tracks of one video, their edits, undo, review and propagation.

Every public write is saved at once (one transaction per call) and logged in `edits` with the
rows as they were before, so `undo_last` can put them back. A box's `rev` grows on each change;
`update_box` refuses a stale rev so two people on one frame don't silently overwrite each other.

Sources: "manual" and "imported" boxes are human decisions and trackers never replace them;
"tracked" and "interpolated" boxes are derived and get replaced when a track is re-propagated.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from app import framestore
from app.domain import Box
from app.errors import BadInput, Conflict, NotFound
from app.store import boxes as sql
from app.store.db import connect

log = logging.getLogger(__name__)

# How many frames a propagation tracks before it saves them (a Stop keeps every saved chunk).
CHUNK_FRAMES = 25
# Source strength for a frame's timeline colour and for merge conflicts, strongest first.
STRENGTH: tuple[str, ...] = ("manual", "imported", "tracked", "interpolated", "predicted")
STATUSES: tuple[str, ...] = (*STRENGTH, "none")


@dataclass(frozen=True)
class FrameView:
    """What the labeling page needs for one frame, read in one unit of work."""

    boxes: list[Box]
    revs: dict[int, int]
    reviewed: bool


@contextmanager
def _tx(cur: sql.Cur) -> Iterator[None]:
    cur.execute("BEGIN")
    try:
        yield
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


@dataclass
class _Log:
    """Collects what a change touched, for the undo payload."""

    boxes_before: dict[int, dict[str, Any]] = field(default_factory=dict)
    boxes_after: set[int] = field(default_factory=set)
    tracks_before: dict[int, dict[str, Any]] = field(default_factory=dict)
    tracks_created: set[int] = field(default_factory=set)
    frames_before: dict[int, bool] = field(default_factory=dict)

    def before(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            self.boxes_before.setdefault(int(r["id"]), {k: r[k] for k in sql.BOX_COLS})

    def track_before(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            if int(r["id"]) not in self.tracks_created:
                self.tracks_before.setdefault(int(r["id"]), dict(r))

    @property
    def empty(self) -> bool:
        return not (self.boxes_before or self.boxes_after or self.tracks_before or self.tracks_created
                    or self.frames_before)

    def payload(self, cur: sql.Cur, **extra: Any) -> dict[str, Any]:
        return {
            "boxes_before": list(self.boxes_before.values()),
            "boxes_after": {str(k): v for k, v in sql.current_revs(cur, self.boxes_after).items()},
            "tracks_before": list(self.tracks_before.values()),
            "tracks_created": sorted(self.tracks_created),
            "frames_before": {str(k): v for k, v in self.frames_before.items()},
            **extra,
        }


def _record(cur: sql.Cur, video: dict[str, Any], author: str | None, action: str, lg: _Log, **extra: Any) -> None:
    if not lg.empty:
        sql.insert_edit(cur, video["project_id"], video["id"], author, action, lg.payload(cur, **extra))


def _video(cur: sql.Cur, video_id: int) -> dict[str, Any]:
    v = sql.video_row(cur, video_id)
    if v is None:
        raise NotFound(f"no video {video_id}")
    if v["frame_count"] is None:
        v["frame_count"] = sql.frame_count(cur, video_id)
    return v


def _box(cur: sql.Cur, box_id: int) -> dict[str, Any]:
    row = sql.box_by_id(cur, box_id)
    if row is None:
        raise NotFound(f"box {box_id} no longer exists (deleted by an undo or another user?); reload the frame")
    return row


def _track(cur: sql.Cur, track_id: int) -> dict[str, Any]:
    row = sql.track_row(cur, track_id)
    if row is None:
        raise NotFound(f"no track {track_id}")
    return row


def _clean_xyxy(xyxy: Sequence[float], video: dict[str, Any]) -> tuple[float, float, float, float]:
    if len(xyxy) != 4:
        raise BadInput(f"a box needs 4 numbers x1, y1, x2, y2; got {list(xyxy)}")
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    w, h = video.get("width"), video.get("height")
    if w and h:
        x1, x2 = max(0.0, x1), min(float(w), x2)
        y1, y2 = max(0.0, y1), min(float(h), y2)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise BadInput(f"box {[round(v, 1) for v in xyxy]} is smaller than 1 pixel inside the {w}x{h} frame")
    return x1, y1, x2, y2


def _check_frame(video: dict[str, Any], idx: int) -> None:
    n = int(video["frame_count"] or 0)
    if not 0 <= idx < n:
        raise BadInput(f"frame {idx} is outside video {video['id']} (frames 0..{n - 1})")


def _drop_empty_tracks(cur: sql.Cur, track_ids: set[int], lg: _Log) -> None:
    for tid in track_ids:
        if not sql.track_rows(cur, tid):
            row = sql.track_row(cur, tid)
            if row is not None:
                lg.track_before([row])
                sql.delete_tracks(cur, [tid])


# ---- reads ----------------------------------------------------------------------------------

def videos(project_id: int) -> list[dict[str, Any]]:
    """Ready videos of a project to label: id, name, width, height, frame_count."""
    with connect() as cur:
        return sql.ready_videos(cur, project_id)


def frame_boxes(video_id: int, idx: int) -> list[Box]:
    """Visible boxes on one frame (class name in `label`), ordered by track."""
    with connect() as cur:
        return [sql.to_box(r) for r in sql.frame_rows(cur, video_id, idx)]


def frame_box_revs(video_id: int, idx: int) -> dict[int, int]:
    """{box id: rev} for one frame: pass the rev back to update_box as expected_rev."""
    with connect() as cur:
        return {r["id"]: int(r["rev"]) for r in sql.frame_rows(cur, video_id, idx)}


def frame_view(video_id: int, idx: int) -> FrameView:
    """Boxes, their revs and the reviewed flag of one frame."""
    with connect() as cur:
        rows = sql.frame_rows(cur, video_id, idx)
        reviewed = sql.frames_reviewed(cur, video_id, [idx]).get(idx, False)
    return FrameView([sql.to_box(r) for r in rows], {r["id"]: int(r["rev"]) for r in rows}, reviewed)


def timeline(video_id: int) -> list[str]:
    """Per frame, the strongest source among its boxes (see STATUSES), "none" when empty."""
    with connect() as cur:
        video = _video(cur, video_id)
        out = ["none"] * int(video["frame_count"] or 0)
        for f, status in sql.timeline(cur, video_id):
            if 0 <= f < len(out):
                out[f] = status
    return out


def reviewed_frames(video_id: int) -> set[int]:
    with connect() as cur:
        return sql.reviewed_frames(cur, video_id)


def tracks(video_id: int) -> list[dict[str, Any]]:
    """Tracks of a video: id, class_id, label, reviewed, first, last, boxes, manual."""
    with connect() as cur:
        return sql.tracks_of_video(cur, video_id)


def next_keyframe(video_id: int, idx: int, track_id: int | None = None) -> int | None:
    with connect() as cur:
        return sql.keyframe_after(cur, video_id, idx, track_id, forward=True)


def prev_keyframe(video_id: int, idx: int, track_id: int | None = None) -> int | None:
    with connect() as cur:
        return sql.keyframe_after(cur, video_id, idx, track_id, forward=False)


def next_unlabeled(video_id: int, idx: int) -> int | None:
    with connect() as cur:
        return sql.unlabeled_after(cur, video_id, idx)


def next_unreviewed(video_id: int, idx: int) -> int | None:
    with connect() as cur:
        return sql.unreviewed_after(cur, video_id, idx, forward=True)


def prev_unreviewed(video_id: int, idx: int) -> int | None:
    with connect() as cur:
        return sql.unreviewed_after(cur, video_id, idx, forward=False)


def next_track_start(video_id: int, idx: int) -> int | None:
    with connect() as cur:
        return sql.track_start_after(cur, video_id, idx)


# ---- box edits ------------------------------------------------------------------------------

def create_box(video_id: int, frame: int, class_id: int, xyxy: Sequence[float], author: str | None,
               track_id: int | None = None) -> Box:
    """Draw a manual keyframe box. Starts a new track unless `track_id` (continue that track) is given."""
    with connect() as cur:
        video = _video(cur, video_id)
        _check_frame(video, frame)
        x1, y1, x2, y2 = _clean_xyxy(xyxy, video)
        lg = _Log()
        with _tx(cur):
            if track_id is not None:
                track = _track(cur, track_id)
                if track["video_id"] != video_id:
                    raise BadInput(f"track {track_id} belongs to another video")
                if sql.track_rows(cur, track_id, after=frame - 1, upto=frame):
                    raise Conflict(f"track {track_id} already has a box on frame {frame}; move that box instead")
                class_id = track["class_id"]
            else:
                if not sql.class_in_project(cur, class_id, video["project_id"]):
                    raise BadInput(f"class {class_id} is not a class of this video's project")
                track_id = sql.insert_track(cur, {"video_id": video_id, "class_id": class_id, "created_by": author})
                lg.tracks_created.add(track_id)
            box_id = sql.insert_box(cur, {
                "video_id": video_id, "frame_idx": frame, "track_id": track_id, "class_id": class_id,
                "x1": x1, "y1": y1, "x2": x2, "y2": y2, "source": "manual", "keyframe": True, "author": author,
            })
            lg.boxes_after.add(box_id)
            _record(cur, video, author, "create_box", lg)
        return sql.to_box(_box(cur, box_id))


def update_box(box_id: int, xyxy: Sequence[float], *, expected_rev: int | None, author: str | None) -> Box:
    """Move/resize a box; it becomes a manual keyframe. A stale `expected_rev` raises Conflict."""
    with connect() as cur:
        row = _box(cur, box_id)
        video = _video(cur, row["video_id"])
        xyxy = _clean_xyxy(xyxy, video)
        lg = _Log()
        lg.before([row])
        with _tx(cur):
            rev = sql.update_box_geometry(cur, box_id, xyxy, expected_rev, author)
            if rev is None:
                raise Conflict(
                    f"box {box_id} on frame {row['frame_idx']} was changed by someone else since you loaded it; "
                    "the frame was reloaded, redo your change if it is still needed"
                )
            lg.boxes_after.add(box_id)
            _record(cur, video, author, "update_box", lg)
        return sql.to_box(_box(cur, box_id))


def delete_box(box_id: int, author: str | None, expected_rev: int | None = None) -> None:
    """Delete one box (its track goes too when it was the track's last box)."""
    with connect() as cur:
        row = _box(cur, box_id)
        if expected_rev is not None and int(row["rev"]) != expected_rev:
            raise Conflict(f"box {box_id} on frame {row['frame_idx']} was changed by someone else; not deleted")
        video = _video(cur, row["video_id"])
        lg = _Log()
        with _tx(cur):
            lg.before([row])
            sql.delete_boxes(cur, [box_id])
            _drop_empty_tracks(cur, {row["track_id"]}, lg)
            _record(cur, video, author, "delete_box", lg)


# ---- track edits ----------------------------------------------------------------------------

def set_track_class(track_id: int, class_id: int, author: str | None) -> None:
    """Change the class of a whole track (every box of it)."""
    with connect() as cur:
        track = _track(cur, track_id)
        video = _video(cur, track["video_id"])
        if not sql.class_in_project(cur, class_id, video["project_id"]):
            raise BadInput(f"class {class_id} is not a class of this video's project")
        lg = _Log()
        with _tx(cur):
            rows = sql.track_rows(cur, track_id)
            lg.before(rows)
            lg.track_before([track])
            sql.set_track_class(cur, track_id, class_id)
            lg.boxes_after.update(r["id"] for r in rows)
            _record(cur, video, author, "set_track_class", lg)


def end_track(track_id: int, frame: int, author: str | None) -> int:
    """The object is outside from `frame` on: delete the track's boxes on `frame` and later. Returns how many."""
    with connect() as cur:
        track = _track(cur, track_id)
        video = _video(cur, track["video_id"])
        lg = _Log()
        with _tx(cur):
            rows = sql.track_rows(cur, track_id, after=frame - 1)
            lg.before(rows)
            sql.delete_boxes(cur, [r["id"] for r in rows])
            _drop_empty_tracks(cur, {track_id}, lg)
            _record(cur, video, author, "end_track", lg, frame=frame)
        return len(rows)


def delete_track(track_id: int, author: str | None) -> int:
    """Delete a track and all its boxes. Returns the number of boxes deleted."""
    with connect() as cur:
        track = _track(cur, track_id)
        video = _video(cur, track["video_id"])
        lg = _Log()
        with _tx(cur):
            rows = sql.track_rows(cur, track_id)
            lg.before(rows)
            lg.track_before([track])
            sql.delete_boxes(cur, [r["id"] for r in rows])
            sql.delete_tracks(cur, [track_id])
            _record(cur, video, author, "delete_track", lg)
        return len(rows)


def merge_tracks(keep: int, other: int, author: str | None) -> dict[str, int]:
    """Move `other`'s boxes into `keep` and delete `other`.

    Where both have a box on a frame, the stronger source wins (manual first, see STRENGTH);
    on a tie `keep`'s box stays. Returns {"moved": n, "dropped": n}.
    """
    if keep == other:
        raise BadInput(f"cannot merge track {keep} with itself")
    with connect() as cur:
        tk, to = _track(cur, keep), _track(cur, other)
        if tk["video_id"] != to["video_id"]:
            raise BadInput(f"tracks {keep} and {other} are in different videos")
        video = _video(cur, tk["video_id"])
        lg = _Log()
        with _tx(cur):
            mine = {r["frame_idx"]: r for r in sql.track_rows(cur, keep)}
            theirs = sql.track_rows(cur, other)
            lg.before(list(mine.values()) + theirs)
            lg.track_before([to])
            drop, move = [], []
            for r in theirs:
                m = mine.get(r["frame_idx"])
                if m is None:
                    move.append(r["id"])
                elif STRENGTH.index(r["source"]) < STRENGTH.index(m["source"]):
                    drop.append(m["id"])
                    move.append(r["id"])
                else:
                    drop.append(r["id"])
            sql.delete_boxes(cur, drop)
            if move:
                sql.set_track_of_boxes(cur, move, keep, tk["class_id"])
            sql.delete_tracks(cur, [other])
            lg.boxes_after.update(move)
            _record(cur, video, author, "merge_tracks", lg, keep=keep, other=other)
        return {"moved": len(move), "dropped": len(drop)}


# ---- review ---------------------------------------------------------------------------------

def mark_frames_reviewed(video_id: int, idxs: Sequence[int], reviewed: bool = True, author: str | None = None) -> None:
    with connect() as cur:
        video = _video(cur, video_id)
        lg = _Log()
        with _tx(cur):
            lg.frames_before = sql.frames_reviewed(cur, video_id, idxs)
            sql.set_frames_reviewed(cur, video_id, idxs, reviewed)
            _record(cur, video, author, "review_frames", lg)


def mark_track_reviewed(track_id: int, reviewed: bool = True, author: str | None = None) -> None:
    with connect() as cur:
        track = _track(cur, track_id)
        video = _video(cur, track["video_id"])
        lg = _Log()
        with _tx(cur):
            lg.track_before([track])
            sql.set_track_reviewed(cur, track_id, reviewed)
            _record(cur, video, author, "review_track", lg)


def _predicted(cur: sql.Cur, ids: Sequence[int]) -> list[dict[str, Any]]:
    return [r for r in sql.boxes_by_ids(cur, ids) if r["source"] == "predicted"]


def accept_boxes(ids: Sequence[int], author: str | None = None) -> int:
    """Predicted boxes become manual keyframes. Other ids are ignored. Returns how many."""
    with connect() as cur:
        rows = _predicted(cur, ids)
        if not rows:
            return 0
        video = _video(cur, rows[0]["video_id"])
        lg = _Log()
        with _tx(cur):
            lg.before(rows)
            sql.set_source(cur, [r["id"] for r in rows], "manual", True, author)
            lg.boxes_after.update(r["id"] for r in rows)
            _record(cur, video, author, "accept_boxes", lg)
        return len(rows)


def reject_boxes(ids: Sequence[int], author: str | None = None) -> int:
    """Delete predicted boxes (other ids are ignored). Returns how many."""
    with connect() as cur:
        rows = _predicted(cur, ids)
        if not rows:
            return 0
        video = _video(cur, rows[0]["video_id"])
        lg = _Log()
        with _tx(cur):
            lg.before(rows)
            sql.delete_boxes(cur, [r["id"] for r in rows])
            _drop_empty_tracks(cur, {r["track_id"] for r in rows}, lg)
            _record(cur, video, author, "reject_boxes", lg)
        return len(rows)


def accept_all_above(video_id: int, threshold: float, author: str | None = None) -> int:
    """Accept every predicted box of a video with confidence >= threshold."""
    with connect() as cur:
        ids = sql.predicted_ids(cur, video_id, float(threshold))
    return accept_boxes(ids, author)


# ---- undo -----------------------------------------------------------------------------------

def undo_last(video_id: int, author: str | None) -> str | None:
    """Revert `author`'s last change on this video. Returns its action name, None when nothing is left.

    Refuses (Conflict) when someone changed the same boxes since: undo never clobbers their work.
    """
    with connect() as cur:
        with _tx(cur):
            last = sql.last_edit(cur, video_id, author)
            if last is None:
                return None
            edit_id, action, p = last
            after = {int(k): int(v) for k, v in p.get("boxes_after", {}).items()}
            now = sql.current_revs(cur, set(after) | {int(r["id"]) for r in p.get("boxes_before", [])})
            changed = [i for i, rev in after.items() if i in now and now[i] != rev]
            if changed:
                raise Conflict(f"cannot undo {action}: box {changed[0]} was changed since; undo that change first")
            sql.delete_boxes(cur, set(after) | set(now))
            for t in p.get("tracks_before", []):
                sql.delete_tracks(cur, [t["id"]])
                sql.insert_track(cur, t)
            # Restored rows keep their old rev, so the author's earlier edits still undo in order.
            for r in p.get("boxes_before", []):
                sql.insert_box(cur, r)
            for tid in p.get("tracks_created", []):
                if not sql.track_rows(cur, tid):
                    sql.delete_tracks(cur, [tid])
            frames = p.get("frames_before", {})
            for value in (True, False):
                idxs = [int(k) for k, v in frames.items() if bool(v) is value]
                if idxs:
                    sql.set_frames_reviewed(cur, video_id, idxs, value)
            sql.mark_undone(cur, edit_id)
            return action


# ---- propagation ----------------------------------------------------------------------------

def _bgr_reader(video_id: int) -> Callable[[int], Any]:
    return lambda i: framestore.read_bgr(video_id, i)


def propagate(video_id: int, track_ids: Sequence[int] | None, start_frame: int, n_frames: int | None, *,
              tracker: str | None = None, author: str | None = None,
              should_stop: Callable[[], bool] | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              chunk: int = CHUNK_FRAMES) -> dict[str, Any]:
    """Track boxes forward from `start_frame` for `n_frames` frames (None: to the end of the video).

    Tracks: `track_ids`, or every track with a box on `start_frame`. Each track stops before its
    next manual/imported box, which is never touched; its tracked/interpolated boxes in the frames
    the tracker covered are replaced (so propagating again after a correction redoes the rest).
    Where the tracker loses an object, its old derived boxes up to that stop are removed too.
    Boxes are saved every `chunk` frames; a stop (should_stop, or an exception such as a page
    rerun) keeps what was saved, and the whole run is one undo step.

    Returns {"tracks", "written", "replaced", "frames", "lost", "stopped"}.
    """
    from app import tracking

    tracker = tracker or tracking.DEFAULT_TRACKER
    with connect() as cur:
        video = _video(cur, video_id)
        _check_frame(video, start_frame)
        last = int(video["frame_count"]) - 1
        on_frame = {r["track_id"]: r for r in sql.frame_rows(cur, video_id, start_frame)}
        chosen = list(on_frame) if track_ids is None else [int(t) for t in track_ids]
        missing = [t for t in chosen if t not in on_frame]
        if missing:
            raise BadInput(f"track {missing[0]} has no box on frame {start_frame}; go to a frame where it has one")
        ends: dict[int, int] = {}
        for tid in chosen:
            stop = sql.next_protected_frame(cur, tid, start_frame)
            end = last if stop is None else stop - 1
            if n_frames is not None:
                end = min(end, start_frame + int(n_frames))
            if end > start_frame:
                ends[tid] = end
    result: dict[str, Any] = {"tracks": len(ends), "written": 0, "replaced": 0, "frames": 0,
                              "lost": [], "stopped": False}
    if not ends:
        return result
    starts = [sql.to_box(on_frame[t]) for t in ends]
    scale = framestore.scale_of(video_id)
    total = max(ends.values()) - start_frame
    w, h = float(video.get("width") or 1e9), float(video.get("height") or 1e9)

    lg = _Log()
    pending: dict[int, list[Box]] = {t: [] for t in ends}
    covered = dict.fromkeys(ends, start_frame)  # derived boxes in (start, covered] are replaced
    flushed = dict.fromkeys(ends, start_frame)
    written: dict[int, list[tuple[int, int]]] = {t: [] for t in ends}  # (frame, box id) saved so far
    retract: list[int] = []

    def flush() -> None:
        rows, delete_ids = [], list(retract)
        with connect() as cur, _tx(cur):
            for tid in ends:
                if covered[tid] > flushed[tid]:
                    old = sql.track_rows(cur, tid, after=flushed[tid], upto=covered[tid], sources=sql.DERIVED)
                    mine = {i for _, i in written[tid]}
                    old = [r for r in old if r["id"] not in mine]
                    lg.before(old)
                    delete_ids += [r["id"] for r in old]
                    result["replaced"] += len(old)
                    flushed[tid] = covered[tid]
                cls = on_frame[tid]["class_id"]
                for b in pending[tid]:
                    x1, y1, x2, y2 = max(0.0, b.x1), max(0.0, b.y1), min(w, b.x2), min(h, b.y2)
                    if x2 - x1 >= 1 and y2 - y1 >= 1:
                        rows.append({"video_id": video_id, "frame_idx": b.frame, "track_id": tid, "class_id": cls,
                                     "x1": x1, "y1": y1, "x2": x2, "y2": y2, "source": "tracked",
                                     "confidence": b.confidence, "outside": False, "keyframe": False,
                                     "author": author, "rev": 1})
            sql.delete_boxes(cur, delete_ids)
            ids = sql.insert_boxes_df(cur, rows)
        for r, i in zip(rows, ids, strict=True):
            written[r["track_id"]].append((r["frame_idx"], i))
        lg.boxes_after.update(ids)
        lg.boxes_after.difference_update(retract)
        result["written"] += len(ids) - len(retract)
        retract.clear()
        for p in pending.values():
            p.clear()

    done_upto = start_frame
    try:
        steps = tracking.track_steps(_bgr_reader(video_id), starts, start_frame, max(ends.values()),
                                     tracker=tracker, scale=scale, should_stop=should_stop)
        for step in steps:
            for tid, box in step.boxes.items():
                if tid in ends and step.frame <= ends[tid]:
                    pending[tid].append(box)
                    covered[tid] = step.frame
            for tid, drop in step.ended.items():
                if tid not in ends or step.frame > ends[tid]:
                    continue
                result["lost"].append(tid)
                keep = len(pending[tid]) - drop
                if keep < 0:  # some dropped boxes were saved in an earlier chunk: take them back
                    back = written[tid][keep:]
                    retract.extend(i for _, i in back)
                    del written[tid][keep:]
                    keep = 0
                del pending[tid][keep:]
                covered[tid] = ends[tid]  # the object is gone: its old derived boxes go too
            done_upto = step.frame
            if on_progress is not None:
                on_progress(done_upto - start_frame, total)
            if step.frame - start_frame and (step.frame - start_frame) % chunk == 0:
                flush()
        result["stopped"] = bool(should_stop and should_stop()) and done_upto < max(ends.values())
    finally:
        try:
            flush()
        finally:
            result["frames"] = done_upto - start_frame
            with connect() as cur:
                _record(cur, video, author, "propagate", lg, start=start_frame, tracker=tracker)
    log.info("propagated video %s from frame %s: %s", video_id, start_frame, result)
    return result


def interpolate_track(track_id: int, author: str | None) -> int:
    """Fill the frames between consecutive manual/imported boxes of a track by linear interpolation.

    Replaces the tracked/interpolated boxes there. Returns the number of boxes written.
    """
    from app.interpolate import interpolate

    with connect() as cur:
        track = _track(cur, track_id)
        video = _video(cur, track["video_id"])
        lg = _Log()
        with _tx(cur):
            rows = sql.track_rows(cur, track_id)
            keys = [r for r in rows if r["source"] not in sql.DERIVED]
            new: list[dict[str, Any]] = []
            old: list[dict[str, Any]] = []
            for a, b in zip(keys, keys[1:], strict=False):
                if b["frame_idx"] - a["frame_idx"] < 2:
                    continue
                old += [r for r in rows if a["frame_idx"] < r["frame_idx"] < b["frame_idx"]]
                for box in interpolate(sql.to_box(a), sql.to_box(b)):
                    new.append({"video_id": video["id"], "frame_idx": box.frame, "track_id": track_id,
                                "class_id": track["class_id"], "x1": box.x1, "y1": box.y1, "x2": box.x2,
                                "y2": box.y2, "source": "interpolated", "confidence": None, "outside": False,
                                "keyframe": False, "author": author, "rev": 1})
            lg.before(old)
            sql.delete_boxes(cur, [r["id"] for r in old])
            ids = sql.insert_boxes_df(cur, new)
            lg.boxes_after.update(ids)
            _record(cur, video, author, "interpolate_track", lg)
        return len(ids)


def fill_track(track_id: int, author: str | None, *, tracker: str | None = None, to_end: bool = True,
               should_stop: Callable[[], bool] | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Refill a track from its manual/imported keyframes with app.interpolate.fill_track.

    Between two keyframes: trackers run both ways from them, their centres are drift-corrected
    and blended, and the box size is interpolated between the keyframes' sizes. After the last
    keyframe (`to_end`): the tracker follows it to the end of the video, keeping its size, and
    stops where it loses the object. Every tracked/interpolated box of the track from its first
    keyframe on is replaced (after the last keyframe only when `to_end`); manual boxes are
    never touched. Nothing is written if should_stop fires. One undo step.

    Returns {"written", "replaced", "keyframes", "stopped"}.
    """
    from app import interpolate, tracking

    tracker = tracker or tracking.DEFAULT_TRACKER
    tracking.make_tracker(tracker)  # unknown name: BadInput before any work
    with connect() as cur:
        track = _track(cur, track_id)
        video = _video(cur, track["video_id"])
        keys = [sql.to_box(r) for r in sql.track_rows(cur, track_id) if r["source"] not in sql.DERIVED]
    result: dict[str, Any] = {"written": 0, "replaced": 0, "keyframes": len(keys), "stopped": False}
    if not keys:
        raise BadInput(f"track {track_id} has no manual box to fill from; draw one first")
    last = int(video["frame_count"]) - 1
    frames = [k.frame for k in keys]
    total = 2 * (frames[-1] - frames[0]) + (last - frames[-1] if to_end else 0)
    done = 0
    read = _bgr_reader(video["id"])

    def get_frame(i: int) -> Any:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(min(done, total), total)
        return read(i)

    boxes = interpolate.fill_track(get_frame, keys, last=last if to_end else None, tracker=tracker,
                                   scale=framestore.scale_of(video["id"]), should_stop=should_stop)
    if should_stop is not None and should_stop():
        result["stopped"] = True
        return result
    w, h = float(video.get("width") or 1e9), float(video.get("height") or 1e9)
    rows = []
    for b in boxes:
        x1, y1, x2, y2 = max(0.0, b.x1), max(0.0, b.y1), min(w, b.x2), min(h, b.y2)
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            rows.append({"video_id": video["id"], "frame_idx": b.frame, "track_id": track_id,
                         "class_id": track["class_id"], "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                         "source": "tracked", "confidence": None, "outside": False, "keyframe": False,
                         "author": author, "rev": 1})
    with connect() as cur:
        lg = _Log()
        with _tx(cur):
            old = sql.track_rows(cur, track_id, after=frames[0], upto=None if to_end else frames[-1],
                                 sources=sql.DERIVED)
            lg.before(old)
            sql.delete_boxes(cur, [r["id"] for r in old])
            ids = sql.insert_boxes_df(cur, rows)
            lg.boxes_after.update(ids)
            _record(cur, video, author, "fill_track", lg, tracker=tracker)
    result.update(written=len(ids), replaced=len(old))
    log.info("filled track %s from %d keyframes: %s", track_id, len(keys), result)
    return result
