"""Trace and Sentry identifiers of an attempt, and the links the UI builds from them.

The library copies two message headers onto ``task.started`` as the sender wrote them, and a
failure or retry adds what the executing process knew at that moment (see docs/integrations.md):

- ``traceparent`` (W3C Trace Context, written by OpenTelemetry's Celery instrumentation or any
  W3C propagator when the task was sent): ``00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags>``.
  The worker's span continues that trace, so its trace id is the attempt's.
- ``sentry_trace`` (Sentry's ``sentry-trace`` header, set by its Celery integration on send):
  ``<trace id, 32 hex>-<span id, 16 hex>[-<sampled>]``.
- on ``task.failed`` / ``task.retried``: ``trace_id``/``span_id`` of the worker's current
  OpenTelemetry span, ``sentry_trace`` of Sentry's current span and ``sentry_event_id``, the
  event Sentry captured for the failure. These win over the headers: they name the worker's
  own span (the headers name the sender's) and exist when the sender had no tracing.

Everything here is untrusted text from a message; anything that is not the exact shape reads
as absent, so a link is never built from garbage. Pure: no I/O, standard library only.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:-.*)?")
_SENTRY_TRACE = re.compile(r"([0-9a-f]{32})-([0-9a-f]{16})(?:-[01])?")
_ZERO32, _ZERO16 = "0" * 32, "0" * 16

# The placeholders a link template may use; each is one attempt's value, hex only.
PLACEHOLDERS: Final = ("trace_id", "span_id", "sentry_trace_id", "event_id", "task_id")


def _hex32(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "")  # Sentry prints event ids with or without dashes
        if _HEX32.fullmatch(text) and text != _ZERO32:
            return text
    return None


def _hex16(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip().lower()
        if _HEX16.fullmatch(text) and text != _ZERO16:
            return text
    return None


def parse_traceparent(value: Any) -> tuple[str, str] | None:
    """``(trace id, parent span id)`` of a W3C ``traceparent``, or ``None`` when it is not one
    (version ``ff`` and all-zero ids are invalid by the specification)."""
    if not isinstance(value, str) or len(value) > 512:
        return None
    m = _TRACEPARENT.fullmatch(value.strip().lower())
    if m is None or m.group(1) == "ff" or (m.group(1) == "00" and len(value.strip()) != 55):
        return None
    trace_id, span_id = _hex32(m.group(2)), _hex16(m.group(3))
    return (trace_id, span_id) if trace_id and span_id else None


def parse_sentry_trace(value: Any) -> str | None:
    """The trace id of a ``sentry-trace`` header, or ``None``."""
    if not isinstance(value, str) or len(value) > 128:
        return None
    m = _SENTRY_TRACE.fullmatch(value.strip().lower())
    return _hex32(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class TraceIds:
    """What an attempt links to; each ``None`` when unknown."""

    trace_id: str | None = None
    span_id: str | None = None
    sentry_trace_id: str | None = None
    sentry_event_id: str | None = None


NO_TRACE: Final = TraceIds()


def attempt_trace(started: Mapping[str, Any] | None, outcomes: Iterable[Mapping[str, Any]]) -> TraceIds:
    """The identifiers of one attempt: the ``data`` of its ``task.started`` and of its
    ``task.failed``/``task.retried`` events (the first valid value of each wins)."""
    trace_id = span_id = sentry_trace_id = event_id = None
    for data in outcomes:
        if trace_id is None:
            found = _hex32(data.get("trace_id"))
            if found is not None:
                trace_id, span_id = found, _hex16(data.get("span_id"))
        if sentry_trace_id is None:
            sentry_trace_id = parse_sentry_trace(data.get("sentry_trace"))
        if event_id is None:
            event_id = _hex32(data.get("sentry_event_id"))
    if started is not None:
        if trace_id is None:
            parsed = parse_traceparent(started.get("traceparent"))
            if parsed is not None:
                trace_id, span_id = parsed
        if sentry_trace_id is None:
            sentry_trace_id = parse_sentry_trace(started.get("sentry_trace"))
    if trace_id is None and sentry_trace_id is None and event_id is None:
        return NO_TRACE
    return TraceIds(trace_id, span_id, sentry_trace_id, event_id)


# -- link templates ---------------------------------------------------------------------------


def template_fields(template: str) -> tuple[str, ...]:
    """The placeholders ``template`` uses; raises ``ValueError`` saying what is wrong with it."""
    if not template.startswith(("https://", "http://")):
        raise ValueError("a link template is an http:// or https:// URL")
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a template: {exc} (write a literal brace as {{{{ or }}}})") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(
                f"unknown placeholder {{{name}}}; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        names.append(name)
    if not names:
        raise ValueError(
            f"the template uses no placeholder; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        )
    return tuple(names)


def render_link(template: str | None, values: Mapping[str, str | None]) -> str | None:
    """``template`` filled with ``values``, or ``None`` when it needs a value the attempt lacks.

    The values are hex identifiers and task ids; they are percent-encoded all the same, so a
    task id can never change the link's shape.
    """
    if not template:
        return None
    try:
        names = template_fields(template)
    except ValueError:
        return None
    filled: dict[str, str] = {}
    for name in names:
        value = values.get(name)
        if not value:
            return None
        filled[name] = _quote(value)
    return template.format_map(filled)


_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-._~")


def _quote(value: str) -> str:
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)


@dataclass(frozen=True, slots=True)
class LinkTemplates:
    """The server's ``--trace-url`` and ``--sentry-url``: each attempt's links are built from them."""

    trace_url: str | None = None
    sentry_url: str | None = None

    def links(self, task_id: str, ids: TraceIds) -> tuple[str | None, str | None]:
        """``(trace link, Sentry link)`` of one attempt; ``None`` where a template is unset or
        needs an identifier the attempt does not have (no event id on a success)."""
        if not (self.trace_url or self.sentry_url):
            return None, None
        values = {
            "trace_id": ids.trace_id,
            "span_id": ids.span_id,
            "sentry_trace_id": ids.sentry_trace_id,
            "event_id": ids.sentry_event_id,
            "task_id": task_id,
        }
        return render_link(self.trace_url, values), render_link(self.sentry_url, values)
