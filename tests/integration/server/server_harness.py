"""Integration helpers: publishing through a real broker, a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from tests.support.wire import encode_envelopes

from stemtrace.transport import TransportConfig, resolve


def cleanup_source(config: TransportConfig) -> None:
    """Delete the stream or queue a test created."""
    if config.url.startswith("redis"):
        import redis

        redis.Redis.from_url(config.url).delete(config.name)
    else:
        from kombu.connection import Connection

        with Connection(config.url) as conn:
            # The queue, and the exchanges a server's own queue is bound to: once they are gone,
            # a queue left by an earlier run of the same test no longer takes its batches.
            for delete, name in (
                ("queue_delete", config.name),
                ("exchange_delete", config.name),
                ("exchange_delete", config.name + ".unrouted"),
                ("exchange_delete", config.name + ".subscriptions"),
            ):
                try:
                    getattr(conn.channel(), delete)(name)
                except Exception:
                    pass


def publish(config: TransportConfig, events: list[dict[str, Any]], per_message: int = 100) -> None:
    pub = resolve(config).publisher()
    try:
        batches = [
            m
            for i in range(0, len(events), per_message)
            for m in encode_envelopes(events[i : i + per_message])
        ]
        for i in range(0, len(batches), 50):
            pub.send(batches[i : i + 50])
    finally:
        pub.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("condition not met in time")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`stemtrace server` as users run it, in a subprocess we can kill -9."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = ["--port", str(self.port), *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stemtrace.cli", "server", *self.args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ready, timeout=30)
        return self

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            out = self.proc.stdout.read().decode() if self.proc.stdout else ""
            raise AssertionError(f"server exited: {out}")
        try:
            return httpx.get(self.base + "/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: Any) -> Any:
        return httpx.get(self.base + path, params=params, timeout=10).json()

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
