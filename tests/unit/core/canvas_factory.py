"""Hand-built event streams that mirror what Celery really sends.

Per docs/research/celery-internals.md §2.3 and Appendix B.

Test-only. Each scenario returns the events one workflow produces, with the
process that emitted each (client, worker main, pool child) as Celery does it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from stemtrace.core.events import Event, Source

Json = dict[str, Any]


def sig(
    task_id: str | None,
    name: str = "add",
    *,
    group_id: str | None = None,
    group_index: int | None = None,
    chord: Json | None = None,
) -> Json:
    out: Json = {
        "type": "task",
        "id": task_id,
        "name": name,
        "group_id": group_id,
        "group_index": group_index,
    }
    if chord is not None:
        out["chord"] = chord
    return out


def chain_sig(*steps: Json) -> Json:
    return {"type": "chain", "id": None, "name": "celery.chain", "tasks": list(steps)}


def group_sig(group_id: str, *members: Json) -> Json:
    return {"type": "group", "id": group_id, "name": "celery.group", "tasks": list(members)}


def chord_sig(group_id: str, header: list[Json], body: Json) -> Json:
    return {"type": "chord", "id": group_id, "name": "celery.chord", "tasks": header, "body": body}


def canvas(
    chain: list[Json] | None = None,
    chord: Json | None = None,
    callbacks: list[Json] | None = None,
    errbacks: list[Json] | None = None,
) -> Json:
    return {"chain": chain or [], "chord": chord, "callbacks": callbacks or [], "errbacks": errbacks or []}


class Recorder:
    """Emits events the way the library would, one process per ``src`` label."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.events: list[Event] = []
        self.now = start
        self._seq: dict[str, int] = defaultdict(int)

    def _src(self, label: str) -> Source:
        self._seq[label] += 1
        proc = "client" if label.startswith("client") else "main" if label.startswith("main") else "child"
        node = None if proc == "client" else f"w{label[-1]}@host" if label[-1].isdigit() else "w1@host"
        return Source(host="host", pid=1, inst=label, seq=self._seq[label], proc=proc, node=node)

    def emit(self, label: str, etype: str, task_id: str, name: str | None, **data: Any) -> Event:
        self.now += 0.001
        event = Event(
            type=etype, ts=self.now, src=self._src(label), task_id=task_id, task_name=name, data=data
        )
        self.events.append(event)
        return event

    def publish(
        self,
        label: str,
        task_id: str,
        name: str = "add",
        *,
        root: str | None = None,
        parent: str | None = None,
        group: str | None = None,
        gidx: int | None = None,
        retries: int = 0,
        nesting: int = 0,
        canvas: Json | None = None,
        args: Any = None,
        queue: str = "celery",
    ) -> None:
        self.emit(
            label,
            "task.published",
            task_id,
            name,
            root_id=root or task_id,
            parent_id=parent,
            group_id=group,
            group_index=gidx,
            retries=retries,
            replaced_task_nesting=nesting,
            publisher_task_id=parent if label.startswith("child") else None,
            canvas=canvas,
            args=args if args is not None else [],
            queue=queue,
            routing_key=queue,
        )

    def receive(
        self, task_id: str, name: str = "add", *, retries: int = 0, main: str = "main1", **data: Any
    ) -> None:
        self.emit(main, "task.received", task_id, name, retries=retries, **data)

    def start(self, task_id: str, name: str = "add", *, child: str = "child1", retries: int = 0) -> None:
        self.emit(child, "task.started", task_id, name, retries=retries, worker_pid=2)

    def succeed(self, task_id: str, name: str = "add", *, child: str = "child1", retries: int = 0) -> None:
        self.emit(child, "task.succeeded", task_id, name, retries=retries, runtime=0.002, result=1)
        self.emit(child, "task.postrun", task_id, name, retries=retries, state="SUCCESS", runtime=0.002)

    def fail(self, task_id: str, name: str = "add", *, child: str = "child1", retries: int = 0) -> None:
        self.emit(
            child,
            "task.failed",
            task_id,
            name,
            retries=retries,
            exception_type="ValueError",
            exception="boom",
            traceback="Traceback ...",
            runtime=0.001,
            origin="child",
        )
        self.emit(child, "task.postrun", task_id, name, retries=retries, state="FAILURE", runtime=0.001)

    def retry(self, task_id: str, name: str = "add", *, child: str = "child1", retries: int = 0) -> None:
        self.emit(
            child,
            "task.retried",
            task_id,
            name,
            retries=retries,
            exception_type="RuntimeError",
            exception="try",
        )
        self.emit(child, "task.postrun", task_id, name, retries=retries, state="RETRY", runtime=0.001)

    def run(self, task_id: str, name: str = "add", *, child: str = "child1", ok: bool = True) -> None:
        """Receive, start and finish one task (the common case)."""
        self.receive(task_id, name)
        self.start(task_id, name, child=child)
        if ok:
            self.succeed(task_id, name, child=child)
        else:
            self.fail(task_id, name, child=child)


Scenario = Callable[[], list[Event]]
