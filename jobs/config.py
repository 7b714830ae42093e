"""The Huey instance, built from app.settings: SQLite under the data dir, or Redis when configured."""
from __future__ import annotations

from huey import Huey, RedisHuey, SqliteHuey

from app.settings import Settings, get_settings

QUEUE_NAME = "tpod"
TASK_NAME = "tpod.run_job"


def make_huey(settings: Settings | None = None) -> Huey:
    s = settings or get_settings()
    if s.queue_backend == "redis":
        return RedisHuey(QUEUE_NAME, url=s.redis_url, results=False)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(s.queue_path), results=False, timeout=10)
