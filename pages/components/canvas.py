"""The labeling canvas (streamlit-drawable-canvas 0.13 wrapped once) and the Label page's caches.

One fixed key (a per-frame key would remount the component and drop unsaved boxes). The
frame goes as display-size JPEG bytes (app/display.py: ~60 KB instead of ~580 KB for 1080p);
the component turns them into a data URL, cached by content. A PIL image would cost >100 ms
per rerun (benchmarks/bench_next_frame.py). AppTest cannot render this component, so page tests
patch `frame_canvas`.

Read-only per-video figures (videos list, timeline, reviewed frames, tracks) are cached by
(video, revision): the revision joins the project's stats revision (any write by anyone shows
in it, read at most every 2 s) with a per-video counter that this process bumps on each of its
own label writes (at once; and an undo restores old rows, which the stats revision may miss).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import streamlit as st

from app import labels
from app.canvas import FONT_SIZE, STROKE_WIDTH, timeline_image
from app.stats import stats_revision

CANVAS_KEY = "label.canvas"

_local_revs: defaultdict[int, int] = defaultdict(int)
_local_lock = threading.Lock()


def frame_canvas(*, background: bytes, drawing: dict[str, Any], width: int, height: int, label: str,
                 stroke: str) -> dict[str, Any] | None:
    """Show the frame with `drawing` on it; new rectangles get `label` and `stroke`.

    Returns the canvas' current Fabric JSON (None before the first render).
    """
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        fill_color="rgba(0, 0, 0, 0.05)",
        stroke_width=STROKE_WIDTH,
        stroke_color=stroke,
        background_image=background,
        background_image_fit="stretch",
        update_streamlit=True,
        width=width,
        height=height,
        drawing_mode="labeled_rect",
        label=label or " ",
        font_size=FONT_SIZE,
        initial_drawing=drawing,
        key=CANVAS_KEY,
    )
    return result.json_data


# ---- caches keyed by revision ---------------------------------------------------------------

def changed(video_id: int) -> None:
    """Call after every label write on `video_id`: the cached figures of that video are stale."""
    with _local_lock:
        _local_revs[int(video_id)] += 1


@st.cache_data(show_spinner=False, ttl=2, max_entries=64)
def project_revision(project_id: int) -> str:
    """A text that changes on every label write in the project, by anyone. Its query costs
    10-70 ms on a busy host, so it is asked at most every 2 s: writes from elsewhere (CLI,
    imports, pre-labels) show within that; this process's own show at once (video_revision)."""
    return stats_revision(project_id)


def video_revision(project_rev: str, video_id: int) -> str:
    """project_revision() plus this process's own writes to the video (undo included)."""
    with _local_lock:
        return f"{project_rev}#{_local_revs[int(video_id)]}"


@st.cache_data(show_spinner=False, max_entries=32)
def ready_videos(project_id: int, rev: str) -> list[dict[str, Any]]:
    """labels.videos(), cached per project revision (a video turning ready adds frames)."""
    return labels.videos(project_id)


@st.cache_data(show_spinner=False, max_entries=64)
def timeline(video_id: int, rev: str) -> tuple[list[str], set[int]]:
    """Per-frame status and the reviewed frames of a video."""
    return labels.timeline(video_id), labels.reviewed_frames(video_id)


@st.cache_data(show_spinner=False, max_entries=64)
def tracks(video_id: int, rev: str) -> list[dict[str, Any]]:
    return labels.tracks(video_id)


@st.cache_data(show_spinner=False, max_entries=64)
def timeline_png(video_id: int, rev: str, width: int) -> bytes:
    """The timeline strip (app.canvas.timeline_image) as PNG bytes, without a current-frame bar."""
    import io

    from PIL import Image

    statuses, reviewed = timeline(video_id, rev)
    buf = io.BytesIO()
    Image.fromarray(timeline_image(statuses, current=None, reviewed=reviewed, width=width)).save(buf, format="PNG")
    return buf.getvalue()
