"""Builds schema-v1 events for server tests, as the library would send them."""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING, Any

from stemtrace.core.events import Event, decode_event

__all__ = ["EventFactory", "TestClient"]


class EventFactory:
    """One emitting process: a fresh ``inst`` and a rising ``seq`` per event."""

    def __init__(self, t0: float = 1_790_000_000.0, host: str = "h1", node: str | None = "w1@h1") -> None:
        self.inst = uuid.uuid4().hex
        self.seq = itertools.count(1)
        self.t0 = t0
        self.host = host
        self.node = node

    def raw(
        self, etype: str, task_id: str | None, name: str | None = None, at: float = 0.0, **data: Any
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": 1,
            "type": etype,
            "ts": self.t0 + at,
            "src": {
                "host": self.host,
                "pid": 42,
                "inst": self.inst,
                "seq": next(self.seq),
                "proc": "child",
                "node": self.node,
            },
            "data": data,
        }
        if task_id is not None:
            out["task"] = {"id": task_id, "name": name}
        return out

    def event(
        self, etype: str, task_id: str | None, name: str | None = None, at: float = 0.0, **data: Any
    ) -> Event:
        return decode_event(self.raw(etype, task_id, name, at, **data))

    def run(
        self,
        task_id: str,
        name: str,
        at: float = 0.0,
        *,
        fail: bool = False,
        worker: str = "w1@h1",
        **publish: Any,
    ) -> list[Event]:
        """A complete single-attempt life: published, received, started, succeeded or failed."""
        pub = {"root_id": task_id, "queue": "celery", **publish}
        out = [
            self.event("task.published", task_id, name, at, **pub),
            self.event("task.received", task_id, name, at + 0.1, queue=pub["queue"]),
            self.event("task.started", task_id, name, at + 0.2),
        ]
        if fail:
            out.append(
                self.event(
                    "task.failed",
                    task_id,
                    name,
                    at + 0.5,
                    exception_type="ValueError",
                    exception="ValueError('bad')",
                    traceback="Traceback ...",
                    runtime=0.3,
                )
            )
        else:
            out.append(self.event("task.succeeded", task_id, name, at + 0.5, runtime=0.3, result=3))
        return out


if TYPE_CHECKING:
    from fastapi.testclient import TestClient
else:

    def _test_client() -> type:
        import warnings

        with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        return TestClient

    # Imported here, with the warning silenced, rather than at the top; the type checker sees the class.
    TestClient = _test_client()
