"""Ingest in a process of its own (``--ingest-process separate``).

In one process, the API's requests and ingest take turns on one interpreter lock: 20 busy
API clients cut ingest by more than half and waited behind its batches
(docs/benchmarks-server.md, "Read and ingest isolated"). ``stemtrace server`` on a machine
with two or more CPUs therefore runs the ingest loop (``Ingestor`` and its loss tracking) in a
child process and keeps the API, the live hub, maintenance and alerts in its own.

The child sends a snapshot of its state four times a second over a pipe (what
``/api/health`` and ``/metrics`` show, and the change sets that wake live streams at once
instead of at the hub's next store poll); :class:`IngestProcess` is what the API process
reads instead of an ``Ingestor``. A child that dies is started again after a growing pause
(1 s, doubling, at most 60 s) while health says ``degraded``; what it polled and did not
acknowledge comes back to the next one from the broker. A child whose parent is gone stops
by itself. On stop the parent asks the child to finish its batch, waits at most
``STOP_S``, then terminates it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import fields
from typing import Any

from stemtrace.server.ingest import MAX_RESTART_BACKOFF_S
from stemtrace.server.ingest_stats import IngestStats
from stemtrace.server.settings import ServerSettings
from stemtrace.server.store.base import Changes
from stemtrace.transport import TransportConfig

logger = logging.getLogger("stemtrace.server.ingest")

SNAPSHOT_S = 0.25
STOP_S = 3.0  # the child's time to finish its batch when asked to stop; then it is terminated
_STAT_FIELDS = tuple(f.name for f in fields(IngestStats) if not f.name.startswith("_"))
_COUNTED = ("events", "stored", "messages", "batches")  # summed over the children's lives


def separate(settings: ServerSettings, cpus: int | None = None) -> bool:
    """Whether ``stemtrace server`` runs ingest in a child process (``auto``: with 2+ CPUs)."""
    if not settings.ingest or settings.ingest_process == "same":
        return False
    if settings.ingest_process == "separate":
        return True
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
    return cpus >= 2


class IngestProcess:
    """The API process's side: starts, watches and restarts the ingest child, and holds what
    it last reported in the shape ``/api/health`` reads of an ``Ingestor``."""

    def __init__(
        self,
        settings: ServerSettings,
        config: TransportConfig,
        *,
        group: str,
        consumer_name: str,
        on_commit: Any = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.group = group
        self.consumer_name = consumer_name
        self.on_commit = on_commit
        self.stats = IngestStats()
        self.pid: int | None = None
        self._subscriptions: list[dict[str, Any]] = []
        self._problems: list[str] = []
        self._base: Counter[str] = Counter()  # counts of the children that ended
        self._child_restarts = 0  # restarts of the child's own ingest thread, as it reported
        self._process_restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False

    def start(self) -> None:
        self.stats.started_at = time.time()
        self._thread = threading.Thread(target=self._supervise, name="stemtrace-ingest-process", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is None or self._stop.is_set() or self._thread.is_alive()

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self._subscriptions)

    def problems(self, now: float) -> list[str]:
        out = list(self._problems)
        if not self.alive:
            out.append("ingest: the ingest process's supervisor is not running")
        elif not self._running and self.stats.status != "starting":
            out.append("ingest: the ingest process is not running (being restarted)")
        return out

    # -- the supervisor -----------------------------------------------------------------------

    def _supervise(self) -> None:
        backoff = 1.0
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads running
        while not self._stop.is_set():
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=child_main,
                args=(self.settings, self.config, (self.group, self.consumer_name), child_end, os.getpid()),
                name="stemtrace-ingest",
                daemon=False,
            )
            started = time.monotonic()
            try:
                _start(proc)
            except Exception:
                logger.exception("cannot start the ingest process")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)
                continue
            child_end.close()
            self.pid = proc.pid
            self._running = True
            last: dict[str, Any] = {}
            try:
                while not self._stop.is_set():
                    if parent_end.poll(0.5):
                        last = parent_end.recv()
                        self._take(last)
                    elif not proc.is_alive():
                        break
            except (EOFError, OSError):
                pass  # the child is gone
            self._running = False
            if self._stop.is_set():
                self._end(proc, parent_end)
                return
            proc.join(1.0)
            parent_end.close()
            for name in _COUNTED:
                self._base[name] += int(last.get("stats", {}).get(name, 0))
            self._child_restarts += int(last.get("stats", {}).get("restarts", 0))
            s = self.stats
            self._process_restarts += 1
            s.restarts = self._child_restarts + self._process_restarts
            s.last_crash_at = time.time()
            s.status = "degraded"
            s.error = f"the ingest process exited (code {proc.exitcode}); restarting it in {backoff:.0f} s"
            self._problems = [f"ingest: {s.error}"]
            logger.error("%s", s.error)
            if time.monotonic() - started > 60:
                backoff = 1.0
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    def _take(self, snapshot: dict[str, Any]) -> None:
        s = self.stats
        for name, said in snapshot["stats"].items():
            value = said
            if name in _COUNTED:
                value = self._base[name] + int(said)
            elif name in ("malformed", "quarantined", "repaired"):
                value = Counter(said)
            elif name == "restarts":
                value = self._child_restarts + int(said) + self._process_restarts
            elif name == "last_crash_at" and said is None:
                value = s.last_crash_at
            elif name == "started_at":
                continue  # the parent's start: lag counts from when the server started
            setattr(s, name, value)
        self._subscriptions = snapshot.get("subscriptions", [])
        self._problems = snapshot.get("problems", [])
        if self.on_commit is not None:
            for changes in snapshot.get("changes", ()):
                self.on_commit(changes)

    def _end(self, proc: Any, conn: Any) -> None:
        try:
            conn.send("stop")
        except OSError:
            pass
        proc.join(STOP_S)
        if proc.is_alive():
            logger.warning("the ingest process did not stop in %.0f s; terminating it", STOP_S)
            proc.terminate()
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        conn.close()


def _start(proc: Any) -> None:
    """Start the child with glibc's malloc limited to 2 arenas (unless the operator set it).

    The ingest thread and the commit thread each get an arena by default, and freed batch
    memory stays spread over them: a 1-copy replay peaked 17 MB higher without the limit
    (docs/benchmarks-server.md, "Memory"). The child inherits the environment when it starts.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        proc.start()
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"
    try:
        proc.start()
    finally:
        os.environ.pop("MALLOC_ARENA_MAX", None)


# -- the child ----------------------------------------------------------------------------------


def child_main(
    settings: ServerSettings, config: TransportConfig, names: tuple[str, str], conn: Any, parent: int
) -> None:
    """The ingest process: the same ``Ingestor`` and loss tracking as in one process.
    ``names`` are the subscription group and this consumer's name in it."""
    group, consumer_name = names
    from stemtrace.server.ingest import Ingestor
    from stemtrace.server.losses import LossTracker
    from stemtrace.server.store import open_store
    from stemtrace.server.tuning import quiet_gc, short_gil_switches

    stop = threading.Event()
    # Ctrl-C reaches the whole process group: the parent decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    short_gil_switches()
    store = open_store(settings.store_url, migrate=False)  # the parent migrated it
    losses = LossTracker(store)
    changes: list[Changes] = []
    lock = threading.Lock()

    def committed(c: Changes) -> None:
        with lock:
            changes.append(c)

    ingestor = Ingestor(
        store,
        config,
        group=group,
        batch_size=settings.write_batch_size,
        consumer_name=consumer_name,
        on_commit=committed,
        on_applied=losses.observe,
    )
    losses.start()
    quiet_gc()
    ingestor.start()
    subscriptions: list[dict[str, Any]] = []
    ticks = 0
    try:
        while not stop.wait(SNAPSHOT_S):
            if os.getppid() != parent:
                break  # the API process is gone: nobody reads this one's work
            if ticks % 8 == 0:  # a broker round trip: every 2 s is fresh enough for health
                subscriptions = ingestor.subscriptions()
            ticks += 1
            with lock:
                sent, changes[:] = list(changes), []
            conn.send(
                {
                    "stats": _stats(ingestor.stats),
                    "problems": ingestor.problems(time.time()),
                    "subscriptions": subscriptions,
                    "changes": sent,
                }
            )
            if conn.poll() and conn.recv() == "stop":
                break
    except (EOFError, OSError):
        pass  # the pipe closed: the parent is gone
    finally:
        ingestor.stop(STOP_S)
        losses.stop(1.0)
        store.close()


def _stats(stats: IngestStats) -> dict[str, Any]:
    out = {name: getattr(stats, name) for name in _STAT_FIELDS}
    for name in ("malformed", "quarantined", "repaired"):
        out[name] = dict(out[name])
    return out
