"""Entry for `huey_consumer jobs.worker.huey`: the consumer's Huey with the task and a heartbeat."""
from __future__ import annotations

import logging
import threading

from jobs.config import make_huey
from jobs.tasks import register, worker_heartbeat_loop

huey = make_huey()
run_job = register(huey)

_started = threading.Event()
_stop = threading.Event()


@huey.on_startup()
def _start_heartbeat() -> None:
    # on_startup runs once per worker thread; one heartbeat thread per process is enough.
    if _started.is_set():
        return
    _started.set()
    logging.getLogger("tpod.worker").info("worker heartbeat started")
    threading.Thread(target=worker_heartbeat_loop, args=(huey, _stop), name="tpod-heartbeat", daemon=True).start()


@huey.on_shutdown()
def _stop_heartbeat() -> None:
    _stop.set()
