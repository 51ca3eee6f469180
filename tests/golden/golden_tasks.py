"""Extra tasks the golden recordings need, registered on the worker's test app.

``record.py`` starts the worker with ``-I tests.golden.golden_tasks`` so these are
registered next to the ``tests.support`` tasks. The client never imports this
module: it sends them by name (``app.signature("golden.on_error")``).
"""

from __future__ import annotations

from typing import Any

from tests.support.worker_app import app


def on_error(task_id: str) -> str:
    """An old-style errback: one argument, so Celery *publishes* it.

    See docs/research/celery-internals.md §2.5 R7.
    """
    return f"handled {task_id}"


def replace_with_chain(self: Any, x: int) -> Any:
    """``self.replace(chain(add, add))``: a new id for the first step, ours for the last."""
    first = self.app.signature("t.add", args=(x, 1))
    second = self.app.signature("t.add", args=(100,))
    return self.replace(first | second)


# Registered by call, not decorator syntax: Celery is untyped and mypy runs --strict.
app.task(name="golden.on_error")(on_error)
app.task(name="golden.replace_with_chain", bind=True)(replace_with_chain)
