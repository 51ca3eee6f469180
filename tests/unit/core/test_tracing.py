"""Trace and Sentry identifiers of attempts (``core.tracing``): parsing untrusted headers, which
value wins, the attempts they land on, and the links built from the server's templates."""

from __future__ import annotations

import pytest
from canvas_factory import Recorder
from hypothesis import given
from hypothesis import strategies as st

from stemtrace.core.task import fold_task
from stemtrace.core.tracing import (
    LinkTemplates,
    TraceIds,
    attempt_trace,
    parse_sentry_trace,
    parse_traceparent,
    render_link,
    template_fields,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
WORKER_TRACE = "0af7651916cd43dd8448eb211c80319c"
WORKER_SPAN = "b7ad6b7169203331"
SENTRY = "771a43a4192642f0b136d5159a501700"
EVENT = "fc6d8c0c43fc4630ad850ee518f1b9d0"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN)),
        (f"00-{TRACE.upper()}-{SPAN}-00", (TRACE, SPAN)),
        (f"01-{TRACE}-{SPAN}-01-future", (TRACE, SPAN)),  # a later version may append fields
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 is exactly 55 characters
        (f"ff-{TRACE}-{SPAN}-01", None),  # version ff is forbidden
        (f"00-{'0' * 32}-{SPAN}-01", None),  # all-zero ids are invalid
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        ("", None),
        (None, None),
        (["00", TRACE], None),
        ("x" * 10_000, None),
    ],
)
def test_traceparent(header: object, expected: tuple[str, str] | None) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{SENTRY}-{SPAN}-1", SENTRY),
        (f"{SENTRY}-{SPAN}", SENTRY),  # the sampling flag is optional
        (f"{SENTRY}-{SPAN}-2", None),
        (f"{'0' * 32}-{SPAN}-1", None),
        ("nonsense", None),
        (42, None),
    ],
)
def test_sentry_trace(header: object, expected: str | None) -> None:
    assert parse_sentry_trace(header) == expected


@given(st.text(max_size=200))
def test_any_text_parses_or_reads_as_absent(text: str) -> None:
    for parsed in (parse_traceparent(text), parse_sentry_trace(text)):
        assert parsed is None or all(c in "0123456789abcdef" for part in parsed for c in part)


def test_the_workers_own_span_wins_over_the_senders() -> None:
    started = {"traceparent": f"00-{TRACE}-{SPAN}-01", "sentry_trace": f"{SENTRY}-{SPAN}-1"}
    assert attempt_trace(started, []) == TraceIds(TRACE, SPAN, SENTRY, None)
    failed = {"trace_id": WORKER_TRACE, "span_id": WORKER_SPAN, "sentry_event_id": EVENT}
    assert attempt_trace(started, [failed]) == TraceIds(WORKER_TRACE, WORKER_SPAN, SENTRY, EVENT)
    # Garbage from the worker reads as absent: the headers stand.
    bad = {"trace_id": "not hex", "span_id": WORKER_SPAN, "sentry_event_id": "0" * 32, "sentry_trace": 7}
    assert attempt_trace(started, [bad]) == TraceIds(TRACE, SPAN, SENTRY, None)
    # Sentry prints event ids with dashes too (a UUID).
    dashed = "fc6d8c0c-43fc-4630-ad85-0ee518f1b9d0"
    assert attempt_trace(None, [{"sentry_event_id": dashed}]).sentry_event_id == EVENT


def test_each_attempt_carries_its_own_trace() -> None:
    """A retry is a new message: OpenTelemetry injects a new ``traceparent`` into it (a span of
    the same trace), and each attempt shows its own; only the failed attempt has an event id."""
    r = Recorder()
    r.publish("client", "t", "job")
    r.emit("child1", "task.started", "t", "job", retries=0, worker_pid=2, traceparent=f"00-{TRACE}-{SPAN}-01")
    r.emit("child1", "task.retried", "t", "job", retries=0, trace_id=TRACE, span_id=WORKER_SPAN)
    r.publish("child1", "t", "job", retries=1)
    second = "1111111111111111"
    r.emit(
        "child1", "task.started", "t", "job", retries=1, worker_pid=2, traceparent=f"00-{TRACE}-{second}-01"
    )
    r.emit(
        "child1",
        "task.failed",
        "t",
        "job",
        retries=1,
        exception_type="builtins.ValueError",
        origin="child",
        sentry_event_id=EVENT,
        sentry_trace=f"{SENTRY}-{SPAN}-0",
    )
    first, last = fold_task("t", r.events).attempts
    assert (first.trace_id, first.span_id, first.sentry_event_id) == (TRACE, WORKER_SPAN, None)
    assert (last.trace_id, last.span_id) == (TRACE, second)
    assert (last.sentry_trace_id, last.sentry_event_id) == (SENTRY, EVENT)


def test_a_single_attempt_reads_its_headers_and_without_them_has_none() -> None:
    r = Recorder()
    r.publish("client", "t", "job")
    r.emit("child1", "task.started", "t", "job", retries=0, worker_pid=2, traceparent=f"00-{TRACE}-{SPAN}-01")
    r.succeed("t", "job")
    (attempt,) = fold_task("t", r.events).attempts
    assert (attempt.trace_id, attempt.span_id, attempt.sentry_event_id) == (TRACE, SPAN, None)
    plain = Recorder()
    plain.publish("client", "t", "job")
    plain.start("t", "job")
    plain.succeed("t", "job")
    (attempt,) = fold_task("t", plain.events).attempts
    assert (attempt.trace_id, attempt.span_id, attempt.sentry_trace_id, attempt.sentry_event_id) == (
        None,
    ) * 4


def test_templates_name_known_placeholders_only() -> None:
    assert template_fields("https://tempo.example/trace/{trace_id}?span={span_id}") == ("trace_id", "span_id")
    for bad, why in [
        ("tempo.example/trace/{trace_id}", "http"),
        ("https://x/{traceid}", "unknown placeholder"),
        ("https://x/{trace_id!r}", "unknown placeholder"),
        ("https://x/{trace_id", "not a template"),
        ("https://x/trace", "no placeholder"),
    ]:
        with pytest.raises(ValueError, match=why):
            template_fields(bad)


def test_links_need_every_value_their_template_uses() -> None:
    links = LinkTemplates(
        trace_url="https://tempo.example/trace/{trace_id}",
        sentry_url="https://sentry.example/organizations/acme/issues/?query={event_id}",
    )
    failed = TraceIds(TRACE, SPAN, SENTRY, EVENT)
    assert links.links("t-1", failed) == (
        f"https://tempo.example/trace/{TRACE}",
        f"https://sentry.example/organizations/acme/issues/?query={EVENT}",
    )
    assert links.links("t-1", TraceIds(TRACE, SPAN, None, None)) == (
        f"https://tempo.example/trace/{TRACE}",
        None,
    )
    assert links.links("t-1", TraceIds()) == (None, None)
    assert LinkTemplates().links("t-1", failed) == (None, None)
    # A task id is the sender's text: it is percent-encoded, never part of the link's shape.
    assert (
        render_link("https://x/?task={task_id}", {"task_id": "a/b?c=d&e"})
        == "https://x/?task=a%2Fb%3Fc%3Dd%26e"
    )
