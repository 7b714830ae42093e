"""Label: draw a box once, let a tracker carry it through the video, fix what drifted.

Layout: video / class pickers; the frame on the canvas (left) with navigation and a timeline
strip; this frame's review state, its tracks, Propagate and its predictions (right); settings
that do not change from frame to frame (tracker, how far to propagate, stepping mode, bulk
acceptance of predictions) in the sidebar. Every drawing change is saved at once.

Speed: a frame step reruns only the `_workspace` fragment, so it holds only what changes with
the frame: every widget costs ~1-3 ms of server time and one more message the browser renders
before it draws the frame (benchmarks/bench_next_frame.py). Per step it reads the frame's boxes
and one revision figure; the frame goes to the browser at display size (app/display.py) and the
next few are prefetched; the video list, timeline and tracks come from caches keyed by revision,
and every write here calls `cv.changed(video)`. Section times are logged at DEBUG ("tpod.label").
"""
from __future__ import annotations

import json
import logging
import time

import streamlit as st

from app import canvas, display, labels
from app.errors import TpodError
from app.tracking import DEFAULT_TRACKER, TRACKERS
from pages.components import canvas as cv
from pages.components.common import page_setup, show_error

CANVAS_WIDTHS = (680, 800, 960, 1280)  # 680 fits next to the side panel in a 1400 px window
MAX_H = 620
PREFETCH = 4  # frames made ahead in the stepping direction
ss = st.session_state
log = logging.getLogger("tpod.label")
_t0 = _tl = time.perf_counter()
_times: dict[str, float] = {}


def _lap(name: str) -> None:
    global _tl
    now = time.perf_counter()
    _times[name] = (now - _tl) * 1000
    _tl = now


ctx = page_setup("Label", require_project=True)
_lap("setup")
ss["label.user"] = ctx.user
project = ctx.project
classes = list(project.classes)
if not classes:
    st.info("This project has no label classes yet: add some on the **Projects** page.")
    st.stop()
project_rev = cv.project_revision(project.id)
videos = cv.ready_videos(project.id, project_rev)
if not videos:
    st.info("No ready video in this project yet: upload one on the **Upload** page.")
    st.stop()


# ---- navigation state -----------------------------------------------------------------------

def _wrote(keep_msg: bool = False) -> None:
    """After every label write: the video's cached figures are stale, and so is an older message."""
    cv.changed(ss["label.video"])
    if not keep_msg:
        ss.pop("label.msg", None)


def _goto(i: int | None) -> None:
    """Callback-safe frame change; a message stays until the next one."""
    ss.pop("label.msg", None)
    if i is None:
        ss["label.msg"] = ("info", "Nothing further in that direction.")
        return
    ss["label.frame"] = max(0, min(int(i), ss["label.n"] - 1))


def _step(d: int) -> None:
    vid, f = ss["label.video"], ss["label.frame"]
    if ss.get("label.only_unreviewed"):
        _goto(labels.next_unreviewed(vid, f) if d > 0 else labels.prev_unreviewed(vid, f))
    else:
        _goto(f + d)


def _review_and_next() -> None:
    labels.mark_frames_reviewed(ss["label.video"], [ss["label.frame"]], True, author=ss.get("label.user"))
    _wrote()
    _step(1)


def _from_widget(key: str, shown: int) -> None:
    """Slider / number box moved by the user (a stale echo of the frame they showed is ignored)."""
    if ss.get(key) is not None and int(ss[key]) != shown:
        _goto(ss[key])


top = st.columns([3, 3, 1.2])
vid_ids = [v["id"] for v in videos]
if ss.get("label.video") not in vid_ids:
    ss["label.video"] = vid_ids[0]
video_id = top[0].selectbox("Video", vid_ids, key="label.video",
                            format_func=lambda i: next(f"{v['name']} ({v['frame_count']} frames)"
                                                       for v in videos if v["id"] == i))
video = next(v for v in videos if v["id"] == video_id)
n = max(1, int(video["frame_count"] or 1))
if ss.get("label.n") != n or ss.get("label.loaded_video") != video_id:
    ss["label.n"], ss["label.loaded_video"] = n, video_id
    ss["label.frame"] = 0
class_ids = [c.id for c in classes]
if ss.get("label.class") not in class_ids:
    ss["label.class"] = class_ids[0]
cls_id = top[1].radio("Class for new boxes", class_ids, key="label.class", horizontal=True,
                      format_func=lambda i: next(c.name for c in classes if c.id == i))
cls = next(c for c in classes if c.id == cls_id)
max_w = top[2].selectbox("Canvas width", CANVAS_WIDTHS, key="label.canvas_w",
                         help="Wider screens: pick a larger canvas (or collapse the sidebar).")


with st.sidebar:
    st.subheader("Propagation", anchor=False, divider="gray")
    st.selectbox("Tracker", TRACKERS, index=TRACKERS.index(DEFAULT_TRACKER), key="label.tracker",
                 help="CSRT is the most accurate; MedianFlow is several times faster on smooth motion.")
    pc = st.columns([1, 1], vertical_alignment="bottom")
    to_end = pc[1].toggle("To the end", key="label.to_end")
    pc[0].number_input("Frames", 1, max(1, n - 1), value=min(30, max(1, n - 1)), key="label.n_frames",
                       disabled=to_end)
    st.radio("Tracks", ["Selected track", "All on this frame"], key="label.prop_which", horizontal=True)
    st.subheader("Stepping", anchor=False, divider="gray")
    st.toggle("Only unreviewed", key="label.only_unreviewed", help="Prev/Next skip frames already marked reviewed.")
    st.subheader("Predictions", anchor=False, divider="gray")
    thr = st.slider("Accept all of this video at or above", 0.0, 1.0, 0.5, 0.05, key="label.threshold")
    statuses_now, _ = cv.timeline(video_id, cv.video_revision(project_rev, video_id))
    if st.button("Accept all above", key="label.accept_all", disabled="predicted" not in statuses_now,
                 help="Pre-labels from a model (Models page) become manual boxes."):
        k = labels.accept_all_above(video_id, thr, ss.get("label.user"))
        _wrote()
        ss["label.msg"] = ("success", f"Accepted {k} predicted boxes.")
        st.rerun()

st.caption("Drag on the frame to draw a box (class above). Turn on ✏️ **Edit** in the canvas toolbar to "
           "select, move, resize or delete boxes; everything is saved at once. Dashed = tracked/interpolated.")
_lap("pickers")
log.debug("label full rerun setup %.1f ms: %s", (time.perf_counter() - _t0) * 1000,
          ", ".join(f"{k} {v:.1f}" for k, v in _times.items()))


@st.fragment
def _canvas(view: labels.FrameView, frame: int, sel_track: int | None, scale: float, cw: int, ch: int) -> None:
    """The frame and its boxes; saves what the user drew. Its own fragment: after each new frame
    the component sends its drawing back once (an echo, never saved), and that rerun then costs
    this caption and the canvas, not the whole workspace. A save reruns the page."""
    colors = {c.id: c.color for c in classes}
    sig = json.dumps([video_id, frame, sel_track, cw,
                      canvas.boxes_to_fabric(view.boxes, scale=scale, colors=colors, selected_track=sel_track)])
    if ss.get("label.sig") != sig:
        # A new drawing for the canvas: json_data keeps the previous one for a rerun, and that
        # one is recognised (and never saved) by its older generation number.
        ss["label.sig"] = sig
        ss["label.gen"] = ss.get("label.gen", 0) + 1
    gen = ss["label.gen"]
    drawing = canvas.boxes_to_fabric(view.boxes, scale=scale, colors=colors, generation=gen, selected_track=sel_track)
    try:
        background = display.display_jpeg(video_id, frame, cw)
    except TpodError as exc:
        show_error(exc)
        st.stop()
    # Also keeps the canvas toolbar (it floats above the canvas) off the widgets above.
    W, H = int(video["width"] or 1), int(video["height"] or 1)
    st.caption(f"{video['name']} · frame {frame} · {W}×{H} px shown at {scale:.0%}")
    json_data = cv.frame_canvas(background=background, drawing=drawing, width=cw, height=ch, label=cls.name,
                                stroke=cls.color)
    if canvas.drawing_generation(json_data) != gen:
        return
    drawn = canvas.fabric_to_boxes(json_data, scale=scale)
    actions = canvas.diff(view.boxes, drawn, tol=0.5 / scale, min_new=canvas.MIN_DRAWN_PX / scale)
    strays = sum(1 for d in drawn if d.box_id is None) - sum(1 for a in actions if a.kind == "create")
    if not actions and not strays:
        return
    errors = []
    for a in actions:
        try:
            if a.kind == "create":
                b = labels.create_box(video_id, frame, cls.id, a.xyxy, ctx.user,
                                      track_id=sel_track if ss.get("label.continue") else None)
                ss["label.track"] = b.track_id
            elif a.kind == "update":
                labels.update_box(a.box_id, a.xyxy, expected_rev=view.revs.get(a.box_id), author=ctx.user)
            else:
                labels.delete_box(a.box_id, ctx.user, expected_rev=view.revs.get(a.box_id))
        except TpodError as exc:
            errors.append(str(exc))
    _wrote()
    if errors:
        ss["label.msg"] = ("error", " · ".join(errors))
    ss["label.sig"] = None  # always resend: the canvas must show what is stored now
    st.rerun()


@st.fragment
def _workspace() -> None:
    """Canvas, navigation and side panel. A frame step or a drawing reruns only this (not the
    sidebar, pickers, video list); every write ends in a whole-page rerun."""
    global _t0, _tl
    _t0 = _tl = time.perf_counter()
    _times.clear()
    frame = int(ss["label.frame"])
    video_rev = cv.video_revision(cv.project_revision(project.id), video_id)
    _lap("revision")
    try:
        view = labels.frame_view(video_id, frame)
    except TpodError as exc:
        show_error(exc)
        st.stop()
    _lap("frame_view")
    on_frame_tracks = [b.track_id for b in view.boxes]
    if ss.get("label.track") not in on_frame_tracks:
        ss["label.track"] = on_frame_tracks[0] if on_frame_tracks else None
    sel_track = ss.get("label.track")

    # Not popped: the canvas echoes its new drawing back once after a save, and that rerun would
    # wipe a message shown only once.
    msg = ss.get("label.msg")
    if msg:
        getattr(st, msg[0])(msg[1])

    left, right = st.columns([3, 1.1], gap="small")

    # ---- canvas -----------------------------------------------------------------------------------
    with left:
        W, H = int(video["width"] or 1), int(video["height"] or 1)
        scale = min(max_w / W, MAX_H / H)
        cw, ch = round(W * scale), round(H * scale)
        back = frame < ss.get("label.shown_frame", -1)
        ss["label.shown_frame"] = frame
        _canvas(view, frame, sel_track, scale, cw, ch)
        ahead = range(frame - 1, frame - 1 - PREFETCH, -1) if back else range(frame + 1, min(n, frame + 1 + PREFETCH))
        display.prefetch(video_id, ahead, cw)
        _lap("canvas")

        bar = st.container(horizontal=True)
        bar.button("−10", key="label.back10", on_click=_goto, args=(frame - 10,), shortcut="Shift+Left")
        bar.button("Prev", key="label.prev", on_click=_step, args=(-1,), shortcut="Left")
        bar.button("Next", key="label.next", on_click=_step, args=(1,), shortcut="Right")
        bar.button("+10", key="label.fwd10", on_click=_goto, args=(frame + 10,), shortcut="Shift+Right")
        bar.button("Prev key", key="label.prevkey", shortcut="Shift+K", help="Previous keyframe (of the selected track)",
                      on_click=lambda: _goto(labels.prev_keyframe(video_id, frame, sel_track)))
        bar.button("Next key", key="label.nextkey", shortcut="K", help="Next keyframe (of the selected track)",
                      on_click=lambda: _goto(labels.next_keyframe(video_id, frame, sel_track)))
        bar.button("Track start", key="label.nexttrack", shortcut="T", help="Next frame where a track starts",
                      on_click=lambda: _goto(labels.next_track_start(video_id, frame)))
        bar.button("Unlabeled", key="label.nextempty", shortcut="U", help="Next frame without boxes",
                      on_click=lambda: _goto(labels.next_unlabeled(video_id, frame)))
        bar.button("Undo", key="label.undo", shortcut="Z", help="Undo your last change on this video")
        # The frame lives in plain state ("label.frame"), not in a widget. A rerun the canvas asks
        # for while a step is in flight carries the widgets' values from before the step: a slider
        # keyed to the frame would set it back (a lost key press). So the slider and the number
        # box get one key per frame, and their callbacks act only on a value the user changed.
        nav2 = st.columns([5, 1.3])
        skey, nkey = f"label.slider.{video_id}.{frame}", f"label.num.{video_id}.{frame}"
        nav2[0].slider("Frame", 0, n - 1, value=frame, key=skey, on_change=_from_widget, args=(skey, frame),
                       label_visibility="collapsed")
        nav2[1].number_input("Frame", 0, n - 1, value=frame, key=nkey, on_change=_from_widget, args=(nkey, frame),
                             label_visibility="collapsed")
        bar.button("Unreviewed", key="label.nextunrev", shortcut="N", help="Next frame not marked reviewed",
                       on_click=lambda: _goto(labels.next_unreviewed(video_id, frame)))
        _lap("canvas+nav")
        # No current-frame bar: the frame slider shows the position, and an image that is the same
        # on every frame keeps its URL (content-hashed), so a step neither re-encodes nor refetches it.
        st.image(cv.timeline_png(video_id, video_rev, cw),
                 caption="Timeline: green manual · blue imported · orange tracked · yellow interpolated · "
                         "purple predicted · grey empty; dark underline = reviewed")
        _lap("timeline")

        if ss.get("label.undo"):
            try:
                done = labels.undo_last(video_id, ctx.user)
                _wrote()
                ss["label.msg"] = ("success", f"Undid {done.replace('_', ' ')}.") if done else ("info", "Nothing to undo.")
            except TpodError as exc:
                ss["label.msg"] = ("error", str(exc))
            ss["label.sig"] = None
            st.rerun()

    # ---- side panel -----------------------------------------------------------------------------
    with right:
        st.markdown(f"**Frame {frame} / {n - 1}** · {len(view.boxes)} boxes · "
                    f"{'✅ reviewed' if view.reviewed else 'not reviewed'}")
        if st.button("Mark reviewed" if not view.reviewed else "Unmark reviewed", key="label.review", shortcut="M",
                     width="stretch"):
            labels.mark_frames_reviewed(video_id, [frame], not view.reviewed, author=ctx.user)
            _wrote()
            st.rerun()
        st.button("Reviewed, next frame", key="label.review_next", shortcut="Shift+M", on_click=_review_and_next,
                  width="stretch")

        tracker = ss.get("label.tracker", DEFAULT_TRACKER)
        to_end, n_frames = bool(ss.get("label.to_end")), int(ss.get("label.n_frames") or min(30, max(1, n - 1)))
        which = ss.get("label.prop_which", "Selected track")
        st.caption(f"{which} · {tracker.upper()} · {'to the end' if to_end else f'next {n_frames} frames'} "
                   "(settings in the sidebar)")
        go = st.button("Propagate ▶", key="label.propagate", type="primary", disabled=not view.boxes,
                       width="stretch")
        if ss.pop("label.propagating", False) and not go:
            st.warning("Propagation stopped; the frames done so far are saved.")
        if go:
            ss["label.propagating"] = True
            st.button("⏹ Stop", key="label.stop", width="stretch")
            bar = st.progress(0.0, text="Tracking…")
            try:
                res = labels.propagate(
                    video_id, [sel_track] if which == "Selected track" and sel_track is not None else None, frame,
                    None if to_end else n_frames, tracker=tracker, author=ctx.user,
                    on_progress=lambda d, t: bar.progress(min(1.0, d / max(1, t)), text=f"Tracking… {d}/{t} frames"),
                )
                lost = f" · lost: {', '.join(f'#{t}' for t in res['lost'])}" if res["lost"] else ""
                ss["label.msg"] = ("success", f"Propagated {res['tracks']} track(s) over {res['frames']} frames: "
                                              f"{res['written']} boxes written, {res['replaced']} replaced{lost}.")
            except TpodError as exc:
                ss["label.msg"] = ("error", str(exc))
            _wrote(keep_msg=True)
            ss.pop("label.propagating", None)
            ss["label.sig"] = None
            st.rerun()

        if view.boxes:
            by_track = {b.track_id: b for b in view.boxes}
            st.selectbox("Track", on_frame_tracks, key="label.track",
                         format_func=lambda t: f"#{t} {by_track[t].label} · {by_track[t].source}")
            tb = by_track[ss["label.track"]]
            tid = tb.track_id
            st.toggle("New box continues this track", key="label.continue",
                      help="Off: each drawn box starts a new track. On: a box drawn on a frame where this track has "
                           "none becomes its box (e.g. the object came back after an occlusion).")
            acts = st.container(horizontal=True)
            if acts.button("Delete box", key="label.del_box", help="Only this frame's box of the track"):
                try:
                    labels.delete_box(tb.id, ctx.user, expected_rev=view.revs.get(tb.id))
                except TpodError as exc:
                    ss["label.msg"] = ("error", str(exc))
                _wrote(keep_msg=True)
                st.rerun()
            if acts.button("End here", key="label.end", help="The object is gone from this frame on: "
                                                                   "deletes the track's boxes here and later"):
                labels.end_track(tid, frame, ctx.user)
                _wrote()
                st.rerun()
            if acts.button("Interpolate", key="label.interp", help="Fill between this track's manual keyframes "
                                                                    "with straight lines (smooth motion)"):
                k = labels.interpolate_track(tid, ctx.user)
                _wrote()
                ss["label.msg"] = ("success", f"Interpolated {k} boxes on track #{tid}.")
                st.rerun()
            if acts.button("Fill ▶", key="label.fill", help="Refill this track from its manual keyframes: the tracker "
                           "(sidebar) runs both ways between them and on from the last one to the end; sizes come "
                           "from the keyframes. Add a keyframe where it drifts, then Fill again."):
                bar = st.progress(0.0, text="Tracking…")
                try:
                    r = labels.fill_track(tid, ctx.user, tracker=ss.get("label.tracker", DEFAULT_TRACKER),
                                          on_progress=lambda d, t: bar.progress(min(1.0, d / max(1, t)),
                                                                                text=f"Tracking… {d}/{t} frames"))
                    ss["label.msg"] = ("success", f"Filled track #{tid} from {r['keyframes']} keyframe(s): "
                                                  f"{r['written']} boxes written, {r['replaced']} replaced.")
                except TpodError as exc:
                    ss["label.msg"] = ("error", str(exc))
                _wrote(keep_msg=True)
                ss["label.sig"] = None
                st.rerun()
            if acts.button("Delete track", key="label.del_track"):
                k = labels.delete_track(tid, ctx.user)
                _wrote()
                ss["label.msg"] = ("success", f"Deleted track #{tid} ({k} boxes). Undo brings it back.")
                st.rerun()
            # Behind a toggle, not an expander: an expander's widgets would run on every step.
            if st.toggle("More track actions", key="label.more"):
                new_cls = st.selectbox("Class", class_ids, index=class_ids.index(tb.class_id) if tb.class_id in class_ids
                                       else 0, key="label.track_class",
                                       format_func=lambda i: next(c.name for c in classes if c.id == i))
                if st.button("Set class of whole track", key="label.set_class"):
                    try:
                        labels.set_track_class(tid, new_cls, ctx.user)
                    except TpodError as exc:
                        ss["label.msg"] = ("error", str(exc))
                    _wrote(keep_msg=True)
                    st.rerun()
                others = [t["id"] for t in cv.tracks(video_id, video_rev) if t["id"] != tid]
                if others:
                    other = st.selectbox("Merge into this track", others, key="label.merge_other",
                                         format_func=lambda t: f"#{t}")
                    if st.button("Merge", key="label.merge"):
                        try:
                            r = labels.merge_tracks(tid, other, ctx.user)
                            ss["label.msg"] = ("success", f"Merged #{other} into #{tid}: {r['moved']} boxes moved, "
                                                          f"{r['dropped']} overlapping dropped (manual wins).")
                        except TpodError as exc:
                            ss["label.msg"] = ("error", str(exc))
                        _wrote(keep_msg=True)
                        st.rerun()
                if st.button("Mark track reviewed", key="label.track_reviewed"):
                    labels.mark_track_reviewed(tid, True, author=ctx.user)
                    _wrote()
                    ss["label.msg"] = ("success", f"Track #{tid} marked reviewed.")
                    st.rerun()
        else:
            st.caption("No box on this frame. Draw one on the canvas.")

        predicted = [b for b in view.boxes if b.source == "predicted"]
        if predicted:
            st.subheader("Predictions", anchor=False, divider="gray")
        for b in predicted:
            pcol = st.columns([2, 1, 1])
            pcol[0].write(f"#{b.track_id} {b.label} {b.confidence or 0:.2f}")
            if pcol[1].button("✓", key=f"label.acc.{b.id}", help="Accept (becomes manual)"):
                labels.accept_boxes([b.id], ctx.user)
                _wrote()
                st.rerun()
            if pcol[2].button("✗", key=f"label.rej.{b.id}", help="Reject (delete)"):
                labels.reject_boxes([b.id], ctx.user)
                _wrote()
                st.rerun()

    _lap("side panel")
    log.debug("label workspace %.1f ms: %s", (time.perf_counter() - _t0) * 1000,
                ", ".join(f"{k} {v:.1f}" for k, v in _times.items()))


_workspace()
