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


def never_unsubscribe_from_a_finalizer() -> None:
    """Work around a deadlock in the Redis result backend of older Celery (5.3.6 has it).

    Every ``.delay()`` in this process subscribes the result consumer to the task's
    channel, and ``AsyncResult.__del__`` unsubscribes. An ``AsyncResult`` sits in a
    reference cycle, so the cyclic garbage collector runs ``__del__`` at any allocation,
    including one inside redis-py's ``PubSub.execute_command`` on the same thread, which
    then waits forever on the ``PubSub`` lock that thread already holds. CI caught it on
    Celery 5.3.6 (the stack: ``subscribe`` -> ``send_command`` -> ``pack`` ->
    ``AsyncResult.__del__`` -> ``cancel_for`` -> ``unsubscribe`` -> ``execute_command``).
    Celery 5.7 defers that unsubscribe when the lock is busy; here the channel simply
    stays subscribed until the test process ends. Only the test process is patched: the
    library never uses a result backend.
    """
    from celery.backends import redis as redis_backend

    consumer: Any = redis_backend.ResultConsumer
    if hasattr(consumer, "_flush_pending_unsubscribe"):  # Celery with the deferred unsubscribe
        return

    def cancel_for(self: Any, task_id: str) -> None:
        self.subscribed_to.discard(self._get_key_for_task(task_id))

    consumer.cancel_for = cancel_for
