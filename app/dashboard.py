"""The overview on the home page: projects with their counts, videos, recent training runs."""
from __future__ import annotations

from app import framestore
from app.store import dashboard as sql
from app.store.db import connect


def overview() -> dict:
    """{"counts": {project_id: {...}}, "runs": [...]} in one unit of work."""
    with connect() as cur:
        return {"counts": sql.project_counts(cur), "runs": sql.recent_runs(cur)}


def project_videos(project_id: int) -> list[dict]:
    """Videos of a project with counts and the path of a snapshot frame (None until ingested)."""
    with connect() as cur:
        videos = sql.videos_overview(cur, project_id)
    for v in videos:
        snap = framestore.frame_file(v["id"], 0)
        v["snapshot"] = str(snap) if v["status"] == "ready" and snap.exists() else None
    return videos
