"""The live hub reads the store only while a stream is open, and a stream opened after a quiet
spell hears of changes from then on, not of the spell's backlog (real SQLite store)."""

from __future__ import annotations

import asyncio
import json
import time

from server_events import EventFactory

from stemtrace.server.live import Hub, StreamFilter, sse_messages
from stemtrace.server.store import SqlStore


def test_the_store_is_polled_only_while_a_stream_is_open(store: SqlStore) -> None:
    f = EventFactory(t0=time.time())
    hub = Hub(store, poll_s=0.02)
    hub.start()
    try:
        time.sleep(0.3)
        assert hub.polls == 0  # nobody listening: no store reads
        store.apply(f.run("t-before", "proj.step"), {}, time.time() - 30)  # the quiet spell's work

        async def listen() -> list[str]:
            stream = sse_messages(hub, StreamFilter(), interval=0.01)
            assert (await stream.__anext__()).startswith("retry:")
            following = asyncio.ensure_future(stream.__anext__())
            while hub.streams == 0:
                await asyncio.sleep(0.01)
            store.apply(f.run("t-after", "proj.step", 1), {}, time.time())
            message = await asyncio.wait_for(following, 10)
            await stream.aclose()
            return [message]

        (message,) = asyncio.run(listen())
        assert message.startswith("data: ")
        assert json.loads(message[6:])["tasks"] == ["t-after"]
        assert hub.streams == 0 and hub.polls > 0
        polled = hub.polls
        time.sleep(0.3)
        assert hub.polls == polled  # the last stream closed: reads stop
    finally:
        hub.stop()
