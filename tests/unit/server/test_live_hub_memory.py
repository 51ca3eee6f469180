"""The live hub keeps a bounded number of ids, however big the change sets of a backlog are."""

from __future__ import annotations

from pathlib import Path

from stemtrace.server.live import KEEP_IDS, Hub
from stemtrace.server.store import Changes, open_store


def _changes(n: int, tag: str) -> Changes:
    ids = frozenset(f"{tag}-{i}" for i in range(n))
    return Changes(tasks=ids, workflows=frozenset({tag}), workers=frozenset(), task_workflows={})


def test_big_change_sets_are_dropped_oldest_first_beyond_the_id_budget(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        hub = Hub(store)
        seen = hub.seq
        for batch in range(40):  # 40 batches of 5,000 tasks: 200,000 ids published
            hub.publish(_changes(5000, f"b{batch}"))
        seq, kept = hub.since(0)
        assert seq == seen + 40
        held = sum(len(c.tasks) + len(c.workflows) for c in kept)
        assert 0 < held <= KEEP_IDS
        assert kept[-1].workflows == frozenset({"b39"})  # the newest always stays
        # A stream that is up to date still gets the next change set whole.
        hub.publish(_changes(3, "next"))
        _, after = hub.since(seq)
        assert [c.workflows for c in after] == [frozenset({"next"})]
        # One set bigger than the budget alone is still kept (the newest is never dropped).
        hub.publish(_changes(KEEP_IDS + 10, "huge"))
        _, last = hub.since(seq + 1)
        assert len(last) == 1 and len(last[0].tasks) == KEEP_IDS + 10
    finally:
        store.close()
