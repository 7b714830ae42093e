"""Home: every project with its videos (snapshot frame), counts, and recent training runs."""
from __future__ import annotations

import streamlit as st

from app import dashboard, projects
from app.errors import TpodError
from pages.components.common import STATE_ICONS, esc, fmt_time, page_setup, show_error

ctx = page_setup("tpod — painless object detection")
st.caption("Upload a video, draw a few boxes, let the tracker carry them, train a detector, "
           "and let it pre-label your next video.")

try:
    overview = dashboard.overview()
    all_projects = projects.list_projects()
except TpodError as exc:
    show_error(exc)
    st.stop()

if not all_projects:
    st.info("No projects yet. Create one on the **Projects** page to start.")

for project in all_projects:
    counts = overview["counts"].get(project.id, {})
    with st.container(border=True):
        head, *metrics = st.columns([3, 1, 1, 1, 1, 1])
        head.subheader(esc(project.name), anchor=False)
        head.caption(" · ".join(esc(c.name) for c in project.classes) or "no classes yet")
        for col, (label, key) in zip(metrics, [("Videos", "videos"), ("Frames", "frames"),
                                               ("Labeled frames", "labeled_frames"), ("Boxes", "boxes"),
                                               ("Models", "models")], strict=True):
            col.metric(label, f"{counts.get(key, 0):,}")
        videos = dashboard.project_videos(project.id)
        if videos:
            cols = st.columns(6)
            for i, v in enumerate(videos[:12]):
                with cols[i % len(cols)]:
                    if v["snapshot"]:
                        st.image(v["snapshot"], use_container_width=True)
                    st.caption(f"{esc(v['name'])} · {v['status']} · {v['frame_count'] or 0} frames · "
                               f"{v['labeled']} labeled")

runs = overview["runs"]
if runs:
    st.subheader("Recent training runs", anchor=False)
    st.dataframe(
        [{"run": r["id"], "project": r["project"], "model": r["model_arch"],
          "state": f"{STATE_ICONS.get(r['state'], '')} {r['state']}", "started": fmt_time(r["created_at"]),
          "registered model": r["model_id"]} for r in runs],
        hide_index=True, use_container_width=True,
    )
