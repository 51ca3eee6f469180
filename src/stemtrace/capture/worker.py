"""Worker and process lifecycle: roles, online/heartbeat/offline, and final flushes.

A worker's main process learns its nodename and pool here, announces itself on
``worker_ready`` and sends a heartbeat (with the ids of running tasks) from the
publisher thread's timer. Children and the main process flush with a deadline
on ``worker_process_shutdown`` / ``worker_shutdown``; everything else at exit.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from stemtrace.capture import beat
from stemtrace.capture import state as _state
from stemtrace.capture.children import ChildResults
from stemtrace.capture.guard import guarded
from stemtrace.core import events as ev


def pool_name(pool_cls: Any) -> str | None:
    """``prefork`` / ``solo`` / ``threads`` / ``gevent`` / ``eventlet`` from a pool class or alias."""
    if pool_cls is None:
        return None
    if isinstance(pool_cls, str):
        alias = pool_cls.rsplit(":", 1)[-1].lower()
    else:
        alias = f"{getattr(pool_cls, '__module__', '')}".rsplit(".", 1)[-1].lower()
    return {"thread": "threads", "processes": "prefork"}.get(alias, alias)


@guarded
def on_worker_init(st: _state.State, sender: Any = None, **_: Any) -> None:
    st.main_pid = os.getpid()
    st.pool = pool_name(getattr(sender, "pool_cls", None))
    st.set_role("solo" if st.pool == "solo" else "main", getattr(sender, "hostname", None))


@guarded
def on_worker_process_init(st: _state.State, **_: Any) -> None:
    if st.main_pid is not None and os.getpid() != st.main_pid:
        st.set_role("child")


def _versions() -> dict[str, str]:
    import celery
    import kombu

    import stemtrace

    return {
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "python": platform.python_version(),
        "stemtrace": stemtrace.__version__,
    }


def _heartbeat(st: _state.State, hostname: str) -> list[dict[str, Any]]:
    from celery.worker import state as worker_state

    for _ in range(3):  # the set may change while we copy it
        try:
            active = [r.id for r in list(worker_state.active_requests)]
            break
        except RuntimeError:
            continue
    else:
        active = []
    try:
        loadavg: list[float] | None = list(os.getloadavg())
    except OSError:
        loadavg = None
    data = {
        "hostname": hostname,
        "active": active,
        "processed": sum(worker_state.total_count.values()),
        "loadavg": loadavg,
        # The server calls a worker offline after 3 missed intervals: this one, not its own guess.
        "interval": st.config.heartbeat_interval,
    }
    return [{"type": ev.WORKER_HEARTBEAT, "ts": time.time(), "data": data}]


@guarded
def on_worker_ready(st: _state.State, sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None) or st.node or "unknown"
    st.set_role(st.proc if st.proc in ("main", "solo") else "main", hostname)
    controller = getattr(sender, "controller", None)
    try:
        queues = sorted(q.name for q in sender.task_consumer.queues)
    except Exception:
        queues = []
    app = getattr(sender, "app", None) or st.app
    data = {
        "hostname": hostname,
        "pool": st.pool,
        "concurrency": getattr(controller, "concurrency", None),
        "queues": queues,
        "registered": sorted(str(name) for name in app.tasks),
        "pid": os.getpid(),
        "versions": _versions(),
        "interval": st.config.heartbeat_interval,
    }
    emitter = st.emitter()
    emitter.emit({"type": ev.WORKER_ONLINE, "ts": time.time(), "data": data})
    source = (st.config.heartbeat_interval, lambda: _heartbeat(st, hostname))
    st.worker_sources.append(source)
    emitter.periodic.append(source)
    pool = getattr(sender, "pool", None)
    if st.pool == "prefork" and pool is not None and st.children is None:
        # A killed child's last outcomes, from what it returned to this process (``children``).
        st.children = ChildResults(pool, st.config.flush_interval)
        watch = (st.config.flush_interval, st.children.check)
        st.worker_sources.append(watch)
        emitter.periodic.append(watch)


@guarded
def on_worker_process_shutdown(st: _state.State, **_: Any) -> None:
    if st.has_emitter:
        st.emitter().flush(final=True)


@guarded
def on_worker_shutdown(st: _state.State, sender: Any = None, **_: Any) -> None:
    if st.node is not None:
        event = {"type": ev.WORKER_OFFLINE, "ts": time.time(), "data": {"hostname": st.node}}
        st.emitter().emit(event, st.main_proc())
    if st.has_emitter:
        st.emitter().flush(final=True)


@guarded
def on_beat_init(st: _state.State, sender: Any = None, **_: Any) -> None:
    st.set_role("beat")
    st.beat = True
    if not beat.hook(sender):
        st.log_once("beat_hook", RuntimeError("schedule entries unknown: the scheduler has no apply_async"))


WORKER_HANDLERS = {
    "worker_init": on_worker_init,
    "worker_process_init": on_worker_process_init,
    "worker_ready": on_worker_ready,
    "worker_process_shutdown": on_worker_process_shutdown,
    "worker_shutdown": on_worker_shutdown,
    "beat_init": on_beat_init,
}
