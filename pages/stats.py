"""Dataset health: charts of class balance, label coverage, box sizes and positions, sources, authors."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app import labels
from app.errors import TpodError
from app.stats import project_stats, stats_revision
from pages.components.common import esc, page_setup, show_error

ctx = page_setup("Dataset health", require_project=True)
project = ctx.project
assert project is not None  # page_setup stops otherwise

LEVEL = {"error": st.error, "warning": st.warning, "info": st.info}
BALANCE_SHORT = {"severely imbalanced": "severe", "single class": "1 class"}
COVERAGE_COLORS = {"labeled": "#3cb44b", "empty (reviewed)": "#9db4c0", "unlabeled": "#e6194b"}


@st.cache_data(show_spinner=False, max_entries=64)
def _stats(project_id: int, video_ids: tuple[int, ...] | None, class_ids: tuple[int, ...] | None,
           revision: str) -> dict[str, Any]:
    """Cached per (project, filters, revision): any label write changes the revision."""
    return project_stats(project_id, video_ids=video_ids, class_ids=class_ids)


def _filters() -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    videos = labels.videos(project.id)
    names = {v["id"]: v["name"] for v in videos}
    classes = {c.id: c.name for c in project.classes}
    left, right = st.columns(2)
    chosen_v = left.multiselect("Videos", list(names), format_func=names.get, key="stats.videos",
                                placeholder="All videos")
    chosen_c = right.multiselect("Classes", list(classes), format_func=classes.get, key="stats.classes",
                                 placeholder="All classes")
    return (tuple(chosen_v) or None), (tuple(chosen_c) or None)


def _bar(df: pd.DataFrame, x: str, y: str, *, x_title: str, y_title: str, sort: Any = None,
         color: alt.Color | str = "#4363d8", height: int = 220) -> alt.Chart:
    mark = alt.Chart(df).mark_bar()
    enc: dict[str, Any] = {
        "x": alt.X(f"{x}:N", title=x_title, sort=sort, axis=alt.Axis(labelAngle=-40)),
        "y": alt.Y(f"{y}:Q", title=y_title),
        "tooltip": [x, y],
    }
    enc["color"] = color if isinstance(color, alt.Color) else alt.value(color)
    return mark.encode(**enc).properties(height=height)


def _headline(s: dict[str, Any]) -> None:
    f = s["frames_summary"]
    cols = st.columns(5)
    cols[0].metric("Boxes", f"{s['boxes']:,}")
    cols[1].metric("Frames", f"{f['frames']:,}")
    cols[2].metric("Labeled frames", f"{f['labeled'] / f['frames']:.0%}" if f["frames"] else "–")
    cols[3].metric("Reviewed frames", f"{s['reviewed_share']:.0%}")
    cols[4].metric("Class balance", BALANCE_SHORT.get(s["balance"]["rating"], s["balance"]["rating"]),
                   help="Smallest class / largest class: balanced >= 0.5, imbalanced >= 0.1, below that severe.")


def _classes_and_sources(s: dict[str, Any]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Class balance")
        df = pd.DataFrame(s["classes"])
        if df.empty:
            st.caption("No classes yet.")
        else:
            df["share %"] = (df["share"] * 100).round(1)
            color = alt.Color("name:N", scale=alt.Scale(domain=list(df["name"]), range=list(df["color"])),
                              legend=None)
            st.altair_chart(_bar(df, "name", "boxes", x_title="class", y_title="boxes", sort="-y", color=color)
                            .encode(tooltip=["name", "boxes", "share %"]), width="stretch")
            ratio = s["balance"]["min_max_ratio"]
            if ratio is not None:
                st.caption(f"Smallest / largest class: {ratio:.2f} · normalised entropy "
                           f"{s['balance']['entropy'] or 0:.2f}")
    with right:
        st.subheader("Where boxes come from")
        df = pd.DataFrame(s["sources"])
        if df.empty:
            st.caption("No boxes yet.")
        else:
            df["share %"] = (df["share"] * 100).round(1)
            chart = alt.Chart(df).mark_arc(innerRadius=50).encode(
                theta="boxes:Q", color=alt.Color("source:N", title="source"),
                tooltip=["source", "boxes", "share %"]).properties(height=220)
            st.altair_chart(chart, width="stretch")


def _coverage(s: dict[str, Any]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Frames per video")
        df = pd.DataFrame(s["per_video"])
        if df.empty:
            st.caption("No videos yet.")
        else:
            df = df.rename(columns={"empty": "empty (reviewed)"})
            long = df[["name", *COVERAGE_COLORS]].melt(id_vars=["name"], value_vars=list(COVERAGE_COLORS), var_name="state", value_name="frames")
            chart = alt.Chart(long).mark_bar().encode(
                x=alt.X("name:N", title=None, axis=alt.Axis(labelAngle=-40)), y=alt.Y("frames:Q", stack=True),
                color=alt.Color("state:N", scale=alt.Scale(domain=list(COVERAGE_COLORS),
                                                           range=list(COVERAGE_COLORS.values())),
                                legend=alt.Legend(orient="bottom", title=None)),
                tooltip=["name", "state", "frames"]).properties(height=240)
            st.altair_chart(chart, width="stretch")
    with right:
        st.subheader("Boxes per frame")
        df = pd.DataFrame(s["boxes_per_frame"])
        st.altair_chart(_bar(df, "boxes", "frames", x_title="boxes in the frame", y_title="frames",
                             sort=list(df["boxes"])), width="stretch")


def _sizes(s: dict[str, Any]) -> None:
    st.subheader("Box sizes and shapes")
    cols = st.columns(3)
    wh = pd.concat([
        pd.DataFrame(s["width_hist"]).assign(dimension="width"),
        pd.DataFrame(s["height_hist"]).assign(dimension="height"),
    ])
    wh["bin"] = (wh["bin_start"] * 100).round().astype(int).astype(str) + "%"
    with cols[0]:
        st.caption("Width and height, as a share of the image")
        chart = alt.Chart(wh).mark_bar(opacity=0.7).encode(
            x=alt.X("bin:N", sort=list(wh["bin"].unique()), title="size / image size"),
            y=alt.Y("boxes:Q", stack=None), color=alt.Color("dimension:N", legend=alt.Legend(orient="bottom")),
            xOffset="dimension:N", tooltip=["dimension", "bin", "boxes"]).properties(height=220)
        st.altair_chart(chart, width="stretch")
    with cols[1]:
        st.caption("Area, as a share of the image")
        df = pd.DataFrame(s["area_hist"])
        st.altair_chart(_bar(df, "label", "boxes", x_title="box area / image area", y_title="boxes",
                             sort=list(df["label"]), color="#f58231"), width="stretch")
    with cols[2]:
        st.caption("Aspect ratio (width : height)")
        df = pd.DataFrame(s["aspect_hist"])
        st.altair_chart(_bar(df, "label", "boxes", x_title="aspect ratio", y_title="boxes",
                             sort=list(df["label"]), color="#911eb4"), width="stretch")


def _heatmap_and_authors(s: dict[str, Any]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Where box centres fall")
        df = pd.DataFrame(s["heatmap"]["cells"])
        chart = alt.Chart(df).mark_rect(stroke=None).encode(
            x=alt.X("x:O", axis=None, scale=alt.Scale(paddingInner=0)),
            y=alt.Y("y:O", axis=None, scale=alt.Scale(paddingInner=0)),
            # sqrt: one crowded spot must not leave every other cell black
            color=alt.Color("density:Q", scale=alt.Scale(scheme="inferno", type="sqrt"), legend=None),
            tooltip=["x", "y", "boxes"]).properties(height=260)
        st.altair_chart(chart, width="stretch")
        st.caption("The image split in a 20 × 20 grid; brighter cells hold more box centres.")
    with right:
        st.subheader("Who labeled")
        df = pd.DataFrame(s["authors"])
        if df.empty:
            st.caption("No labels yet.")
        else:
            df["boxes per hour"] = df["boxes_per_hour"].fillna(0).round(1)
            st.altair_chart(_bar(df, "author", "boxes", x_title="author", y_title="boxes", sort="-y",
                                 color="#469990").encode(
                tooltip=["author", "boxes", "manual_boxes", "edits", "active_hours", "boxes per hour"]),
                width="stretch")
            st.altair_chart(_bar(df, "author", "boxes per hour", x_title="author", y_title="boxes / hour",
                                 sort="-y", color="#42d4f4", height=200), width="stretch")


def _warnings(s: dict[str, Any]) -> None:
    st.subheader("Warnings")
    if not s["warnings"]:
        st.success("Nothing to worry about.")
        return
    for w in s["warnings"][:30]:
        LEVEL.get(w["level"], st.info)(esc(w["message"]))
    if len(s["warnings"]) > 30:
        st.caption(f"… and {len(s['warnings']) - 30} more.")


video_ids, class_ids = _filters()
try:
    stats = _stats(project.id, video_ids, class_ids, stats_revision(project.id))
except TpodError as exc:
    show_error(exc)
    st.stop()

_headline(stats)
if stats["boxes"] == 0:
    st.info("No boxes in this selection yet: label some frames on the **Label** page.")
_classes_and_sources(stats)
_coverage(stats)
_sizes(stats)
_heatmap_and_authors(stats)
_warnings(stats)
