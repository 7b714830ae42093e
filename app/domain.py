"""The shared language of tpod: small frozen dataclasses, pixel xyxy boxes.

Conversions to and from other representations (canvas JSON, YOLO, COCO, ...) live at the edges.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Source = Literal["manual", "tracked", "interpolated", "predicted", "imported"]
SOURCES: tuple[str, ...] = ("manual", "tracked", "interpolated", "predicted", "imported")


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in ORIGINAL video pixel coordinates (x1 < x2, y1 < y2)."""

    x1: float
    y1: float
    x2: float
    y2: float
    frame: int = 0
    label: str = ""
    track_id: int | None = None
    source: Source = "manual"
    confidence: float | None = None
    id: int | None = None
    class_id: int | None = None
    outside: bool = False
    keyframe: bool = False

    @property
    def w(self) -> float:
        return self.x2 - self.x1

    @property
    def h(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.w) * max(0.0, self.h)

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.w, self.h)

    def moved(self, **changes: object) -> Box:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float, **kw: object) -> Box:
        return cls(x, y, x + w, y + h, **kw)  # type: ignore[arg-type]


def iou(a: Box | tuple[float, float, float, float], b: Box | tuple[float, float, float, float]) -> float:
    """Intersection over union of two xyxy boxes."""
    ax1, ay1, ax2, ay2 = (a.x1, a.y1, a.x2, a.y2) if isinstance(a, Box) else a
    bx1, by1, bx2, by2 = (b.x1, b.y1, b.x2, b.y2) if isinstance(b, Box) else b
    iw = min(ax2, bx2) - max(ax1, bx1)
    ih = min(ay2, by2) - max(ay1, by1)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class VideoInfo:
    """What a probe or an ingest learned about a video. fps is a float (29.97 stays 29.97)."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    codec: str
    name: str = ""


@dataclass(frozen=True)
class LabelClass:
    id: int
    project_id: int
    name: str
    color: str


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    created_at: object = None
    classes: tuple[LabelClass, ...] = field(default_factory=tuple)
