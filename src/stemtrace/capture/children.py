"""The outcome of a prefork child's last tasks, kept by the worker's main process for when it dies.

A pool child buffers its events and its publisher thread sends them every flush interval
(``publisher``). A child killed outright (the OOM killer, ``kill -9``, a hard time limit on its
next task) within that interval after a task ended takes the task's unsent events with it, yet
Celery knows how the task ended: the child returned the outcome to the main process through the
pool's result pipe before it took another task, and stored it in the result backend.

So the main process keeps what each child returned (:meth:`ChildResults.note`, on Celery's
``Request.on_success``: a tuple appended to a bounded deque, no I/O), and its publisher thread
looks at the pool's children every flush interval (:meth:`ChildResults.check`), trimming what
each live child returned to the window. For a child gone
without ending itself, it sends a ``task.ready`` event for each task that child finished in the
``window`` seconds before its last one. Not the seconds before its death: billiard notices a dead
child when it reaps it, up to five seconds later (``AsynPool.maintain_pool``'s timer), and a child
that died long after its last task had long sent its events (the events are then redundant, and
the server ignores them). The server folds such an event into an attempt only when the attempt's
own events end unfinished (``core.attempts``): what the child sent itself (the result value, the
handler time, its start) is never overridden by what the main process knew.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from stemtrace.capture import celery_compat as compat
from stemtrace.capture import state as _state
from stemtrace.core import events as ev

# Outcomes kept per child: a child finishing tasks faster than this within the window would
# lose the oldest, which are also the most likely to have been sent already.
PER_CHILD = 10_000
# How long a child's outcome is kept: many flush intervals (a publisher thread slowed by the
# task's own work sends late), and at least two seconds.
WINDOW_INTERVALS = 10
MIN_WINDOW_S = 2.0

_time_ns = time.time_ns
_facts = compat.request_facts
# (epoch ns when the main process got it, task id, name, retries, replaced_task_nesting,
# accepted_at, what the child returned). Flat, and for a success only strings and numbers: the
# garbage collector untracks it, where holding the ``Request`` itself (and its message) for the
# window made every collection of the main process's heap longer.
Note = tuple[Any, ...]


def _note(request: Any, returned: Any) -> None:
    """``Request.on_success``'s hook (``celery_compat.wrap_pool_result``): a hooked class
    outlives ``uninstall``, so it asks for the current state each time."""
    st = _state._state
    children = st.children if st is not None else None
    if children is not None:
        children.note(request, returned)


class ChildResults:
    """What the children of one prefork pool returned lately, by child pid."""

    def __init__(self, pool: Any, flush_interval_s: float) -> None:
        self.pool = pool
        self.window_ns = int(max(MIN_WINDOW_S, WINDOW_INTERVALS * flush_interval_s) * 1e9)
        self.notes: dict[int, deque[Note]] = {}
        self.processes: dict[int, Any] = {}  # pid -> billiard process, to read its exit status
        self.hooked: set[type] = set()

    def hook(self, request_cls: type) -> None:
        """Hear the results of ``request_cls``'s tasks (``task_received`` shows each class)."""
        self.hooked.add(request_cls)
        compat.wrap_pool_result(request_cls, _note)

    # -- main thread, once per task: only an append (the publisher thread trims) -----------
    def note(self, request: Any, returned: Any) -> None:
        pid = request.worker_pid
        notes = self.notes.get(pid)
        if notes is None:
            if pid is None:
                return
            # A child's first result: remember its process while the pool still lists it.
            notes = self.notes[pid] = deque(maxlen=PER_CHILD)
            self.processes.update(compat.pool_processes(self.pool) or {})
        try:
            facts = _facts(request)
        except Exception:  # a Request of another shape: nothing to report for it
            return
        notes.append((_time_ns(), *facts, returned))

    # -- publisher thread, every flush interval ------------------------------------------
    def check(self) -> list[dict[str, Any]]:
        """Report the recent outcomes of children that died; a periodic source of the emitter
        (its events go straight into the buffer, so it returns none whole)."""
        st = _state._state
        pids = list(self.notes)  # before the pool's list: a child noted is listed until reaped
        live = compat.pool_processes(self.pool)
        if live is None or st is None:
            return []
        self.processes.update(live)
        for pid in pids:
            if pid in live:
                self._trim(self.notes.get(pid))
                continue
            notes = self.notes.pop(pid, None)
            process = self.processes.pop(pid, None)
            if notes is None or compat.exited_cleanly(process):
                continue  # a child that ended itself flushed its events first
            for note in list(notes):
                self._report(st, note)
        for pid in list(self.processes):  # a copy: the main thread adds a new child's process
            if pid not in live and pid not in self.notes:
                self.processes.pop(pid, None)
        return []

    def _trim(self, notes: deque[Note] | None) -> None:
        """Forget a live child's outcomes older than the window before its latest one (what it
        would report if it died now). Deque ends are safe to use from two threads."""
        if not notes:
            return
        horizon = notes[-1][0] - self.window_ns
        while notes and notes[0][0] < horizon:
            notes.popleft()

    @staticmethod
    def _report(st: _state.State, note: Note) -> None:
        at, task_id, name, retries, nesting, accepted_at, pid, returned = note
        outcome = compat.pool_outcome(returned)
        if outcome is None:
            return
        state, runtime, info = outcome
        data: dict[str, Any] = {
            "retries": retries,
            "replaced_task_nesting": nesting,
            "state": state,
            "runtime": runtime,
            "accepted_at": accepted_at,
            "worker_pid": pid,
        }
        values: tuple[Any, ...] = (data,)
        if info is not None:
            data["exception_type"], text = compat.exception_identity(info)
            values = (data, text, getattr(info, "traceback", None))
        st.emitter().emit_task(ev.TASK_READY, task_id, name, values, proc=st.main_proc(), ts=at)
