"""What every page shares: login gate, sidebar (project picker, worker status), job progress.

Pages call `ctx = page_setup("Title")` first, then lay out widgets and call into app/.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app import auth, jobstate, projects
from app.domain import Project
from app.errors import TpodError
from app.settings import Settings, get_settings

STATE_ICONS = {"queued": "⏳", "running": "🏃", "done": "✅", "failed": "❌", "cancelled": "⏹️"}


@dataclass
class Ctx:
    user: str
    role: str
    project: Project | None
    queue: Any
    settings: Settings


@st.cache_resource
def _queue_and_reconciler(key: tuple) -> Any:
    """One queue client and one reconciler thread per web process (and per data dir)."""
    from jobs.client import get_queue

    queue = get_queue()
    jobstate.Reconciler(queue, every_s=2.0).start()
    return queue


def get_queue() -> Any:
    s = get_settings()
    return _queue_and_reconciler((s.queue_backend, s.redis_url, str(s.data_dir)))


_MD_SPECIAL = "\\`*_{}[]<>()#+-.!|~$:"


def esc(text: object) -> str:
    """User text shown literally inside Streamlit markdown (names may hold *, [, #, $, ...)."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


def show_error(exc: Exception) -> None:
    st.error(str(exc), icon="⚠️")


def _oidc_configured() -> bool:
    """OpenID Connect through st.login when .streamlit/secrets.toml has an [auth] section."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all (StreamlitSecretNotFoundError is one)
        return False


def _login_gate() -> tuple[str, str]:
    """Returns (user, role). Stops the page with a login form when login is on and nobody is in."""
    oidc = _oidc_configured()
    if not auth.login_required() and not oidc:
        return "local", "admin"
    user = st.session_state.get("auth.user")
    if user:
        return user, st.session_state.get("auth.role", "annotator")
    if oidc and st.user.is_logged_in:
        name = str(st.user.get("email") or st.user.get("name") or "sso-user")
        # roles for SSO users come from the users file when it names them; annotator otherwise
        role = next((u["role"] for u in auth.list_users() if u["name"] == name), "annotator")
        st.session_state["auth.user"], st.session_state["auth.role"] = name, role
        return name, role
    st.title("tpod")
    st.subheader("Sign in")
    if oidc:
        st.button("Sign in with single sign-on", on_click=st.login, type="primary", key="auth.sso")
        if not auth.login_required():
            st.stop()
    with st.form("auth.form"):
        name = st.text_input("User name", key="auth.name")
        password = st.text_input("Password", type="password", key="auth.password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        role = auth.verify(name, password)
        if role:
            st.session_state["auth.user"] = name.strip()
            st.session_state["auth.role"] = role
            st.rerun()
        st.error("Wrong user name or password.")
    st.stop()
    raise AssertionError("unreachable")


@st.cache_data(ttl=3, show_spinner=False)
def _worker_summary(key: tuple) -> tuple[int, int, list[str]]:
    queue = get_queue()
    try:
        workers = queue.workers()
        return len(workers), queue.pending(), [w["name"] for w in workers]
    except Exception as exc:  # noqa: BLE001 - the queue backend being down is shown, not raised
        return -1, 0, [f"queue unreachable: {exc}"]


def _sidebar(user: str, role: str, settings: Settings) -> Project | None:
    with st.sidebar:
        n, pending, names = _worker_summary((settings.queue_backend, str(settings.data_dir)))
        if n > 0:
            st.markdown(f"🟢 **Worker online** ({n}) · queue {pending}", help="\n".join(names))
        elif n == 0:
            st.markdown(f"🔴 **No worker online** · queue {pending}",
                        help="Background jobs wait until a worker runs: `python -m app worker`")
        else:
            st.markdown("🔴 **Queue unreachable**", help=names[0] if names else None)
        try:
            all_projects = projects.list_projects()
        except TpodError as exc:
            show_error(exc)
            all_projects = []
        project = None
        if all_projects:
            ids = [p.id for p in all_projects]
            current = st.session_state.get("project_id")
            index = ids.index(current) if current in ids else 0
            chosen = st.selectbox("Project", ids, index=index, key="sidebar.project",
                                  format_func=lambda i: next(p.name for p in all_projects if p.id == i))  # widgets show text literally
            st.session_state["project_id"] = chosen
            project = next(p for p in all_projects if p.id == chosen)
        if auth.login_required() or _oidc_configured():
            st.caption(f"Signed in as **{esc(user)}** ({role})")
            if st.button("Sign out", key="auth.signout"):
                for k in ("auth.user", "auth.role"):
                    st.session_state.pop(k, None)
                if _oidc_configured() and st.user.is_logged_in:
                    st.logout()
                st.rerun()
        else:
            st.caption("🔓 Open access: no login configured (add a user with `python -m app user add`).")
    return project


def page_setup(title: str, *, require_project: bool = False) -> Ctx:
    """Login gate, sidebar, title. Stops the page with a hint when a project is required and none exists."""
    settings = get_settings()
    user, role = _login_gate()
    project = _sidebar(user, role, settings)
    st.title(title)
    if require_project and project is None:
        st.info("Create a project first on the **Projects** page.")
        st.stop()
    return Ctx(user=user, role=role, project=project, queue=get_queue(), settings=settings)


def job_progress(job_id: str, *, label: str = "", every_s: float = 1.0) -> str:
    """A self-refreshing progress line for one background job. Returns the state seen first."""
    state_key = f"jobprogress.{job_id}"

    @st.fragment(run_every=every_s)
    def _show() -> None:
        try:
            job = jobstate.job_status(get_queue(), job_id)
        except TpodError as exc:
            show_error(exc)
            return
        st.session_state[state_key] = job["state"]
        p = job.get("progress") or {}
        done, total = p.get("done"), p.get("total")
        icon = STATE_ICONS.get(job["state"], "")
        text = f"{icon} {label or job['kind']} — {job['state']}"
        if p.get("message"):
            text += f" · {p['message']}"
        if done is not None and total:
            frac = min(1.0, float(done) / float(total))
            extra = []
            if p.get("fps"):
                extra.append(f"{float(p['fps']):.0f} fps")
            if p.get("eta_s") is not None:
                extra.append(f"ETA {float(p['eta_s']):.0f}s")
            st.progress(frac, text=f"{text} · {done}/{total} " + " · ".join(extra))
        else:
            st.write(text)
        if job["state"] == "failed" and job.get("error"):
            st.error(job["error"])
        if job["state"] in jobstate.TERMINAL and not st.session_state.get(state_key + ".final"):
            st.session_state[state_key + ".final"] = True
            st.rerun(scope="app")

    _show()
    return st.session_state.get(state_key, "queued")


def fmt_time(ts: Any) -> str:
    if ts is None:
        return ""
    if isinstance(ts, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
    return str(ts)[:16]
