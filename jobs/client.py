"""The queue as the web process and the CLI use it (implements app.jobstate.Queue)."""
from __future__ import annotations

import time
from functools import lru_cache

from huey import Huey

from app.settings import Settings, get_settings
from jobs.config import make_huey
from jobs.tasks import CANCEL_KEY, JOB_KEY, WORKER_KEY, read_json, register, write_json


class HueyQueue:
    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self.task = register(huey)

    def enqueue(self, kind: str, job_id: str, params: dict) -> None:
        write_json(self.huey, JOB_KEY.format(job_id), {"state": "queued", "enqueued_at": time.time()})
        task = self.task.s(kind, job_id, params)
        task.id = job_id
        self.huey.enqueue(task)

    def status(self, job_id: str) -> dict | None:
        return read_json(self.huey, JOB_KEY.format(job_id))

    def request_cancel(self, job_id: str) -> None:
        self.huey.storage.put_data(CANCEL_KEY.format(job_id), b"1")

    def revoke(self, job_id: str) -> None:
        self.huey.revoke_by_id(job_id)

    def workers(self, max_age_s: float | None = None) -> list[dict]:
        """Workers whose heartbeat is recent (default: within TPOD_WORKER_TIMEOUT_S)."""
        import json

        max_age = max_age_s if max_age_s is not None else get_settings().worker_timeout_s
        now = time.time()
        prefix = WORKER_KEY.format("")
        out = []
        for key, raw in self.huey.storage.result_items().items():
            key = key.decode() if isinstance(key, bytes) else key
            if not key.startswith(prefix):
                continue
            try:
                info = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if now - float(info.get("at", 0)) <= max_age:
                out.append(info)
        return sorted(out, key=lambda w: w["name"])

    def pending(self) -> int:
        return self.huey.pending_count()


@lru_cache(maxsize=8)
def _queue_for(key: tuple) -> HueyQueue:
    settings: Settings = key[-1]
    return HueyQueue(make_huey(settings))


def get_queue(settings: Settings | None = None) -> HueyQueue:
    s = settings or get_settings()
    return _queue_for((s.queue_backend, s.redis_url, str(s.queue_path), s))
