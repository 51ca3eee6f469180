"""The ingest loop's batching: transactions fill up whatever size the senders' messages are."""

from __future__ import annotations

import time
import uuid

from server_events import EventFactory
from tests.support.wire import encode_one

from stemtrace.server.ingest import EVENTS_PER_MESSAGE_GUESS, Ingestor
from stemtrace.server.store import SqlStore, TaskQuery
from stemtrace.transport import TransportConfig, resolve
from stemtrace.transport.inproc import forget


def test_polls_grow_to_fill_a_transaction_from_small_messages(store: SqlStore) -> None:
    """Quiet senders send one message per flush with a few events in each: 80 messages of 5
    events. Polling ``batch_size / guess`` messages would take 2 per poll (40 transactions);
    the poll size follows the events per message seen instead."""
    f = EventFactory()
    events = [e.to_dict() for i in range(100) for e in f.run(f"t-{i:03d}", "proj.small", i * 0.01)]
    assert len(events) == 400
    config = TransportConfig(url=f"inproc://{uuid.uuid4().hex}")
    publisher = resolve(config).publisher()
    publisher.send([encode_one(events[i : i + 5]) for i in range(0, len(events), 5)])
    ingestor = Ingestor(store, config, batch_size=2 * EVENTS_PER_MESSAGE_GUESS)
    assert ingestor.max_messages == 2
    try:
        ingestor.start()
        deadline = time.monotonic() + 30
        while ingestor.stats.stored < len(events) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        ingestor.stop()
        forget(config.url.partition("://")[2])
    assert ingestor.stats.stored == len(events)
    assert 5 <= ingestor.per_message < 10  # smoothed from the guess of 50 towards 5
    assert ingestor.max_messages >= 10  # ~100 events a transaction, from 5-event messages
    assert ingestor.stats.batches < 20, ingestor.stats.batches
    assert len(store.list_tasks(TaskQuery(limit=1000)).items) == 100
