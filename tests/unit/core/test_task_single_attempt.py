"""``fold_task``'s shortcut for the common single-attempt shape equals the general path.

``attempts.single_attempt`` freezes the attempt of a first try with one delivery, one start and at
most one outcome without building drafts. Over generated event sets around that shape (and
just outside it: retries, a second start, an outcome from another process, events without
``retries``, main-process failures, revokes, missing nodes), the record folded with the
shortcut must equal the record folded with it disabled.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemtrace.core import task as task_module
from stemtrace.core.attempts import single_attempt
from stemtrace.core.events import Event, Source
from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.task import fold_task

_TYPES = [
    "task.published",
    "task.received",
    "task.started",
    "task.succeeded",
    "task.failed",
    "task.retried",
    "task.revoked",
    "task.postrun",
]
# Mostly the common shape, so both paths and the boundary between them are exercised.
_COMMON = ["task.published", "task.received", "task.started", "task.succeeded"]


@st.composite
def event_sets(draw: st.DrawFn) -> list[Event]:
    base = draw(st.sampled_from([_COMMON, _COMMON[:3], [*_COMMON[:3], "task.failed"], []]))
    extra = draw(st.lists(st.sampled_from(_TYPES), max_size=3))
    types = [t for t in base if draw(st.integers(0, 9)) > 0] + extra
    events = []
    for seq, etype in enumerate(types, start=1):
        data: dict[str, Any] = {}
        retries = draw(st.sampled_from([0, 0, 0, 0, None, 1]))
        if retries is not None:
            data["retries"] = retries
        if etype == "task.received" and draw(st.booleans()):
            data["redelivered"] = draw(st.booleans())
        if etype in ("task.succeeded", "task.failed", "task.postrun"):
            data["runtime"] = draw(st.sampled_from([0.25, 1, None, "slow", True]))
        if etype == "task.succeeded":
            data["result"] = draw(st.sampled_from([None, 3, {"ok": True}]))
        if etype == "task.failed":
            data["origin"] = draw(st.sampled_from(["child", "child", "main"]))
            data["exception_type"] = draw(
                st.sampled_from(["ValueError", "billiard.exceptions.WorkerLostError", None])
            )
            data["exception"] = draw(st.sampled_from(["ValueError('x')", None, 5]))
            data["traceback"] = draw(st.sampled_from(["Traceback ...", None]))
        if etype == "task.started" and draw(st.booleans()):
            data["exception_type"] = "Odd"  # only a failure's own event should be shown
        if etype == "task.started" and draw(st.booleans()):
            data["runtime"] = 0.75  # shown when the outcome states none
        if etype == "task.postrun":
            data["state"] = draw(st.sampled_from(["IGNORED", None]))
        if etype == "task.published" and draw(st.integers(0, 9)) == 0:
            data["replaced_task_nesting"] = 1
        # The worker's main process receives; one of two children (or a client) does the rest.
        inst = "main" if etype == "task.received" else draw(st.sampled_from(["child1", "child1", "child2"]))
        node = draw(st.sampled_from(["w1@h", "w1@h", "w2@h", None]))
        source = Source("h", 1, inst, draw(st.integers(1, 40)) * 100 + seq, proc="child", node=node)
        ts = draw(st.sampled_from([1.0, 2.0, 3.0, 4.0]))
        events.append(Event(etype, ts, source, "t", "job", data))
    return events


def general_fold(events: list[Event]) -> TaskRecord:
    # fold_task looks the shortcut up in its own module's namespace: disable it there.
    with mock.patch.object(task_module, "single_attempt", lambda ordered, stated: None):
        return fold_task("t", events)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets())
def test_single_attempt_shortcut_folds_like_the_general_path(events: list[Event]) -> None:
    assert fold_task("t", events) == general_fold(events)


def _event(etype: str, seq: int, ts: float, inst: str = "child1", **data: Any) -> Event:
    return Event(etype, ts, Source("h", 1, inst, seq, proc="child", node="w1@h"), "t", "job", data)


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (None, TaskState.STARTED),
        ("task.succeeded", TaskState.SUCCESS),
        ("task.failed", TaskState.FAILURE),
    ],
)
def test_the_common_shapes_take_the_shortcut(outcome: str | None, state: TaskState) -> None:
    events = [
        _event("task.published", 1, 1.0, inst="client", retries=0),
        _event("task.received", 1, 2.0, inst="main", retries=0, redelivered=False),
        _event("task.started", 2, 3.0, retries=0),
    ]
    if outcome is not None:
        events.append(_event(outcome, 3, 4.0, retries=0, runtime=0.5, exception_type="E", exception="e"))
    ordered = sorted(events, key=lambda e: e.ts)
    attempt = single_attempt(ordered, [0] * len(ordered))
    assert attempt is not None
    assert attempt.state is state
    assert fold_task("t", events) == general_fold(events)
    assert (attempt.exception_type == "E") is (state is TaskState.FAILURE)
