"""Models: what each trained detector scored, evaluate it, preview it, pre-label a video, export it."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, datasets, jobstate, labels, registry
from app.errors import TpodError
from app.evaluation import SPLITS, confusion_frame, evaluation_params, evaluations, per_class_frame, pr_frame
from app.modelexport import available_formats, export_params, exports_of, import_model, read_export
from app.predict import preview
from app.prelabel import prelabel_params
from pages.components.common import esc, fmt_time, job_progress, page_setup, show_error

ctx = page_setup("Models", require_project=True)
project = ctx.project
assert project is not None  # page_setup stops otherwise

METRICS = {"precision": "Precision", "recall": "Recall", "map50": "mAP50", "map50_95": "mAP50-95"}
PREVIEW_MAX_FRAMES = 300


def _num(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def _label(m: dict[str, Any]) -> str:
    score = (m.get("metrics") or {}).get("map50")
    version = m.get("version_name") or "uploaded"
    return f"{m['name']} · {version} · mAP50 {_num(score)}"


# ------------------------------------------------------------------------------------- charts
def pr_chart(evaluation: dict[str, Any]) -> None:
    frame = pr_frame(evaluation)
    if frame.empty:
        st.caption("No precision-recall curve (no detections matched).")
        return
    chart = alt.Chart(frame).mark_line().encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1])),
        color="class:N", tooltip=["class", "recall", "precision"])
    st.altair_chart(chart, width="stretch", height=300)


def confusion_chart(evaluation: dict[str, Any]) -> None:
    frame = confusion_frame(evaluation)
    if frame.empty:
        st.caption("No confusion matrix in this evaluation.")
        return
    order = list(dict.fromkeys(frame["actual"]))
    step = max(28, min(70, 420 // len(order)))
    base = alt.Chart(frame).encode(
        x=alt.X("actual:N", sort=order, title="actual class", axis=alt.Axis(labelAngle=0 if step >= 60 else -45)),
        y=alt.Y("predicted:N", sort=order, title="predicted class"))
    cells = base.mark_rect().encode(color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                                                    title="share of actual"),
                                    tooltip=["actual", "predicted", "count", alt.Tooltip("share:Q", format=".2f")])
    text = base.mark_text().encode(text="count:Q", color=alt.condition("datum.share > 0.5", alt.value("white"),
                                                                       alt.value("black")))
    # discrete axes sized by step: Streamlit's stretch width squashes a nominal heatmap
    chart = (cells + text).properties(width=alt.Step(step), height=alt.Step(max(24, step * 5 // 7)))
    st.altair_chart(chart, width="content", height="content")


def history_charts(history: list[dict[str, Any]]) -> None:
    if not history:
        st.caption("No training history stored for this model.")
        return
    frame = pd.DataFrame(history)
    if "epoch" not in frame:
        return
    frame = frame.set_index("epoch")
    losses = [c for c in frame.columns if c.endswith("_loss")]
    metrics = [c for c in METRICS if c in frame.columns]
    left, right = st.columns(2)
    if losses:
        left.caption("Losses")
        left.line_chart(frame[losses], height=220)
    if metrics:
        right.caption("Validation metrics")
        right.line_chart(frame[metrics].rename(columns=METRICS), height=220)


# ------------------------------------------------------------------------------------- sections
def overview(model: dict[str, Any]) -> None:
    metrics = model.get("metrics") or {}
    params = model.get("params") or {}
    cols = st.columns(4)
    for col, (key, title) in zip(cols, METRICS.items(), strict=True):
        col.metric(title, _num(metrics.get(key)))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**Dataset version:** {esc(model.get('version_name') or 'none (uploaded weights)')}  \n"
                    f"**Architecture:** {esc(model.get('arch') or '?')}  \n"
                    f"**Classes:** {esc(', '.join(model.get('classes') or []))}  \n"
                    f"**Created:** {fmt_time(model.get('created_at'))}")
    with c2:
        shown = {k: v for k, v in params.items() if k not in ("exports", "hyp") and not isinstance(v, (dict, list))}
        shown.update({f"hyp.{k}": v for k, v in (params.get("hyp") or {}).items()})
        if shown:
            st.dataframe(pd.DataFrame({"setting": list(shown), "value": [str(v) for v in shown.values()]}),
                         hide_index=True, width="stretch", height=min(35 * len(shown) + 38, 300))
    per_class = metrics.get("per_class_ap") or {}
    if per_class:
        st.caption("Per-class AP at the end of training (validation split)")
        st.dataframe(pd.DataFrame({"class": list(per_class), "AP": list(per_class.values())}), hide_index=True)
    st.subheader("Training curves")
    history_charts(metrics.get("history") or [])

    st.subheader("Evaluations")
    found = evaluations(model)
    if not found:
        st.caption("Not evaluated yet: use the **Evaluate** tab.")
        return
    pick = st.selectbox("Evaluation", range(len(found)), key="models.eval_pick",
                        format_func=lambda i: f"{found[i].get('version_name')} / {found[i].get('split')} · "
                                              f"{found[i].get('at', '')[:16]} · mAP50 {_num(found[i].get('map50'))}")
    ev = found[pick]
    cols = st.columns(4)
    for col, (key, title) in zip(cols, METRICS.items(), strict=True):
        col.metric(title, _num(ev.get(key)))
    st.dataframe(per_class_frame(ev), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        st.caption("Precision-recall curve per class")
        pr_chart(ev)
    with right:
        conf = (ev.get("confusion") or {}).get("conf")
        st.caption(f"Confusion matrix (boxes with confidence ≥ {conf}; 'background' = missed or spurious)")
        confusion_chart(ev)


def delete_section(model: dict[str, Any]) -> None:
    with st.expander("Delete this model"):
        st.warning("Deletes the model entry and its training run's files (weights, plots). This cannot be undone.")
        sure = st.checkbox(f"Yes, delete {model['name']}", key=f"models.delete_sure.{model['id']}")
        if st.button("Delete model", key=f"models.delete.{model['id']}", disabled=not sure):
            try:
                registry.delete_model(model["id"])
            except TpodError as exc:
                show_error(exc)
            else:
                st.session_state.pop("models.model", None)
                st.rerun()


def _job_section(key: str, label: str) -> dict[str, Any] | None:
    """Progress of the job this section last started; its final row once it ended."""
    job_id = st.session_state.get(key)
    if not job_id:
        return None
    state = job_progress(job_id, label=label)
    if state in jobstate.TERMINAL:
        try:
            return jobstate.get_job(job_id)
        except TpodError as exc:
            show_error(exc)
    return None


def evaluate_section(model: dict[str, Any]) -> None:
    try:
        versions = datasets.list_versions(project.id)
    except TpodError as exc:
        show_error(exc)
        return
    if not versions:
        st.info("No dataset version in this project yet: make one on the **Datasets** page.")
        return
    by_id = {v["id"]: v for v in versions}
    ids = list(by_id)
    default = ids.index(model["version_id"]) if model.get("version_id") in ids else 0
    c1, c2 = st.columns([3, 1])
    version_id = c1.selectbox("Dataset version", ids, index=default, format_func=lambda i: by_id[i]["name"],
                              key="models.eval_version")
    split = c2.radio("Split", SPLITS, horizontal=True, key="models.eval_split",
                     help="val: the split training watched; test: images the model never saw.")
    if st.button("Evaluate", type="primary", key="models.eval_start"):
        try:
            params = evaluation_params(model["id"], version_id, split)
            st.session_state["models.eval_job"] = jobstate.submit(ctx.queue, "evaluate", params,
                                                                  project_id=project.id, author=ctx.user)
        except TpodError as exc:
            show_error(exc)
    job = _job_section("models.eval_job", "Evaluation")
    if job and job["state"] == "done":
        st.success("Evaluation done: see it under **Overview → Evaluations**.")


def preview_section(model: dict[str, Any]) -> None:
    imgsz = int((model.get("params") or {}).get("imgsz") or 640)
    conf = st.slider("Confidence threshold", 0.01, 0.99, 0.25, 0.01, key="models.preview_conf")
    source = st.radio("Preview on", ["A project video", "An uploaded image or video"], horizontal=True,
                      key="models.preview_source")
    video_id, upload, start, end = None, None, 0, None
    if source == "A project video":
        try:
            videos = labels.videos(project.id)
        except TpodError as exc:
            show_error(exc)
            return
        if not videos:
            st.info("No ready video in this project.")
            return
        by_id = {v["id"]: v for v in videos}
        video_id = st.selectbox("Video", list(by_id), format_func=lambda i: by_id[i]["name"],
                                key="models.preview_video")
        n = int(by_id[video_id]["frame_count"] or 1)
        start, end = st.slider("Frames", 0, n, (0, min(n, 60)), key=f"models.preview_range.{video_id}",
                               help=f"At most {PREVIEW_MAX_FRAMES} frames are rendered.")
        end = min(end, start + PREVIEW_MAX_FRAMES)
    else:
        file = st.file_uploader("Image or video", type=["jpg", "jpeg", "png", "bmp", "webp", "mp4", "avi", "mov",
                                                        "mkv", "webm"], key="models.preview_upload")
        if file is not None:
            upload = (file.name, file.getvalue())
        end = PREVIEW_MAX_FRAMES
    if st.button("Render preview", type="primary", key="models.preview_go",
                 disabled=video_id is None and upload is None):
        with st.spinner("Running the model…"):
            try:
                shown = preview(model["path"], video_id=video_id, upload=upload, start=start, end=end, conf=conf,
                                imgsz=imgsz)
            except TpodError as exc:
                show_error(exc)
                return
        st.session_state["models.preview_out"] = shown
    shown = st.session_state.get("models.preview_out")
    if shown:
        note = f"{shown['boxes']} boxes over {shown['frames']} frame{'s' if shown['frames'] != 1 else ''}"
        if not shown["boxes"]:
            note += ": none above this confidence; try a lower threshold"
        st.caption(note)
        if shown["kind"] == "image":
            st.image(shown["image"])
        else:
            st.video(str(shown["path"]))


def prelabel_section(model: dict[str, Any]) -> None:
    st.caption("Runs the model over a video and adds its boxes as **predicted** tracks with their confidence. "
               "Boxes you drew are never changed: a prediction overlapping one of them is skipped. "
               "Accept or reject predictions on the **Label** page.")
    try:
        videos = labels.videos(project.id)
    except TpodError as exc:
        show_error(exc)
        return
    if not videos:
        st.info("No ready video in this project.")
        return
    by_id = {v["id"]: v for v in videos}
    c1, c2 = st.columns([3, 2])
    video_id = c1.selectbox("Video", list(by_id), format_func=lambda i: by_id[i]["name"], key="models.pre_video")
    conf = c2.slider("Confidence threshold", 0.05, 0.95, 0.4, 0.05, key="models.pre_conf",
                     help="Lower finds more objects and more mistakes to reject.")
    have = {c.name for c in project.classes}
    missing = [c for c in model.get("classes") or [] if c not in have]
    create = False
    if missing:
        create = st.checkbox(f"Create the classes the project lacks ({', '.join(missing)})", value=False,
                             key="models.pre_create",
                             help="Otherwise the model's boxes of those classes are left out.")
    if st.button("Pre-label this video", type="primary", key="models.pre_start"):
        try:
            params = prelabel_params(model["id"], video_id, conf=conf, create_classes=create)
            st.session_state["models.pre_job"] = jobstate.submit(ctx.queue, "prelabel", params,
                                                                 project_id=project.id, author=ctx.user)
        except TpodError as exc:
            show_error(exc)
    job = _job_section("models.pre_job", "Pre-label")
    if job and job["state"] == "done":
        r = job.get("result") or {}
        if r.get("detections"):
            st.success(f"{r['detections']} boxes in {r.get('tracks', 0)} tracks over {r.get('frames', 0)} frames "
                       "(minus any that overlap your own boxes). Review them on the **Label** page.")
        else:
            st.warning(f"The model found nothing above confidence {conf:.2f} in {r.get('frames', 0)} frames: "
                       "try a lower threshold.")


def export_section(model: dict[str, Any]) -> None:
    formats = available_formats()
    fmt = st.selectbox("Format", list(formats), format_func=lambda k: formats[k], key="models.export_format")
    if st.button("Export", type="primary", key="models.export_go"):
        try:
            params = export_params(model["id"], fmt)
            st.session_state["models.export_job"] = jobstate.submit(ctx.queue, "export_model", params,
                                                                    project_id=project.id, author=ctx.user)
        except TpodError as exc:
            show_error(exc)
    _job_section("models.export_job", "Export")
    done = exports_of(model)
    if not done:
        st.caption("No export yet. Each export is a zip with the model file, a README and an infer.py example.")
    for i, e in enumerate(done):
        c1, c2 = st.columns([3, 1])
        c1.write(f"**{esc(e['format'])}** · {(e.get('size') or 0) / 1e6:.1f} MB · {esc(e.get('at', '')[:16])}")
        c2.download_button("Download", lambda path=e["path"]: read_export(path), file_name=e["file_name"],
                           mime="application/zip", key=f"models.export_dl.{model['id']}.{i}")


def compare_section(models: list[dict[str, Any]]) -> None:
    if len(models) < 2:
        st.info("Train or upload a second model to compare.")
        return
    by_id = {m["id"]: m for m in models}
    ids = list(by_id)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", ids, format_func=lambda i: _label(by_id[i]), key="models.cmp_a")
    b = c2.selectbox("Model B", ids, index=1, format_func=lambda i: _label(by_id[i]), key="models.cmp_b")
    rows = []
    for key, title in METRICS.items():
        rows.append({"": title, "A": (by_id[a]["metrics"] or {}).get(key), "B": (by_id[b]["metrics"] or {}).get(key)})
    for m_id, col in ((a, "A"), (b, "B")):
        for name, ap in ((by_id[m_id]["metrics"] or {}).get("per_class_ap") or {}).items():
            row = next((r for r in rows if r[""] == f"AP {name}"), None)
            if row is None:
                row = {"": f"AP {name}", "A": None, "B": None}
                rows.append(row)
            row[col] = ap
    for key in ("arch", "version_name"):
        rows.append({"": key, "A": by_id[a].get(key), "B": by_id[b].get(key)})
    settings = sorted(set(by_id[a]["params"] or {}) | set(by_id[b]["params"] or {}) - {"exports", "hyp"})
    for key in settings:
        va, vb = (by_id[a]["params"] or {}).get(key), (by_id[b]["params"] or {}).get(key)
        if not isinstance(va, (dict, list)) and not isinstance(vb, (dict, list)):
            rows.append({"": key, "A": va, "B": vb})
    table = pd.DataFrame(rows).astype({"A": "string", "B": "string"})
    name_a, name_b = by_id[a]["name"], by_id[b]["name"]
    if name_a == name_b:
        name_a, name_b = f"{name_a} (#{a})", f"{name_b} (#{b})"
    table = table.rename(columns={"A": name_a, "B": name_b})
    st.dataframe(table, hide_index=True, width="stretch")
    left, right = st.columns(2)
    for col, m_id in ((left, a), (right, b)):
        with col:
            st.caption(by_id[m_id]["name"])
            history_charts((by_id[m_id]["metrics"] or {}).get("history") or [])


def upload_section() -> None:
    with st.expander("Add a model from a .pt file"):
        st.caption("A .pt file is a Python pickle: loading one can run any code it carries. Uploading is "
                   "therefore only possible when login is configured and you are signed in.")
        if not ctx.settings.auth_enabled or ctx.user == "local":
            st.info("Login is not configured on this server, so uploading weights is turned off.")
            return
        file = st.file_uploader("Ultralytics detection weights (.pt)", type=["pt"], key="models.upload_pt")
        if file is not None and st.button("Add model", key="models.upload_go"):
            try:
                new_id = import_model(project.id, file.name, file.getvalue(), author=ctx.user)
            except TpodError as exc:
                show_error(exc)
            else:
                st.session_state["models.model"] = new_id
                st.rerun()


# ------------------------------------------------------------------------------------- page
try:
    all_models = registry.list_models(project.id)
except TpodError as exc:
    show_error(exc)
    st.stop()

upload_section()
if not all_models:
    st.info("No model in this project yet: train one on the **Train** page.")
    st.stop()

models_by_id = {m["id"]: m for m in all_models}
model_id = st.selectbox("Model", list(models_by_id), format_func=lambda i: _label(models_by_id[i]),
                        key="models.model")
chosen = models_by_id[model_id]
tabs = st.tabs(["Overview", "Evaluate", "Preview", "Pre-label", "Export", "Compare"])
with tabs[0]:
    overview(chosen)
    if auth.can(ctx.role, "delete"):
        delete_section(chosen)
with tabs[1]:
    evaluate_section(chosen)
with tabs[2]:
    preview_section(chosen)
with tabs[3]:
    prelabel_section(chosen)
with tabs[4]:
    export_section(chosen)
with tabs[5]:
    compare_section(all_models)
