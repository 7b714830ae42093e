"""Upload: send videos, images or zip archives of images; follow their ingest; manage videos."""
from __future__ import annotations

import streamlit as st

from app import auth, ingest, jobstate
from app.errors import TpodError
from app.video import IMAGE_EXTS, VIDEO_EXTS
from pages.components.common import esc, job_progress, page_setup, show_error

RESOLUTIONS = {"Original": None, "1920 px": 1920, "1280 px": 1280, "960 px": 960, "640 px": 640}
ss = st.session_state

ctx = page_setup("Upload", require_project=True)
project = ctx.project
s = ctx.settings

st.caption(
    f"Videos ({', '.join(e.lstrip('.') for e in VIDEO_EXTS)}), images ({', '.join(e.lstrip('.') for e in IMAGE_EXTS)}) "
    f"or zip archives of images. **Up to {s.max_upload_mb:,} MB per file** and {s.max_upload_files:,} files per "
    f"upload, {s.max_video_frames:,} frames per "
    f"video, {s.project_quota_videos:,} videos per project. The loose images of one upload become one image set; "
    "each zip becomes an image set."
)

with st.form("upload.form", clear_on_submit=True):
    files = st.file_uploader(f"Files (up to {s.max_upload_mb:,} MB each)", type=ingest.upload_types(),
                             accept_multiple_files=True, key="upload.files", max_upload_size=s.max_upload_mb)
    c1, c2, c3, c4 = st.columns(4)
    stride = c1.number_input("Keep every n-th frame", min_value=1, max_value=1000, value=1, step=1,
                             key="upload.stride", help="1 keeps every frame; 5 keeps frames 0, 5, 10, ...")
    res = c2.selectbox("Max working resolution", list(RESOLUTIONS), key="upload.max_side",
                       help="Frames are stored with their longest side at most this size. Boxes stay in "
                            "original video pixels.")
    start = c3.number_input("From (s)", min_value=0.0, value=0.0, step=1.0, key="upload.start")
    end = c4.number_input("To (s, 0 = end)", min_value=0.0, value=0.0, step=1.0, key="upload.end")
    set_name = st.text_input("Image set name (optional, for loose images)", key="upload.set_name")
    submitted = st.form_submit_button("Upload and ingest", type="primary")

if submitted:
    if not files:
        st.warning("Choose at least one file first.")
    else:
        try:
            job_ids = ingest.start_ingest_uploads(
                ctx.queue, project.id, [(f.name, f) for f in files], author=ctx.user,
                stride=int(stride), max_side=RESOLUTIONS[res], start_s=start or None, end_s=end or None,
                image_set_name=set_name or None)
            ss.setdefault("upload.jobs", []).extend(job_ids)
            st.success(f"Started {len(job_ids)} ingest job{'s' if len(job_ids) != 1 else ''}.")
        except TpodError as exc:
            show_error(exc)

# ---- ingests in progress (this session's, and any other still running in this project) ----------

try:
    recent = jobstate.list_jobs(project_id=project.id, kinds=("ingest",), limit=200)
except TpodError as exc:
    show_error(exc)
    recent = []
names = {j["id"]: (j.get("params") or {}).get("name", "") for j in recent}
active = [j["id"] for j in recent if j["state"] not in jobstate.TERMINAL]
following = [j for j in dict.fromkeys([*ss.get("upload.jobs", []), *active]) if j in names]
if following:
    st.subheader("Ingest jobs", anchor=False)
    for job_id in following:
        job_progress(job_id, label=f"ingest {names[job_id]}")
    if ss.get("upload.jobs") and st.button("Clear finished", key="upload.clear"):
        ss["upload.jobs"] = [j for j in ss["upload.jobs"] if j in active]
        st.rerun()

# ---- the project's videos ----------------------------------------------------------------------

st.subheader("Videos and image sets", anchor=False)
try:
    videos = ingest.list_videos(project.id)
except TpodError as exc:
    show_error(exc)
    videos = []
if not videos:
    st.info("No videos in this project yet.")
can_delete = auth.can(ctx.role, "delete")
for v in videos:
    with st.container(border=True):
        head, actions = st.columns([5, 1])
        if v["status"] == "ready":
            size = f"{v['width']}×{v['height']}"
            if (v["work_width"], v["work_height"]) != (v["width"], v["height"]):
                size += f" (stored {v['work_width']}×{v['work_height']})"
            facts = [v["kind"], size, f"{v['frame_count']:,} frames"]
            if v["kind"] == "video":
                facts += [f"{v['fps']:.2f} fps", f"{v['duration']:.1f} s", v["codec"] or "?"]
                if v["stride"] > 1:
                    facts.append(f"every {v['stride']}th frame")
        else:
            facts = [v["kind"], v["status"]]
        head.markdown(f"**{esc(v['name'])}**  \n" + " · ".join(esc(f) for f in facts))
        if v["status"] == "ready":
            try:
                head.image(ingest.thumbnail_strip(v["id"]), width="content")
            except TpodError as exc:
                show_error(exc)
        confirm = f"upload.confirm_delete.{v['id']}"
        if can_delete and actions.button("Delete", key=f"upload.delete.{v['id']}"):
            ss[confirm] = True
        if ss.get(confirm):
            st.warning(f"Delete “{esc(v['name'])}” with its {v['frame_count'] or 0:,} frames and all their boxes "
                       "and tracks? This cannot be undone.")
            yes, no = st.columns(2)
            if yes.button("Yes, delete", key=f"upload.yes.{v['id']}", type="primary"):
                try:
                    ingest.delete_video(v["id"])
                except TpodError as exc:
                    show_error(exc)
                ss.pop(confirm, None)
                st.rerun()
            if no.button("Cancel", key=f"upload.no.{v['id']}"):
                ss.pop(confirm, None)
                st.rerun()
