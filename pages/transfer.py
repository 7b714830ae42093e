"""Import / Export: bring annotations in from CVAT, COCO, YOLO or VOC, and take datasets out."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import datasets, ingest, transfer
from app.errors import TpodError
from pages.components.common import esc, page_setup, show_error

ss = st.session_state
FORMAT_NAMES = {
    "cvat": "CVAT XML 1.1 (for video or for images)",
    "coco": "COCO detection JSON",
    "yolo": "YOLO (Ultralytics data.yaml, or darknet obj.data)",
    "yolo-out": "YOLO (Ultralytics: data.yaml, images/, labels/)",
    "voc": "Pascal VOC XML",
    "cvat-video": "CVAT for video 1.1 XML (tracks)",
}
NEW_SET = 0
CURRENT = 0

ctx = page_setup("Import / Export", require_project=True)
project = ctx.project
try:
    ready = [v for v in ingest.list_videos(project.id) if v.get("status") == "ready"]
    versions = datasets.list_versions(project.id)
except TpodError as exc:
    show_error(exc)
    st.stop()
video_names = {v["id"]: v["name"] for v in ready}

tab_in, tab_out = st.tabs(["Import annotations", "Export dataset"])


def show_report(report: dict) -> None:
    where = "new image set" if report["new_image_set"] else "video"
    st.success(f"Imported into {where} “{esc(report['video_name'])}”.")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Boxes", report["boxes"])
    c2.metric("Tracks", report["tracks"])
    c3.metric("Frames", report["frames"])
    c4.metric("Skipped items", len(report["skipped"]))
    if report["outside"]:
        st.caption(f"{report['outside']} of the boxes are CVAT “outside” markers (track ends).")
    if report["classes_created"]:
        st.write("Classes created: " + ", ".join(f"“{esc(c)}”" for c in report["classes_created"]))
    if report["adjusted"]:
        st.markdown("**Adjusted** (imported, but changed to fit)")
        st.dataframe(pd.DataFrame(report["adjusted"]), hide_index=True, width="stretch")
    if report["skipped"]:
        st.markdown("**Skipped** (not imported)")
        st.dataframe(pd.DataFrame(report["skipped"]), hide_index=True, width="stretch")


with tab_in:
    st.caption("Upload a zip of an export (annotations, with or without its images), or a bare "
               ".json / .xml annotation file to put onto one of this project's videos.")
    upload = st.file_uploader("Annotation archive", type=["zip", "json", "xml"], key="transfer.upload")
    fmt = st.selectbox("Format", transfer.IMPORT_FORMATS, format_func=FORMAT_NAMES.get, key="transfer.in_format")
    target = st.selectbox(
        "Put the boxes on", [NEW_SET, *video_names], key="transfer.target",
        format_func=lambda v: "a new image set (the archive's images)" if v == NEW_SET else f"video “{video_names[v]}”",
        help="Onto a video, frames are matched by frame number; boxes on frames the video lacks are reported.",
    )
    set_name = ""
    if target == NEW_SET:
        set_name = st.text_input("Image set name", key="transfer.set_name",
                                 placeholder="default: the archive's file name")
    create = st.checkbox("Create classes the project does not have", value=True, key="transfer.create_classes")
    mapping = st.text_area("Rename labels (optional, one per line)", key="transfer.class_map",
                           placeholder="Car -> car\nPedestrian -> person", height=90)
    if st.button("Import", type="primary", disabled=upload is None, key="transfer.import"):
        try:
            options: dict = {"create_classes": create, "class_map": transfer.parse_class_map(mapping),
                             "author": ctx.user}
            if target != NEW_SET:
                options["video_id"] = target
            if set_name.strip():
                options["name"] = set_name
            with st.spinner("Reading and checking the archive…"):
                ss["transfer.report"] = transfer.import_upload(upload.name, upload, project.id, fmt, **options)
        except TpodError as exc:
            ss.pop("transfer.report", None)
            show_error(exc)
    if ss.get("transfer.report"):
        show_report(ss["transfer.report"])

with tab_out:
    out_fmt = st.selectbox("Format", transfer.EXPORT_FORMATS, key="transfer.out_format",
                           format_func=lambda f: FORMAT_NAMES["yolo-out" if f == "yolo" else f])
    version_ids = [CURRENT, *[v["id"] for v in versions]]
    version_label = {v["id"]: v["name"] for v in versions}
    version = st.selectbox(
        "What", version_ids, key="transfer.version",
        format_func=lambda v: "current labels (every labeled frame)" if v == CURRENT else f"dataset version “{version_label[v]}”",
    )
    chosen: list[int] | None = None
    if version == CURRENT and video_names:
        picked = st.multiselect("Videos (all when empty)", list(video_names), format_func=video_names.get,
                                key="transfer.videos")
        chosen = picked or None
    wanted = (project.id, out_fmt, version, tuple(chosen or ()))
    if st.button("Prepare export", type="primary", key="transfer.export"):
        try:
            with st.spinner("Writing the archive…"):
                report = transfer.export_for_download(project.id, out_fmt, version_id=version or None,
                                                      video_ids=chosen)
            ss["transfer.export_report"] = (wanted, report)
        except TpodError as exc:
            ss.pop("transfer.export_report", None)
            show_error(exc)
    prepared = ss.get("transfer.export_report")
    done = prepared[1] if prepared and prepared[0] == wanted else None  # only for the choices shown
    if done:
        st.write(f"{done['images']} images, {done['boxes']} boxes, {done['tracks']} tracks, "
                 f"{len(done['classes'])} classes · {done['bytes'] / 1e6:.1f} MB")
        if done["missing_images"]:
            st.warning(f"{len(done['missing_images'])} frames had no image file and were left out.")
        try:
            st.download_button("Download " + done["file_name"], transfer.read_export(done["path"]),
                               file_name=done["file_name"], mime="application/zip", key="transfer.download")
        except TpodError as exc:
            show_error(exc)
