"""The hot events, declared once: each field and where it comes from in Celery.

The four events sent for nearly every task (published, received, started, succeeded) are built
by their signal handlers (``signals``) as flat tuples, not dicts: a tuple holding only strings,
numbers and ``None`` is untracked by the garbage collector at its first pass, so the events
waiting for the next flush are never traversed by later collections of a large worker heap. A
tuple's contract is its order, so it is written down here, field by field with its source
(:data:`SOURCES`), and checked at import time against the wire's row shapes
(``core.wire.ROW_SHAPES``, what the server names the values by). A handler's entry is
``(type, ts, seq, task id, task name, *DATA_FIELDS[type], *RAW_FIELDS[type], proc, node)``;
``tests/integration/capture/test_capture_path.py`` runs the handlers under a real worker and
zips each entry's values with these names.
"""

from __future__ import annotations

from typing import Final

from stemtrace.core import events as ev
from stemtrace.core.wire import ROW_SHAPES

_HEADERS = "the message's headers (protocol 1: its body)"
_REQUEST_DICT = "task_received's request.request_dict (the message headers)"
_REQUEST = "task.request of the running task (celery_compat.request_of)"

# Where each data field of a hot event comes from, in the order its handler fills it.
SOURCES: Final[dict[str, dict[str, str]]] = {
    ev.TASK_PUBLISHED: {  # after_task_publish(sender, body, exchange, routing_key, headers)
        "root_id": _HEADERS,
        "parent_id": _HEADERS,
        "group_id": f"{_HEADERS}, 'group'",
        "group_index": _HEADERS,
        "retries": _HEADERS,
        "eta": _HEADERS,
        "expires": _HEADERS,
        "queue": "the queue routing_key reaches from exchange (celery_compat.published_queue)",
        "exchange": "the signal's exchange, by name",
        "routing_key": "the signal's routing_key",
        "replaced_task_nesting": _HEADERS,
        "publisher_task_id": "the id of the task whose body runs here (celery_compat.current_task_id)",
        "shadow": _HEADERS,
        "ignore_result": _HEADERS,
        "beat": "the entry being sent, in the beat process (capture.beat), else the headers' beat mark",
    },
    ev.TASK_RECEIVED: {  # task_received(sender=Consumer, request=Request), worker main process
        "root_id": _REQUEST_DICT,
        "parent_id": _REQUEST_DICT,
        "group_id": f"{_REQUEST_DICT}, 'group'",
        "group_index": _REQUEST_DICT,
        "retries": _REQUEST_DICT,
        "eta": _REQUEST_DICT,
        "expires": _REQUEST_DICT,
        "replaced_task_nesting": _REQUEST_DICT,
        "redelivered": "request.delivery_info['redelivered']",
        "exchange": "request.delivery_info['exchange']",
        "routing_key": "request.delivery_info['routing_key']",
        "queue": "the consumer's queue bound to them (celery_compat.received_queue)",
        "beat": f"{_REQUEST_DICT}: periodic_task_name or celery_beat_task (celery_compat.beat_mark)",
    },
    ev.TASK_STARTED: {  # task_prerun(sender=task, task_id, task), executing process
        "retries": _REQUEST,
        "worker_pid": "os.getpid() of the executing process",
        "root_id": _REQUEST,
        "parent_id": _REQUEST,
        "group_id": f"{_REQUEST}, .group",
        "group_index": _REQUEST,
        # Both only when the sender traced: OpenTelemetry's Celery instrumentation (or any W3C
        # propagator) injects ``traceparent`` into the message headers in before_task_publish;
        # Sentry's Celery integration adds ``sentry-trace`` in apply_async. Celery makes every
        # message header an attribute of the request, which is where both read them back.
        "traceparent": f"{_REQUEST}, .traceparent (W3C Trace Context, as sent)",
        "sentry_trace": f"{_REQUEST}, the 'sentry-trace' header (Sentry's, as sent)",
    },
    ev.TASK_SUCCEEDED: {  # task_postrun(state='SUCCESS'), after task_success, executing process
        "retries": "the retries task_prerun read",
        "runtime": "task_success's runtime (Celery >= 5.7), else task_prerun to task_success",
        "handler_runtime": "task_success to task_postrun: on_success and after_return handlers",
    },
}

# ``data`` given as a tuple, in the order of ``SOURCES``: the wire's row shapes.
DATA_FIELDS: Final[dict[str, tuple[str, ...]]] = {etype: tuple(names) for etype, names in SOURCES.items()}
if DATA_FIELDS != ROW_SHAPES:  # a field added on one side only: fail at import, not in a worker
    raise ImportError(f"capture.fields.SOURCES {DATA_FIELDS} disagree with core.wire.ROW_SHAPES {ROW_SHAPES}")

# ``raw``: live values the publisher thread redacts, bounds and serializes.
RAW_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    ev.TASK_PUBLISHED: ("args", "kwargs", "embed", "argsrepr", "kwargsrepr"),
    ev.TASK_RECEIVED: ("embed",),
    ev.TASK_SUCCEEDED: ("result",),
    ev.TASK_FAILED: ("exception", "traceback"),
    ev.TASK_RETRIED: ("exception", "traceback"),
    ev.TASK_INTERNAL_ERROR: ("exception", "traceback"),
    ev.TASK_READY: ("exception", "traceback"),
    ev.TASK_REJECTED: ("exception",),
    ev.TASK_UNKNOWN: ("exception",),
}

# Hot types whose one raw value, when ``None``, has nothing to capture (a receipt without a
# canvas): the publisher skips finishing them. A ``None`` result, by contrast, is captured.
NOTHING_WHEN_NONE: Final = frozenset({ev.TASK_RECEIVED})

# What Celery embeds in a message with no canvas: dropped on the hot path, since a dict
# would keep the buffered event tracked. Compared with ``==``, so other shapes are kept.
EMPTY_EMBED: Final = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
