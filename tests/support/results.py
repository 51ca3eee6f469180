"""Wait for Celery results by polling the backend, never through its pub/sub consumer.

``AsyncResult.get()`` on the Redis backend waits on a pub/sub connection with no socket
timeout of its own; a dropped or half-read message there can block a test forever (and
``get(timeout=...)`` never fires). Polling ``ready()`` reads the result key with a plain
GET, so a deadline always holds.
"""

from __future__ import annotations

import time
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout


def wait(result: Any, timeout: float, *, propagate: bool = True, interval: float = 0.05) -> Any:
    """Return ``result``'s value once ready; raise Celery's TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not result.ready():
        if time.monotonic() >= deadline:
            raise CeleryTimeout(f"{result!r} not ready after {timeout:.0f} s")
        time.sleep(interval)
    # Ready: get() now reads the stored meta and returns (or raises) without waiting.
    return result.get(timeout=1, propagate=propagate, disable_sync_subtasks=False)
