"""A stored task row rewritten by a later batch sets only the columns that change
(``store/narrow.py``): the rows must be exactly those of ingesting every event at once.

The backlog shape: each task's ``task.published`` in an early batch, its ``received``,
``started`` and verdict batches later (the golden recordings, split by event type), then
every event again (a redelivery: nothing may change but ``ingested_at``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.events import Event, decode_event
from stemtrace.server.store import SqlStore, open_store
from stemtrace.server.store.task_row import TASK_COLUMNS

FIXTURES = sorted((Path(__file__).parents[1] / "golden" / "fixtures").glob("*.json"))
NOW = 1_790_200_000.0
COLUMNS = [c.strip() for c in TASK_COLUMNS.split(",") if c.strip() != "ingested_at"]


def load(path: Path) -> list[Event]:
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    return [decode_event(r) for r in raw]


def rows(store: SqlStore) -> dict[str, tuple[Any, ...]]:
    with store._read() as r:
        found = r.q(f"SELECT {', '.join(COLUMNS)} FROM tasks ORDER BY id")
    return {row[0]: tuple(row) for row in found}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_rows_rewritten_column_by_column_equal_one_batch(
    store: SqlStore, fixture: Path, tmp_path: Path
) -> None:
    events = load(fixture)
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        reference.apply(events, {}, NOW)
        expected = rows(reference)
    finally:
        reference.close()
    order = ("task.published", "task.received", "task.started")
    for etype in order:
        store.apply([e for e in events if e.type == etype], {}, NOW)
    store.apply([e for e in events if e.type not in order], {}, NOW)
    assert rows(store) == expected
    store.apply(events, {}, NOW + 1)  # a redelivery of everything
    assert rows(store) == expected
