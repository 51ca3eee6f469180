"""How stored rows are spelled: JSON text, and SQL helpers for batches.

Shared by the writer (``write``, ``task_row``, ``summary``) and the reader (``read``), so what is
written is read back the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from stemtrace.core.jsontext import dumps as std_dumps
from stemtrace.core.rollup import PLUMBING_NAMES  # json's text, where orjson's would differ
from stemtrace.server.jsonfast import fast_dumps

CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(n: int) -> str:
    return ",".join("?" * n)


def dumps(value: Any) -> str:
    """Compact JSON: orjson's, else (non-str keys, big ints, non-finite floats, ...) ``json``'s.

    The two texts can differ in spelling (``1e-7`` for ``1e-07``) but parse to the same value.
    """
    text = fast_dumps(value)
    return std_dumps(value) if text is None else text


# Celery's plumbing (``celery.chord_unlock``) is never counted as the user's work: the SQL filter
# every count over tasks shares.
NOT_PLUMBING = "(name IS NULL OR name NOT IN ({}))".format(
    ", ".join(f"'{n}'" for n in sorted(PLUMBING_NAMES))
)
