"""A new user opens tpod, creates a project with two classes, and sees it listed."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import shot, wait_idle

pytestmark = pytest.mark.e2e


def test_create_project_with_two_classes_and_see_it(server, page) -> None:
    page.goto(server.url)
    page.get_by_text("No projects yet").wait_for(timeout=180000)  # first run of a fresh server
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


def test_cli_ingest_and_import_while_the_app_serves(server, page) -> None:
    """A teammate scripts an ingest and an import while the app runs; the browser sees both."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, SHARED

    page.goto(server.url)
    page.get_by_text("No projects yet").wait_for(timeout=180000)  # first run of a fresh server

    def cli(*args: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "app", *args, "--json"], cwd=ROOT, env=server.env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    otb = SHARED / "otb_crossing"
    video = cli("ingest", str(otb / "crossing_h264.mp4"), "--project", "Crossing")
    assert video["frames"] == 120
    gt = [[float(v) for v in line.replace(",", " ").split()] for line in (otb / "groundtruth_rect.txt").read_text().splitlines()]
    coco = {"images": [{"id": i + 1, "file_name": f"frame_{i:06d}.jpg", "width": 360, "height": 240} for i in range(120)],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": gt[i], "area": gt[i][2] * gt[i][3],
                             "iscrowd": 0, "attributes": {"track_id": 1, "keyframe": True}} for i in range(120)]}
    ann = server.data_dir.parent / "crossing_coco.json"
    ann.write_text(json.dumps(coco))
    report = cli("import", str(ann), "--project", "Crossing", "--format", "coco", "--video", str(video["video_id"]))
    assert report["boxes"] == 120 and report["tracks"] == 1
    assert os.path.exists(server.data_dir / "tpod.duckdb")
    page.reload()
    page.get_by_role("heading", name="Crossing").wait_for()
    page.get_by_text("120 labeled").wait_for()
    shot(page, "home_after_cli")


def test_a_deep_link_after_a_restart_gets_tpods_navigation(server, page) -> None:
    """The first request of a fresh server is a bookmark to /stats: tpod's sidebar, not Streamlit's
    auto-generated one from the pages/ folder."""
    from app import projects

    projects.create_project("deep", ["a"])
    page.goto(f"{server.url}/stats")
    page.get_by_role("heading", name="Dataset health").wait_for()
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_text("Import / Export").wait_for()
    assert nav.get_by_text("streamlit app").count() == 0
    wait_idle(page)
    shot(page, "deep_link_stats")
