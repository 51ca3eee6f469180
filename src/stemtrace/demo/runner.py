"""Runs the demo: the Celery worker, the workload, the library and the server, then stops them.

Start order: the server (so the ingest is ready), the library, the worker, the workload. Stop
order is the reverse, driven by SIGINT/SIGTERM or ``duration``, and always completes: sleeping
demo tasks wake up, the worker thread is joined, the library flushes, uvicorn exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from stemtrace.demo import tasks
from stemtrace.demo.workload import Workload

EVENTS_URL = "inproc://stemtrace-demo"
logger = logging.getLogger("stemtrace.demo")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 7373
    rate: float = 20.0
    open_browser: bool = True
    duration: float | None = None
    store: str | None = None
    verbose: bool = False


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def _store_url(given: str | None) -> Iterator[str]:
    """The given store, or a SQLite file in a temporary directory removed afterwards."""
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="stemtrace-demo-"))
    try:
        yield f"sqlite:///{folder / 'demo.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Stop:
    """SIGINT/SIGTERM set an event instead of raising wherever the main thread happens to be."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():  # a second Ctrl-C: the user really wants out
            raise KeyboardInterrupt
        self.signal = signum
        self.event.set()

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _ignore_library_environment() -> None:
    """The library lets STEMTRACE_* variables override code; the demo must use its own transport."""
    from stemtrace.capture.config import SETTINGS
    from stemtrace.core.settings import environment_of

    for name in environment_of(SETTINGS):  # renamed variables too: the library still reads them
        if os.environ.pop(name, None) is not None:
            _say(f"stemtrace demo: ignoring {name} (the demo sends events in-process)")


def _start_server(store_url: str, options: DemoOptions) -> tuple[Any, threading.Thread]:
    import uvicorn

    from stemtrace.server import create_app

    asgi = create_app(store_url=store_url, events_url=EVENTS_URL)
    config = uvicorn.Config(
        asgi,
        host=options.host,
        port=options.port,
        log_level="info" if options.verbose else "warning",
        access_log=options.verbose,
        lifespan="on",
        # Open live streams (a browser tab) must not hold Ctrl-C: the demo stops within ~2 s.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # In a thread, uvicorn installs no signal handlers: the main thread owns Ctrl-C.
    thread = threading.Thread(target=server.run, name="stemtrace-demo-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server could not start on {options.host}:{options.port}")
        time.sleep(0.05)
    return server, thread


@contextlib.contextmanager
def _worker_stopped_promptly(started: contextlib.AbstractContextManager[Any]) -> Iterator[Any]:
    """Celery's embedded worker, whose slow stop never holds up Ctrl-C.

    Its thread pool finishes the tasks already prefetched before its thread ends; the demo's
    data is throwaway, so after ``shutdown_timeout`` the demo goes on stopping without it
    (the worker thread is a daemon and ends with the process).
    """
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(started)
        try:
            yield worker
        finally:
            try:
                stack.close()
            except RuntimeError as exc:
                logger.debug("the demo worker did not stop in time: %s", exc)


def _announce(worker: Any) -> None:
    """Send ``worker_ready`` for Celery's embedded test worker, which never sends it itself.

    A real ``celery worker`` sends it from ``celery.apps.worker.Worker.on_consumer_ready``; the
    test worker overrides that method, so without this the library never emits ``worker.online``
    and the demo's Workers page stays empty (no online worker, no heartbeat, no running tasks).
    """
    from celery import signals

    signals.worker_ready.send(sender=worker.consumer)


def run(options: DemoOptions) -> int:
    """Run until Ctrl-C (or ``duration``); return the process exit code."""
    from celery.contrib.testing.worker import start_worker

    import stemtrace

    tasks.stopping.clear()
    with _Stop() as stop, _store_url(options.store) as store_url, contextlib.ExitStack() as stack:
        try:
            server, server_thread = _start_server(store_url, options)
        except (RuntimeError, OSError) as exc:
            _say(f"stemtrace demo: {exc}")
            return 1

        def stop_server() -> None:
            server.should_exit = True
            server_thread.join(10)

        stack.callback(stop_server)

        app = tasks.create_app()
        _ignore_library_environment()
        # A heartbeat every 2 s keeps the Workers page lively: its running tasks change by the second.
        stemtrace.init(app, url=EVENTS_URL, flush_interval=0.1, health_interval=5.0, heartbeat_interval=2.0)
        worker = stack.enter_context(
            _worker_stopped_promptly(
                start_worker(
                    app,
                    pool="threads",
                    concurrency=4,
                    perform_ping_check=False,
                    loglevel="INFO" if options.verbose else "CRITICAL",
                    shutdown_timeout=1.0,
                    hostname="demo@stemtrace",
                )
            )
        )
        _announce(worker)
        stack.callback(tasks.stopping.set)  # runs before the worker is joined: wake sleeping tasks

        workload = Workload(app, rate=options.rate)
        workload.start()
        stack.callback(workload.stop)

        url = f"http://{'127.0.0.1' if options.host in ('0.0.0.0', '::') else options.host}:{options.port}/"
        _say(f"stemtrace demo running at {url}")
        _say(f"  a worker with 4 threads, {options.rate:g} workflows a minute; press Ctrl-C to stop")
        if options.open_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

        stop.event.wait(options.duration)
        _say("stemtrace demo: stopping…")
        # The server's graceful stop (open live streams get ~1 s) overlaps the worker's.
        server.should_exit = True
    _say("stemtrace demo: stopped")
    return 0
