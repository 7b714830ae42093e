"""AppTest smoke tests for the home, projects and jobs pages, and the login gate."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import auth, projects
from tests.conftest import ROOT


def _run(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=60)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def test_home_lists_projects(data_dir: Path) -> None:
    projects.create_project("alpha", ["car"])
    at = _run("pages/home.py")
    assert not at.exception
    assert [h.value for h in at.subheader][0] == "alpha"


def test_home_without_projects_points_to_projects_page(data_dir: Path) -> None:
    at = _run("pages/home.py")
    assert not at.exception
    assert any("No projects yet" in i.value for i in at.info)


def test_projects_page_creates_and_refuses_duplicates(data_dir: Path) -> None:
    at = _run("pages/projects.py")
    at.text_input(key="projects.new_name").input("beta")
    at.text_input(key="projects.new_classes").input("car, person")
    at.button[0].click().run()
    assert not at.exception
    assert [c.name for c in projects.get_project("beta").classes] == ["car", "person"]
    at.text_input(key="projects.new_name").input("beta")
    at.button[0].click().run()
    assert any("already exists" in e.value for e in at.error)


def test_jobs_page_renders(data_dir: Path) -> None:
    at = _run("pages/queue.py")
    assert not at.exception
    assert any("No jobs yet" in i.value for i in at.info)


@pytest.mark.parametrize("page", ["pages/home.py", "pages/projects.py", "pages/queue.py"])
def test_login_gate_refuses_anonymous(data_dir: Path, page: str) -> None:
    auth.add_user("ana", "correct horse", role="admin")
    at = _run(page)
    assert not at.exception
    assert [t.value for t in at.title] == ["tpod"] and at.text_input(key="auth.password")
    at.text_input(key="auth.name").input("ana")
    at.text_input(key="auth.password").input("wrong password")
    at.button[0].click().run()
    assert any("Wrong user name or password" in e.value for e in at.error)
    at.text_input(key="auth.password").input("correct horse")
    at.button[0].click().run()
    assert at.session_state["auth.user"] == "ana"
    assert "tpod" not in [t.value for t in at.title] or len(at.title) == 1


def test_annotators_cannot_delete_projects_admins_can(data_dir: Path) -> None:
    auth.add_user("ana", "correct horse", role="admin")
    auth.add_user("bob", "battery staple", role="annotator")
    projects.create_project("gamma", ["car"])
    at = _run("pages/projects.py", **{"auth.user": "bob", "auth.role": "annotator"})
    assert not at.exception
    labels = [b.label for b in at.button]
    assert "Delete project" not in labels and "Delete" not in labels and "Add class" in labels
    at = _run("pages/projects.py", **{"auth.user": "ana", "auth.role": "admin"})
    assert "Delete project" in [b.label for b in at.button]
