"""A user trains a tiny detector from scratch on the Train page and watches it live: the epoch
counter and the loss/metric charts grow while the real worker trains, then the run ends with a
registered model."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from app import datasets, ingest, labels, registry
from app.projects import create_project
from app.store import db
from tests._tiny_model import otb_gt
from tests.conftest import SHARED
from tests.e2e.conftest import shot, wait_idle

pytestmark = pytest.mark.e2e

CLIP = SHARED / "otb_crossing" / "crossing_h264.mp4"
EPOCHS = 3


def read(fn: Callable[[], Any]) -> Any:
    """Read the store, then let go of the DuckDB file so the server can take it."""
    try:
        return fn()
    finally:
        db.release()


def tiny_version() -> tuple[int, str]:
    """OTB Crossing at 240 px, the pedestrian's ground truth on every 4th frame, a blocks split."""
    project = create_project("crossing", ["person"])
    [video] = ingest.ingest_now(project.id, [(CLIP.name, CLIP)], max_side=240)
    gt = otb_gt()
    for f in range(0, 120, 4):
        labels.create_box(video["id"], f, project.classes[0].id, gt[f], "test")
    version = datasets.create_version(project.id, "v1", split="blocks", val=0.25, block_size=10)
    db.release()
    return project.id, version["name"]


def pick(page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)
    assert box.input_value() == option, (label, box.input_value())


def observe(page) -> dict[str, Any]:
    """What the live run shows now: its epoch counter, and the points drawn in each chart, legends aside (Vega
    renders SVG here: one path per point in the symbol marks of `mark_line(point=True)`)."""
    return page.evaluate("""() => {
        const metric = [...document.querySelectorAll('[data-testid="stMetric"]')]
            .find(m => m.innerText.startsWith('Epoch'));
        const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
        return {epoch: metric ? metric.querySelector('[data-testid="stMetricValue"]').innerText : null,
                points: charts.map(c => c.querySelectorAll('g.mark-symbol.role-mark path').length)};
    }""")


def test_train_from_scratch_and_watch_it_live(server, page) -> None:
    project_id, version_name = tiny_version()

    page.goto(server.url)
    page.get_by_text("Worker online").wait_for(timeout=60000)
    page.get_by_role("link", name="Train").first.click()
    wait_idle(page)
    chosen = page.get_by_role("combobox", name="Dataset version").input_value()
    assert chosen == f"{version_name} · train 21 / val 6 images", chosen
    pick(page, "Model", "yolo26n")
    page.get_by_text("Start from pretrained COCO weights").click()  # off: from the model's YAML
    wait_idle(page)
    page.get_by_label("Epochs", exact=True).fill(str(EPOCHS))
    page.get_by_label("Epochs", exact=True).press("Enter")
    wait_idle(page)
    pick(page, "Image size", "320")
    pick(page, "Device", "cpu")
    shot(page, "train_form")
    page.get_by_role("button", name="Start training").click()
    wait_idle(page)
    page.get_by_text("queued.").first.wait_for()

    # follow the live run until it leaves the "Active" list; note each distinct view of it
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = observe(page)
        if now["epoch"] is None and seen:
            break  # the live view is gone: the run ended
        if now["epoch"] is not None and (not seen or now != seen[-1]):
            seen.append(now)
            if len({sum(s["points"]) for s in seen if s["points"]}) == 2 and now["points"]:
                page.locator("[data-testid='stVegaLiteChart']").first.scroll_into_view_if_needed()
                shot(page, "train_live")  # the second drawing of the charts
        page.wait_for_timeout(250)
    assert seen and seen[-1]["epoch"] is not None, "the live run never showed"
    assert all(s["epoch"].endswith(f"/{EPOCHS}") for s in seen), seen
    drawn = [sum(s["points"]) for s in seen if s["points"]]
    # the charts grew while the run was live: more points later than at the first drawing
    assert len(set(drawn)) >= 2 and drawn == sorted(drawn), seen
    epochs = [int(s["epoch"].split("/")[0]) for s in seen]
    assert epochs == sorted(epochs) and len(set(epochs)) >= 2, seen

    wait_idle(page)
    page.get_by_text(re.compile(r"^Model .+ \(id \d+\)$")).wait_for(timeout=60000)  # the run's model, recorded
    [run] = read(lambda: registry.list_runs(project_id))
    assert run["state"] == "done", run
    assert len([h for h in run["history"] if not h.get("partial")]) == EPOCHS
    [model] = read(lambda: registry.list_models(project_id))
    assert model["id"] == run["model_id"] and model["classes"] == ["person"]
    page.get_by_text(f"Model {model['name']} (id {model['id']})").wait_for()
    # the runs table (a canvas grid, with a hidden accessible copy of its cells)
    page.get_by_text(f"{EPOCHS}/{EPOCHS}", exact=True).first.wait_for(state="attached")
    finished = observe(page)["points"]  # the finished run's charts, under "Details of run"
    # one point per epoch and series with a value: the whole history is drawn
    charted = sum(1 for h in run["history"] for k, v in h.items()
                  if v is not None and (k.endswith("_loss") or k in ("precision", "recall", "map50", "map50_95")))
    assert sum(finished) == charted >= EPOCHS * 5, (finished, run["history"])
    page.locator("[data-testid='stVegaLiteChart']").first.scroll_into_view_if_needed()
    shot(page, "train_done")
