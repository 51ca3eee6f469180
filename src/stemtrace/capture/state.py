"""Process-wide state of the library: config, role, and the lazily built emitter.

One :class:`State` per process. ``emitter()`` builds the :class:`Emitter` on
first use, so clients, beat and every pool get one without a special hook; after
``fork`` the child forgets the parent's (its thread and connection did not
survive the fork) and builds its own on its first event.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stemtrace.capture.config import CaptureConfig
from stemtrace.capture.finish import Finisher
from stemtrace.capture.publisher import Emitter, PeriodicSource
from stemtrace.capture.redact import Redactor
from stemtrace.transport import TransportConfig

if TYPE_CHECKING:
    from stemtrace.capture.children import ChildResults

logger = logging.getLogger("stemtrace.capture")
EAGER_OFF = (
    "stemtrace: capture is off in this process because the app runs tasks eagerly "
    "(task_always_eager, as test suites do); pass enabled=True to stemtrace.init "
    "or set STEMTRACE_ENABLED=true to capture them"
)


class CaptureOff(Exception):
    """Raised once, by the first handler of a process that must not capture (eager mode).

    The handler's guard swallows it like any handler error, but :meth:`State.log_once` does not
    report it as one: the reason was logged at INFO when capture turned itself off.
    """


def runs_eagerly(app: Any) -> bool:
    """``task_always_eager`` read now, not at ``init``: test settings are often applied later."""
    try:
        return bool(app is not None and app.conf.task_always_eager)
    except Exception:
        return False


class State:
    def __init__(self, config: CaptureConfig, transport: Callable[[], TransportConfig], app: Any) -> None:
        self.config = config
        self._transport_factory = transport
        self._transport: TransportConfig | None = None
        self.app = app
        self.redactor = Redactor(
            config.all_redact_keys, config.redact_patterns, config.redact_args, config.redactor
        )
        self.proc = "client"  # client | beat | main | child | solo
        self.beat = False  # this process runs celery beat (``beat_init``): its sends name their entry
        self.node: str | None = None
        self.pool: str | None = None  # prefork | solo | threads | gevent | eventlet
        self.main_pid: int | None = None
        self.worker_sources: list[tuple[float, PeriodicSource]] = []
        self.starts: dict[str, tuple[int, int]] = {}  # task id -> (monotonic_ns start, retries), executing
        self.main_failures: deque[str] = deque(maxlen=1000)  # ids the main process reported failed
        self.children: ChildResults | None = None  # a prefork worker's main process (``children``)
        self._emitter: Emitter | None = None
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        # Nobody said whether to capture: decide at the first event whether the app runs eagerly.
        self.decide_on_first_event = config.enabled is None
        self.off = False

    @property
    def transport(self) -> TransportConfig:
        """Read from the app's configuration on first use: Django settings may load after ``init``."""
        if self._transport is None:
            self._transport = self._transport_factory()
        return self._transport

    def emitter(self) -> Emitter:
        found = self._emitter
        if found is not None:
            return found
        with self._lock:
            if self._emitter is None:
                if self.decide_on_first_event:
                    self.decide_on_first_event = False
                    self.off = runs_eagerly(self.app)
                    if self.off:
                        self.switch_off()
                if self.off:
                    raise CaptureOff
                emitter = Emitter(self.config, self.transport, Finisher(self.config, self.redactor))
                emitter.proc, emitter.node = self.proc, self.node
                emitter.periodic = [(self.config.health_interval, lambda: [emitter.health()])]
                emitter.periodic.extend(self.worker_sources)
                self._emitter = emitter
            return self._emitter

    @property
    def has_emitter(self) -> bool:
        return self._emitter is not None

    def set_role(self, proc: str, node: str | None = None) -> None:
        self.proc = proc
        if node is not None:
            self.node = node
        if self._emitter is not None:
            self._emitter.proc, self._emitter.node = self.proc, self.node

    def after_fork(self) -> None:
        """In a forked child: drop the parent's emitter without touching its lock or socket."""
        self._emitter = None
        self._lock = threading.Lock()
        self.starts = {}
        self.worker_sources = []
        self.children = None
        if self.node is not None or self.main_pid is not None:
            self.proc = "child"

    def main_proc(self) -> str:
        """The role of the worker's main process (under solo it also runs the tasks)."""
        return "solo" if self.proc == "solo" else "main"

    def exec_proc(self) -> str:
        """The role of whoever runs a task body right now (thread/greenlet pools)."""
        if self.proc == "main" and threading.current_thread() is not threading.main_thread():
            return "greenlet" if self.pool in ("gevent", "eventlet") else "thread"
        return self.proc

    def switch_off(self) -> None:
        """Stop capturing in this process: handlers find no state and return at once."""
        logger.info(EAGER_OFF)
        if _state is self:
            set_current(None)

    def log_once(self, kind: str, exc: BaseException) -> None:
        if isinstance(exc, CaptureOff):
            return
        if kind not in self._logged and len(self._logged) < 100:
            self._logged.add(kind)
            logger.warning("stemtrace handler error (%s), further ones are counted only: %r", kind, exc)


_state: State | None = None


def current() -> State | None:
    return _state


def set_current(state: State | None) -> None:
    global _state
    _state = state


def _after_fork_in_child() -> None:
    if _state is not None:
        _state.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
