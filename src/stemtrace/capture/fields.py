"""Field names of buffered task events, in the order the signal handlers fill them.

On the hot path a handler builds tuples of values instead of dicts. The publisher
thread sends those values as a row and these names once per batch (its ``cols``, see
``core.events``), or zips them into an event object where a row does not fit. A tuple holding only strings,
numbers and ``None`` is untracked by the garbage collector at its first pass (a
dict, even an empty one, keeps any tuple that holds it tracked), so the events
waiting for the next flush are neither promoted nor traversed by later
collections of a large worker heap.
"""

from __future__ import annotations

from typing import Final

from stemtrace.core import events as ev

# What both the sending and the receiving side read from the message headers, in this order.
_HEADERS = ("root_id", "parent_id", "group_id", "group_index", "retries", "eta", "expires")

# ``data`` given as a tuple: the commonest events, built once per task and per send.
DATA_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    ev.TASK_PUBLISHED: (
        *_HEADERS,
        "queue",
        "exchange",
        "routing_key",
        "replaced_task_nesting",
        "publisher_task_id",
        "shadow",
        "ignore_result",
    ),
    ev.TASK_RECEIVED: (
        *_HEADERS,
        "replaced_task_nesting",
        "redelivered",
        "exchange",
        "routing_key",
        "queue",
    ),
    ev.TASK_STARTED: ("retries", "worker_pid", "root_id", "parent_id", "group_id", "group_index"),
    ev.TASK_SUCCEEDED: ("retries", "runtime", "handler_runtime"),
}

# ``raw``: live values the publisher thread redacts, bounds and serializes.
RAW_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    ev.TASK_PUBLISHED: ("args", "kwargs", "embed", "argsrepr", "kwargsrepr"),
    ev.TASK_RECEIVED: ("embed",),
    ev.TASK_SUCCEEDED: ("result",),
    ev.TASK_FAILED: ("exception", "traceback"),
    ev.TASK_RETRIED: ("exception", "traceback"),
    ev.TASK_INTERNAL_ERROR: ("exception", "traceback"),
    ev.TASK_REJECTED: ("exception",),
    ev.TASK_UNKNOWN: ("exception",),
}

# Hot types whose one raw value, when ``None``, has nothing to capture (a receipt without a
# canvas): the publisher skips finishing them. A ``None`` result, by contrast, is captured.
NOTHING_WHEN_NONE: Final = frozenset({ev.TASK_RECEIVED})

# What Celery embeds in a message with no canvas: dropped on the hot path, since a dict
# would keep the buffered event tracked. Compared with ``==``, so other shapes are kept.
EMPTY_EMBED: Final = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
