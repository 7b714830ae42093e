"""The labeling canvas: streamlit-drawable-canvas 0.13 wrapped once.

One fixed key (a per-frame key would remount the component and drop unsaved boxes). The
frame goes as JPEG bytes (the component turns them into a data URL, cached by content), which
costs a few ms per rerun where a PIL image costs >100 ms (benchmarks/bench_next_frame.py).
AppTest cannot render this component, so page tests patch `frame_canvas`.
"""
from __future__ import annotations

from typing import Any

from app.canvas import FONT_SIZE, STROKE_WIDTH

CANVAS_KEY = "label.canvas"


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
