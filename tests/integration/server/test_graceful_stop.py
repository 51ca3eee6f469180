"""A stop with UI tabs open: SIGTERM ends the live streams cleanly and the server exits at once.

`stemtrace server` runs as users run it (a subprocess), with two open ``/api/stream``
connections (two browser tabs). After SIGTERM each stream receives a ``closing`` event and a
properly terminated response (so the browser's EventSource reconnects by itself rather than
reporting a broken connection), and the process exits well within the guard below.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
from server_harness import ServerProcess

EXIT_GUARD_S = 10.0  # generous against load; the goal (and the usual figure) is well under 5 s


def test_sigterm_with_open_streams_ends_them_and_exits_promptly(tmp_path: Path) -> None:
    server = ServerProcess("--no-ingest", "--store", f"sqlite:///{tmp_path / 'stop.db'}").start()
    streams: list[list[str]] = [[], []]
    ended: list[str] = []
    opened = threading.Barrier(3)

    def tab(lines: list[str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=60.0)) as client:
            with client.stream("GET", server.base + "/api/stream") as response:
                assert response.status_code == 200
                first = True
                for line in response.iter_lines():
                    lines.append(line)
                    if first:
                        first = False
                        opened.wait(10)
            ended.append("clean")  # the body ended without a transport error

    threads = [threading.Thread(target=tab, args=(lines,), daemon=True) for lines in streams]
    for t in threads:
        t.start()
    try:
        opened.wait(20)
        # HEAD of the stream answers its headers and ends, like any HEAD (no stream left open).
        head = httpx.head(server.base + "/api/stream", timeout=5)
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(EXIT_GUARD_S)
        took = time.monotonic() - started
        for t in threads:
            t.join(5)
    finally:
        server.stop()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (the default action).
    assert server.proc.returncode in {0, -signal.SIGTERM}
    assert ended == ["clean", "clean"]
    for lines in streams:
        assert lines[0] == "retry: 2000"
        assert "event: closing" in lines  # told why, before the end of the response
    print(f"server exited {took:.2f} s after SIGTERM with 2 open streams")
