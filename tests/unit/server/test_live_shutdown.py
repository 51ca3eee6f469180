"""Live streams end when the server stops: on the hub's close, and on SIGTERM/SIGINT before
the server's own handler runs (the end-to-end stop is in tests/integration/server)."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

from stemtrace.server.live import CLOSING, Hub, StreamFilter, close_streams_on_signals, sse_messages
from stemtrace.server.store import SqlStore


def test_a_stream_ends_with_a_closing_event_when_the_hub_closes(store: SqlStore) -> None:
    hub = Hub(store)

    async def read() -> list[str]:
        out = []
        async for message in sse_messages(hub, StreamFilter(), interval=0.01):
            out.append(message)
            if len(out) == 1:
                hub.close_streams()
        return out

    messages = asyncio.run(asyncio.wait_for(read(), 5))
    assert messages == ["retry: 2000\n\n", CLOSING]


def test_exit_signals_close_the_streams_then_run_the_previous_handler(store: SqlStore) -> None:
    hub = Hub(store)
    seen: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    old = signal.signal(signal.SIGTERM, previous)
    try:
        restore = close_streams_on_signals(hub)
        assert signal.getsignal(signal.SIGTERM) is not previous
        signal.raise_signal(signal.SIGTERM)
        assert hub.closing.is_set()
        assert seen == [signal.SIGTERM]  # uvicorn's own handler still runs, after ours
        restore()
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)
