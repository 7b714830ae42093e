"""Train: start a YOLO training run on a dataset version, follow it live, cancel it, list runs."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, datasets, jobstate, registry
from app.errors import TpodError
from app.training import DEFAULTS, HYPERPARAMETERS
from app.weights import MODELS, resolve_model
from pages.components.common import STATE_ICONS, esc, fmt_time, page_setup, show_error

ctx = page_setup("Train", require_project=True)
project = ctx.project
assert project is not None  # page_setup stops otherwise

IMAGE_SIZES = [320, 416, 512, 640, 800, 960, 1280]
DEVICES = ["auto", "cpu", "0", "1", "2", "3"]
METRIC_COLS = {"precision": "precision", "recall": "recall", "map50": "mAP50", "map50_95": "mAP50-95"}


def _fmt_s(seconds: Any) -> str:
    if seconds is None:
        return "–"
    s = int(float(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _version_label(v: dict[str, Any]) -> str:
    splits = (v.get("stats") or {}).get("splits") or {}
    counts = " / ".join(f"{k} {s.get('images', 0)}" for k, s in splits.items())
    return f"{v['name']} · {counts} images" if counts else v["name"]


def _chart(frame: pd.DataFrame, columns: list[str], title: str, unit_range: bool = False) -> None:
    long = frame[columns].reset_index().melt("epoch", var_name="series", value_name="value").dropna()
    y = alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1]) if unit_range else alt.Undefined,
              axis=alt.Axis(format=".2f") if unit_range else alt.Undefined)
    chart = (
        alt.Chart(long, title=title)
        .mark_line(point=True)
        .encode(x=alt.X("epoch:Q", axis=alt.Axis(format="d", tickMinStep=1)), y=y,
                color=alt.Color("series:N", legend=alt.Legend(orient="right", title=None)),
                tooltip=["epoch", "series", alt.Tooltip("value:Q", format=".4f")])
    )
    st.altair_chart(chart, width="stretch", height=240)


def _curves(history: list[dict[str, Any]]) -> None:
    """Loss and metric charts from the per-epoch history (they grow as epochs end)."""
    if not history:
        st.caption("Charts appear when the first epoch ends.")
        return
    frame = pd.DataFrame(history).set_index("epoch")
    losses = [c for c in frame.columns if c.endswith("_loss")]
    metrics = [c for c in METRIC_COLS if c in frame.columns]
    if metrics:
        _chart(frame.rename(columns=METRIC_COLS), [METRIC_COLS[m] for m in metrics], "Validation metrics",
               unit_range=True)
    if losses:
        _chart(frame, losses, "Losses (train and validation)")


# ------------------------------------------------------------------------------------- new run
def _use_scratch() -> None:
    st.session_state["train.pretrained"] = False


def new_run_form() -> None:
    try:
        versions = datasets.list_versions(project.id)
    except TpodError as exc:
        show_error(exc)
        return
    if not versions:
        st.info("No dataset version yet: cut one on the **Dataset** page, then come back to train.")
        return
    ids = [v["id"] for v in versions]
    by_id = {v["id"]: v for v in versions}
    c1, c2 = st.columns([3, 2])
    version_id = c1.selectbox("Dataset version", ids, format_func=lambda i: _version_label(by_id[i]),
                              key="train.version")
    model = c2.selectbox("Model", MODELS, key="train.model",
                         help="n = nano (fastest), s = small, m = medium (most accurate, slowest).")
    pretrained = st.toggle("Start from pretrained COCO weights", value=True, key="train.pretrained",
                           help="Pretrained weights learn far faster; from scratch needs many more epochs.")
    try:
        plan = resolve_model(model, pretrained)
    except TpodError as exc:
        show_error(exc)
        return
    if plan["ok"]:
        (st.success if plan["source"] in ("local", "file") else st.info)(plan["message"])
    else:
        st.warning(plan["message"])
        st.button(f"Train from scratch instead ({plan['scratch']})", key="train.scratch",
                  on_click=_use_scratch)  # a callback: the toggle's state may change only before it renders

    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Epochs", 1, 10000, int(DEFAULTS["epochs"]), key="train.epochs")
    imgsz = c2.selectbox("Image size", IMAGE_SIZES, index=IMAGE_SIZES.index(int(DEFAULTS["imgsz"])),
                         key="train.imgsz", help="Longest side the images are resized to for training.")
    auto_batch = c3.checkbox("Auto batch", value=True, key="train.autobatch",
                             help="On a GPU: fill about 60% of its memory. On CPU: 8.")
    batch = -1 if auto_batch else c3.number_input("Batch", 1, 1024, 16, key="train.batch")
    patience = c4.number_input("Patience", 0, 10000, int(DEFAULTS["patience"]), key="train.patience",
                               help="Stop early after this many epochs without improvement (0 = never).")
    default_device = ctx.settings.device if ctx.settings.device in DEVICES else "auto"
    device = c5.selectbox("Device", DEVICES, index=DEVICES.index(default_device), key="train.device",
                          help="auto = the worker's first CUDA GPU, else its CPU. Numbers are CUDA indexes.")

    hyp: dict[str, float] = {}
    with st.expander("Advanced hyperparameters"):
        cols = st.columns(4)
        for n, (name, (lo, hi, default, help_text)) in enumerate(HYPERPARAMETERS.items()):
            step = default / 5 if default else (hi - lo) / 36
            value = cols[n % 4].number_input(name, min_value=float(lo), max_value=float(hi), value=float(default),
                                             step=float(step), format="%g", key=f"train.hyp.{name}",
                                             help=help_text)
            if value != default:
                hyp[name] = value

    if st.button("Start training", type="primary", key="train.start", disabled=not plan["ok"]):
        settings = {"pretrained": pretrained, "epochs": int(epochs), "imgsz": int(imgsz), "batch": int(batch),
                    "patience": int(patience), "device": device, "hyp": hyp}
        try:
            run_id, _ = registry.start_training(ctx.queue, project.id, version_id, model, settings, ctx.user)
        except TpodError as exc:
            show_error(exc)
        else:
            st.session_state["train.started"] = run_id
            st.rerun()
    if st.session_state.get("train.started"):
        st.success(f"Run {st.session_state['train.started']} queued.")


# ------------------------------------------------------------------------------------- live runs
def live_run(run: dict[str, Any]) -> None:
    """One active run, refreshed every 2 s by its own fragment."""
    run_id, job_id = run["id"], run["job_id"]

    @st.fragment(run_every=2)
    def _show() -> None:
        try:
            job = jobstate.job_status(ctx.queue, job_id)
        except TpodError as exc:
            show_error(exc)
            return
        p = job.get("progress") or {}
        state = job["state"]
        if state in jobstate.TERMINAL and not st.session_state.get(f"train.ended.{run_id}"):
            st.session_state[f"train.ended.{run_id}"] = True
            st.rerun(scope="app")  # once: the run list below shows the outcome
        history = p.get("history") or []
        seen_key = f"train.seen.{run_id}"
        if state == "running" and len(history) != st.session_state.get(seen_key, -1):
            try:
                registry.update_run_progress(run_id, p)
            except TpodError:
                pass  # a busy database only delays the stored copy; the live view goes on
            st.session_state[seen_key] = len(history)
        phase = p.get("state") or state
        st.markdown(f"**Run {run_id}** · {esc(run['model_arch'])} on {esc(run.get('version_name') or '')} · "
                    f"{STATE_ICONS.get(state, '')} {esc(phase)}")
        epochs = p.get("epochs") or (run.get("params") or {}).get("epochs")
        last = history[-1] if history else {}
        gpu = p.get("gpu_mem_gb")
        m = st.columns(3)
        m[0].metric("Epoch", f"{p.get('epoch') or 0}/{epochs or '?'}")
        m[1].metric("Batch", f"{p.get('batch') or 0}/{p.get('batches') or '?'}")
        m[2].metric("mAP50-95 (last epoch)",
                    f"{last['map50_95']:.3f}" if last.get("map50_95") is not None else "–")
        m = st.columns(3)
        m[0].metric("Elapsed", _fmt_s(p.get("elapsed_s")))
        m[1].metric("ETA", _fmt_s(p.get("eta_s")))
        m[2].metric("GPU memory", f"{gpu:.1f} GB" if gpu is not None else "–",
                    help=f"device {p.get('device') or '?'}; reserved by PyTorch on the worker")
        done, total = p.get("done"), p.get("total")
        if done is not None and total:
            st.progress(min(1.0, float(done) / float(total)), text=p.get("message") or phase)
        else:
            st.caption(p.get("message") or ("waiting for a worker" if state == "queued" else phase))
        if p.get("losses"):
            st.caption("Current batch losses: " + " · ".join(f"{k} {v:.3f}" for k, v in p["losses"].items()
                                                            if v is not None))
        _curves(history)
        if p.get("cancelling"):
            st.info("Cancelling: finishing the current batch and saving the best weights so far.")
        elif st.button("Cancel", key=f"train.cancel.{run_id}"):
            try:
                jobstate.cancel(ctx.queue, job_id)
            except TpodError as exc:
                show_error(exc)

    with st.container(border=True):
        _show()


# ------------------------------------------------------------------------------------- run list
def run_details(run: dict[str, Any]) -> None:
    if run["state"] == "failed" and run.get("error"):
        st.error(run["error"])
    elif run["state"] == "cancelled" and run.get("model_id") is not None:
        st.info("Cancelled: the model below keeps the best weights of the epochs that ran.")
    params = run.get("params") or {}
    st.caption(f"epochs {params.get('epochs')} · imgsz {params.get('imgsz')} · batch "
               f"{'auto' if params.get('batch') == -1 else params.get('batch')} · device {params.get('device')} · "
               f"{'pretrained' if params.get('pretrained') else 'from scratch'} · by {esc(run.get('created_by') or '–')}")
    if params.get("weights_plan"):
        st.caption(params["weights_plan"])
    _curves(run.get("history") or [])
    if run.get("model_id") is None:
        return
    try:
        model = registry.get_model(run["model_id"])
    except TpodError as exc:
        show_error(exc)
        return
    metrics = model.get("metrics") or {}
    st.markdown(f"Model **{esc(model['name'])}** (id {model['id']})")
    cols = st.columns(4)
    for col, (key, label) in zip(cols, METRIC_COLS.items(), strict=True):
        value = metrics.get(key)
        col.metric(label, f"{value:.3f}" if value is not None else "–")
    per_class = metrics.get("per_class_ap") or {}
    if per_class:
        st.caption("AP50-95 per class (validation split)")
        st.dataframe(pd.DataFrame({"class": list(per_class), "AP50-95": list(per_class.values())}),
                     hide_index=True, width="stretch")
    if auth.can(ctx.role, "delete") and st.button("Delete model and its files", key=f"train.delete.{model['id']}"):
        try:
            registry.delete_model(model["id"])
        except TpodError as exc:
            show_error(exc)
        else:
            st.rerun()


def run_list(runs: list[dict[str, Any]]) -> None:
    st.subheader("Runs")
    if not runs:
        st.info("No training runs in this project yet.")
        return
    rows = []
    for r in runs:
        history = r.get("history") or []
        best = max((h.get("map50_95") or 0.0 for h in history), default=None)
        rows.append({"run": r["id"], "state": f"{STATE_ICONS.get(r['state'], '')} {r['state']}",
                     "model": r["model_arch"], "version": r.get("version_name"),
                     "epochs": f"{sum(1 for h in history if not h.get('partial'))}/"
                               f"{(r.get('params') or {}).get('epochs', '?')}",
                     "best mAP50-95": best, "started": fmt_time(r["created_at"]), "by": r.get("created_by")})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"best mAP50-95": st.column_config.NumberColumn(format="%.3f")})
    finished = [r for r in runs if r["state"] in jobstate.TERMINAL]
    if finished:
        by_id = {r["id"]: r for r in finished}
        chosen = st.selectbox("Details of run", list(by_id), key="train.details",
                              format_func=lambda i: f"run {i} · {by_id[i]['model_arch']} · {by_id[i]['state']}")
        run_details(by_id[chosen])


# ------------------------------------------------------------------------------------- layout
with st.expander("New training run", expanded=True):
    new_run_form()

try:
    all_runs = registry.list_runs(project.id)
except TpodError as exc:
    show_error(exc)
    all_runs = []
active = [r for r in all_runs if r["state"] not in jobstate.TERMINAL and r.get("job_id")]
if active:
    st.subheader("Active")
    for r in active:
        live_run(r)
run_list(all_runs)
