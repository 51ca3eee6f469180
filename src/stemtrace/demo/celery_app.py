"""The demo's tasks on a real broker, for the compose example.

``celery -A stemtrace.demo.celery_app worker`` runs them; ``python -m stemtrace.demo.celery_app``
keeps sending the demo workload. The broker and result backend come from
``STEMTRACE_DEMO_BROKER`` and ``STEMTRACE_DEMO_BACKEND``.
"""

from __future__ import annotations

import os

import stemtrace
from stemtrace.demo.tasks import create_app

app = create_app(
    broker=os.environ.get("STEMTRACE_DEMO_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("STEMTRACE_DEMO_BACKEND", "redis://127.0.0.1:6379/1"),
)
stemtrace.init(app)


def produce(rate: float) -> None:
    """Send the demo workload until interrupted."""
    from stemtrace.demo.workload import Workload

    workload = Workload(app, rate=rate)
    try:
        workload.run()
    except KeyboardInterrupt:
        workload.stop()


if __name__ == "__main__":
    produce(float(os.environ.get("STEMTRACE_DEMO_RATE", "20")))
