"""`python -m app`: the composition root that hands the CLI its queue (jobs/client.py)."""
from __future__ import annotations

import sys

from app.cli import main


def _make_queue():
    from jobs.client import get_queue

    return get_queue()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], _make_queue))
