"""Jobs: the queue across all projects, the workers serving it, cancel."""
from __future__ import annotations

import streamlit as st

from app import jobstate
from app.errors import TpodError
from pages.components.common import STATE_ICONS, fmt_time, page_setup, show_error

ctx = page_setup("Jobs")


@st.fragment(run_every=2)
def _jobs() -> None:
    try:
        jobstate.reconcile(ctx.queue)
        workers = ctx.queue.workers()
        jobs = jobstate.list_jobs(limit=100)
    except TpodError as exc:
        show_error(exc)
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Workers online", len(workers))
    c2.metric("Waiting in queue", ctx.queue.pending())
    c3.metric("Running", sum(1 for j in jobs if j["state"] == "running"))
    if workers:
        st.caption("Workers: " + ", ".join(f"{w['name']} ({len(w.get('running', []))} running)" for w in workers))
    if not jobs:
        st.info("No jobs yet. Ingests, training runs, evaluations, pre-labels and exports show up here.")
        return
    for job in jobs:
        p = job.get("progress") or {}
        cols = st.columns([2, 1, 2, 3, 1])
        cols[0].write(f"`{job['id']}` {job['kind']}")
        cols[1].write(f"{STATE_ICONS.get(job['state'], '')} {job['state']}")
        cols[2].write(fmt_time(job["created_at"]))
        detail = job.get("error") or p.get("message") or ""
        if p.get("done") is not None and p.get("total"):
            detail = f"{p['done']}/{p['total']} {detail}"
        cols[3].write(detail)
        if job["state"] in ("queued", "running") and cols[4].button("Cancel", key=f"queue.cancel.{job['id']}"):
            jobstate.cancel(ctx.queue, job["id"])
            st.rerun()


_jobs()
