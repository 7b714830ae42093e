"""Datasets: cut frozen, leak-free dataset versions (YOLO layout) and manage them."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, datasets, labels
from app.errors import TpodError
from pages.components.common import esc, fmt_time, page_setup, show_error

ctx = page_setup("Datasets", require_project=True)
project = ctx.project
assert project is not None  # page_setup stops otherwise

SPLIT_HELP = {
    "video": "Whole videos go to train, val or test: nothing from one video is seen on both sides. "
             "Needs 2 or more videos (3 with a test split).",
    "blocks": "Each video is cut into blocks of consecutive frames; blocks go to train/val/test and a few "
              "frames at each boundary are dropped, so neighbouring frames never land on both sides.",
}


def _create_form() -> None:
    videos = labels.videos(project.id)
    vnames = {v["id"]: v["name"] for v in videos}
    cnames = {c.id: c.name for c in project.classes}
    with st.form("datasets.create", border=True):
        st.subheader("New version")
        name = st.text_input("Name", key="datasets.name", placeholder="e.g. v1 – first 3 videos")
        left, right = st.columns(2)
        chosen_v = left.multiselect("Videos", list(vnames), format_func=vnames.get, key="datasets.videos",
                                    placeholder="All ready videos")
        chosen_c = right.multiselect("Classes", list(cnames), format_func=cnames.get, key="datasets.classes",
                                     placeholder="All classes")
        a, b, c = st.columns(3)
        split = a.radio("Split", ["video", "blocks"], key="datasets.split", horizontal=True,
                        format_func={"video": "by video", "blocks": "by time blocks"}.get,
                        help=" ".join(f"**{k}**: {v}" for k, v in SPLIT_HELP.items()))
        val = b.slider("Validation share", 0.05, 0.5, 0.2, 0.05, key="datasets.val")
        test = c.slider("Test share", 0.0, 0.4, 0.0, 0.05, key="datasets.test")
        a, b, c, d = st.columns(4)
        every_nth = a.number_input("Every n-th frame", 1, 1000, 1, key="datasets.every_nth",
                                   help="Take one frame in n: consecutive video frames are nearly the same picture.")
        block_size = b.number_input("Block size (frames, 0 = auto)", 0, 100_000, 0, key="datasets.block_size",
                                    help="Only for 'by time blocks'. Auto: a tenth of each video.")
        seed = c.number_input("Seed", 0, 1_000_000, 0, key="datasets.seed",
                              help="Same seed and options, same split.")
        dedupe = d.number_input("Near-duplicate filter (0 = off)", 0, 32, 0, key="datasets.dedupe",
                                help="Phash Hamming distance: drops a frame whose perceptual hash is this close to a kept frame "
                                     "(4-8 catches near-identical frames). Reads every image: slower.")
        include_empty = st.checkbox(
            "Include frames without boxes as background images", key="datasets.include_empty",
            help="Frames marked reviewed (or holding only boxes of unselected classes) are added with empty labels.")
        submitted = st.form_submit_button("Create version", type="primary")
    if not submitted:
        return
    try:
        with st.spinner("Cutting the version and writing its files…"):
            version = datasets.create_version(
                project.id, name, video_ids=chosen_v or None, class_ids=chosen_c or None,
                every_nth=int(every_nth), dedupe_threshold=int(dedupe) or None, include_empty=include_empty,
                split=split, val=float(val), test=float(test), block_size=int(block_size) or None,
                seed=int(seed), author=ctx.user)
    except TpodError as exc:
        show_error(exc)
        return
    splits = version["stats"]["splits"]
    st.success(f"Created {esc(version['name'])}: " + ", ".join(f"{k} {v['images']} images" for k, v in splits.items()))


def _split_chart(version: dict[str, Any]) -> None:
    rows = [{"split": split, "class": cls, "boxes": n}
            for split, s in version["stats"]["splits"].items() for cls, n in s["per_class"].items()]
    if not rows:
        return
    df = pd.DataFrame(rows)
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("split:N", sort=["train", "val", "test"], title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("boxes:Q", stack=True), color=alt.Color("class:N"),
        tooltip=["split", "class", "boxes"]).properties(height=200)
    st.altair_chart(chart, width="stretch")


def _delete(version: dict[str, Any]) -> None:
    key = "datasets.confirm_delete"
    if st.session_state.get(key) != version["id"]:
        if st.button("Delete…", key=f"datasets.delete.{version['id']}"):
            st.session_state[key] = version["id"]
            st.rerun()
        return
    st.warning(f"Delete version {esc(version['name'])} and its files? Models trained on it keep their weights.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", type="primary", key=f"datasets.delete_yes.{version['id']}"):
        try:
            datasets.delete_version(version["id"])
        except TpodError as exc:
            show_error(exc)
            return
        st.session_state.pop(key, None)
        st.rerun()
    if no.button("Cancel", key=f"datasets.delete_no.{version['id']}"):
        st.session_state.pop(key, None)
        st.rerun()


def _versions() -> None:
    try:
        versions = datasets.list_versions(project.id)
    except TpodError as exc:
        show_error(exc)
        return
    st.subheader("Versions")
    if not versions:
        st.info("No dataset version yet: create one above.")
        return
    summary = []
    for v in versions:
        splits = v["stats"]["splits"]
        summary.append({
            "name": v["name"], "created": fmt_time(v["created_at"]), "by": v["created_by"] or "",
            "split": v["params"]["split"], "images": v["stats"]["images"], "boxes": v["stats"]["boxes"],
            **{f"{s} images": splits.get(s, {}).get("images", 0) for s in ("train", "val", "test")},
        })
    st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch")
    for v in versions:
        with st.expander(f"{v['name']} · {v['stats']['images']} images · {v['stats']['boxes']} boxes"):
            _split_chart(v)
            stats, params = v["stats"], v["params"]
            dropped = []
            if stats.get("deduped_frames"):
                dropped.append(f"{stats['deduped_frames']} near-duplicate frames")
            if stats.get("guard_dropped_frames"):
                dropped.append(f"{stats['guard_dropped_frames']} frames at block boundaries")
            if stats.get("dropped_boxes"):
                dropped.append(f"{stats['dropped_boxes']} boxes outside the image")
            st.caption(f"Classes: {esc(', '.join(v['names']))} · split by {params['split']} · one frame in "
                       f"{params['every_nth']} · seed {params['seed']}"
                       + (f" · dropped {', '.join(dropped)}" if dropped else ""))
            st.code(v["data_yaml"] or "", language=None)
            if auth.can(ctx.role, "delete"):
                _delete(v)


_create_form()
_versions()
