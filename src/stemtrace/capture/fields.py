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
from stemtrace.core.wire import ROW_SHAPES

# ``data`` given as a tuple: the commonest events, built once per task and per send; the
# order is the wire's row shape (``core.wire.ROW_SHAPES``).
DATA_FIELDS: Final[dict[str, tuple[str, ...]]] = ROW_SHAPES

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
