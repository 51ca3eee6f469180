"""A store that starts subscribing late reports no losses for events sent before it existed."""

from __future__ import annotations

import time
from pathlib import Path

from stemtrace.server.store import open_store


def test_seqs_sent_before_the_store_existed_are_not_losses_but_later_holes_are(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    store.store_id()  # the store begins to subscribe now
    created = time.time()
    later = created + 3600.0
    store.record_seen([
        # a worker running for a day already: its first event here is seq 900, sent right away
        ("old-proc", 900, 950, created, created + 5, created + 1, created + 5, "h1", 1),
        # a process started an hour later whose first 40 events never arrived
        ("new-proc", 41, 60, later, later + 5, later + 1, later + 5, "h2", 2),
        # and a hole inside a run this store saw
        ("old-proc", 961, 970, created + 10, created + 15, created + 10, created + 15, "h1", 1),
    ])  # fmt: skip
    lost = store.settle_losses(later + 1000.0, grace=300.0)
    report = store.loss_report(0.0)
    store.close()
    assert lost == 40 + 10
    assert sorted((r["inst"], r["first_seq"], r["last_seq"]) for r in report["latest"]) == [
        ("new-proc", 1, 40),
        ("old-proc", 951, 960),
    ]
