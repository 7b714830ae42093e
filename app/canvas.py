"""Boxes <-> Fabric.js JSON for streamlit-drawable-canvas 0.13, and what a drawing changed.

Pure functions, tested without a browser. The canvas shows the frame scaled by `scale`
(display px = original px * scale). Each stored box becomes a "LabeledRect" whose chip reads
"<class> #<track>". Fabric only serialises its own properties, so the box id rides in
`strokeDashOffset` (inert without a dash array) and comes back in `json_data`; objects the user
drew have none. A hidden, locked "generation" object tells which `initial_drawing` a
`json_data` belongs to: after the page sends a new drawing, the component still returns the old
one for a rerun, and that must never be saved.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain import Box

STROKE_WIDTH = 2
FONT_SIZE = 13
DEFAULT_COLOR = "#ff4b4b"
# Boxes smaller than this many display px on both sides are stray clicks, not drawings
# (the canvas turns a click into a 2*stroke-width square).
MIN_DRAWN_PX = 2 * STROKE_WIDTH + 1.5
_GEN_MARK = "tpod-generation"


@dataclass(frozen=True)
class DrawnBox:
    """One rectangle read back from the canvas, in ORIGINAL pixel coordinates."""

    x1: float
    y1: float
    x2: float
    y2: float
    box_id: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Action:
    """One change to save: kind is "create", "update" or "delete"."""

    kind: str
    box_id: int | None = None
    xyxy: tuple[float, float, float, float] | None = None
    label: str = ""


def _rgba(color: str, alpha: float) -> str:
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    try:
        r, g, b = int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
    except ValueError:
        return f"rgba(255, 75, 75, {alpha})"
    return f"rgba({r}, {g}, {b}, {alpha})"


def box_caption(box: Box) -> str:
    """The chip text on the canvas: class name and track id."""
    name = box.label or (f"class {box.class_id}" if box.class_id is not None else "?")
    return f"{name} #{box.track_id}" if box.track_id is not None else name


def boxes_to_fabric(boxes: Sequence[Box], *, scale: float, colors: Mapping[int, str],
                    generation: int = 0, selected_track: int | None = None) -> dict[str, Any]:
    """An `initial_drawing` for st_canvas: one LabeledRect per box, scaled to display pixels."""
    objects: list[dict[str, Any]] = [{
        # Invisible and locked: neither drawn nor selectable, but serialised back with json_data.
        "type": "LabeledRect", "label": _GEN_MARK, "left": -50, "top": -50, "width": 1, "height": 1,
        "fill": "rgba(0,0,0,0)", "stroke": None, "strokeWidth": 0, "visible": False, "selectable": False,
        "evented": False, "strokeDashOffset": int(generation), "lockMovementX": True, "lockMovementY": True,
        "lockScalingX": True, "lockScalingY": True, "lockRotation": True,
    }]
    for b in boxes:
        color = colors.get(b.class_id, DEFAULT_COLOR) if b.class_id is not None else DEFAULT_COLOR
        bold = selected_track is not None and b.track_id == selected_track
        objects.append({
            "type": "LabeledRect",
            "label": box_caption(b),
            "fontSize": FONT_SIZE,
            "left": round(b.x1 * scale, 2),
            "top": round(b.y1 * scale, 2),
            "width": round((b.x2 - b.x1) * scale, 2),
            "height": round((b.y2 - b.y1) * scale, 2),
            "originX": "left", "originY": "top",
            "scaleX": 1, "scaleY": 1, "angle": 0,
            "stroke": color,
            "strokeWidth": STROKE_WIDTH * 2 if bold else STROKE_WIDTH,
            "strokeUniform": True,
            # Derived boxes dashed, so a glance tells what a human placed.
            "strokeDashArray": None if b.source in ("manual", "imported") else [6, 3],
            "strokeDashOffset": int(b.id) if b.id is not None else 0,
            "fill": _rgba(color, 0.08 if b.source != "predicted" else 0.0),
            "lockRotation": True,
            "transparentCorners": False,
            "cornerSize": 8,
        })
    return {"version": "6.0.0", "objects": objects}


# Timeline colours per frame status (RGB), the same meaning as the box outlines on the canvas.
STATUS_RGB: dict[str, tuple[int, int, int]] = {
    "manual": (46, 160, 67), "imported": (31, 119, 180), "tracked": (255, 170, 0),
    "interpolated": (255, 221, 120), "predicted": (170, 110, 220), "none": (225, 225, 225),
}


def timeline_image(statuses: Sequence[str], *, current: int | None, reviewed: set[int] | None = None,
                   width: int = 900, height: int = 18) -> Any:
    """An RGB strip, one column band per frame coloured by status; a dark bar marks the current
    frame (none when `current` is None) and a thin dark line under a frame marks it reviewed."""
    import numpy as np

    n = max(1, len(statuses))
    cols = np.minimum((np.arange(width) * n) // width, n - 1)
    palette = np.array([STATUS_RGB.get(s, STATUS_RGB["none"]) for s in statuses] or [STATUS_RGB["none"]],
                       dtype=np.uint8)
    img = np.repeat(palette[cols][None, :, :], height, axis=0)
    if reviewed:
        mask = np.array([c in reviewed for c in cols])
        img[-3:, mask] = (60, 60, 60)
    if current is not None:
        x = min(width - 1, int((current + 0.5) * width / n))
        img[:, max(0, x - 1): x + 2] = (20, 20, 20)
    return img


def drawing_generation(json_data: Mapping[str, Any] | None) -> int | None:
    """The generation stamped by boxes_to_fabric, or None (not a drawing of ours)."""
    for obj in (json_data or {}).get("objects", []) or []:
        if obj.get("label") == _GEN_MARK:
            try:
                return int(obj.get("strokeDashOffset") or 0)
            except (TypeError, ValueError):
                return None
    return None


def fabric_to_boxes(json_data: Mapping[str, Any] | None, *, scale: float) -> list[DrawnBox]:
    """Rectangles on the canvas back in ORIGINAL coordinates (scaleX/scaleY applied)."""
    out: list[DrawnBox] = []
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    for obj in (json_data or {}).get("objects", []) or []:
        if obj.get("type") not in ("LabeledRect", "Rect", "rect") or obj.get("label") == _GEN_MARK:
            continue
        w = float(obj.get("width", 0)) * float(obj.get("scaleX", 1) or 1)
        h = float(obj.get("height", 0)) * float(obj.get("scaleY", 1) or 1)
        left = float(obj.get("left", 0)) - {"center": 0.5, "right": 1.0}.get(obj.get("originX", "left"), 0.0) * w
        top = float(obj.get("top", 0)) - {"center": 0.5, "bottom": 1.0}.get(obj.get("originY", "top"), 0.0) * h
        x1, x2 = sorted((left, left + w))
        y1, y2 = sorted((top, top + h))
        raw_id = obj.get("strokeDashOffset")
        box_id = int(raw_id) if isinstance(raw_id, (int, float)) and raw_id > 0 else None
        out.append(DrawnBox(x1 / scale, y1 / scale, x2 / scale, y2 / scale, box_id, str(obj.get("label") or "")))
    return out


def diff(stored: Sequence[Box], drawn: Sequence[DrawnBox], *, tol: float = 0.5,
         min_new: float = 0.0) -> list[Action]:
    """What the user did: boxes created, moved/resized (beyond `tol` original px) or deleted.

    New boxes narrower AND shorter than `min_new` original px are stray clicks and are ignored.
    A drawn id that is not stored any more (deleted meanwhile) is ignored rather than recreated.
    """
    by_id = {b.id: b for b in stored if b.id is not None}
    seen: set[int] = set()
    actions: list[Action] = []
    for d in drawn:
        xyxy = (d.x1, d.y1, d.x2, d.y2)
        if d.box_id is None:
            if (d.x2 - d.x1) < min_new and (d.y2 - d.y1) < min_new:
                continue
            actions.append(Action("create", None, xyxy, d.label))
            continue
        old = by_id.get(d.box_id)
        if old is None or d.box_id in seen:
            continue
        seen.add(d.box_id)
        if max(abs(a - b) for a, b in zip(xyxy, (old.x1, old.y1, old.x2, old.y2), strict=True)) > tol:
            actions.append(Action("update", d.box_id, xyxy, d.label))
    actions += [Action("delete", i) for i in by_id if i not in seen]
    return actions
