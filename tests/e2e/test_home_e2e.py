"""A new user opens tpod, creates a project with two classes, and sees it listed."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import shot, wait_idle

pytestmark = pytest.mark.e2e


def test_create_project_with_two_classes_and_see_it(server, page) -> None:
    page.goto(server.url)
    page.get_by_text("No projects yet").wait_for()
    page.get_by_text("Worker online").wait_for(timeout=60000)
    page.get_by_role("link", name="Projects").first.click()
    wait_idle(page)
    page.get_by_label("Project name").fill("Street *<cars>* & 'people' [x](y)")
    page.get_by_label("Label classes (comma-separated)").fill("car, person")
    page.get_by_role("button", name="Create project").click()
    wait_idle(page)
    page.get_by_text("Street *<cars>* & 'people' [x](y)  ·  2 classes").wait_for()
    shot(page, "projects_created")
    page.get_by_role("link", name="Home").first.click()
    wait_idle(page)
    page.get_by_role("heading", name="Street *<cars>* & 'people' [x](y)").wait_for()
    page.get_by_text("car · person").wait_for()
    shot(page, "home_with_project")

    from app import projects

    [p] = projects.list_projects()
    assert p.name == "Street *<cars>* & 'people' [x](y)" and [c.name for c in p.classes] == ["car", "person"]
