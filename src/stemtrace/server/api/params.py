"""Parsing query parameters the way users type them: ISO-8601 or epoch times, state names."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from stemtrace.core.states import TaskState, WorkflowState, parse_task_state
from stemtrace.server.api.errors import ApiError
from stemtrace.server.store import BadCursor
from stemtrace.server.store.base import decode_cursor

# The times the API can show: ISO-8601 has four-digit years, so epoch seconds outside
# 0001-01-01 .. 9999-12-31 would be accepted and then be unprintable in the response.
MIN_EPOCH = datetime(1, 1, 1, tzinfo=timezone.utc).timestamp()
MAX_EPOCH = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def parse_time(name: str, value: str | None) -> float | None:
    """``2026-11-24T10:00:00Z``, a date, or epoch seconds; naive times are UTC.

    ``inf``, ``nan`` and times outside years 1..9999 are refused with a 422: they are no time
    a task could have, and would otherwise reach the store's arithmetic as they are.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    hint = "use ISO-8601 (2026-11-24T10:00:00Z) or epoch seconds"
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            seconds = parsed.timestamp()
        except (ValueError, OverflowError, OSError):
            raise ApiError(422, f"invalid {name} {value[:60]!r}: {hint}") from None
    if not math.isfinite(seconds) or not MIN_EPOCH <= seconds <= MAX_EPOCH:
        raise ApiError(422, f"{name} {value[:60]!r} is out of range: give a time between years 1 and 9999")
    return seconds


def parse_states(values: list[str] | None) -> tuple[TaskState, ...]:
    out: list[TaskState] = []
    for value in values or []:
        for part in value.split(","):
            if part.strip():
                try:
                    out.append(parse_task_state(part))
                except ValueError as exc:
                    raise ApiError(422, str(exc)) from None
    return tuple(dict.fromkeys(out))


def parse_workflow_states(values: list[str] | None) -> tuple[WorkflowState, ...]:
    out: list[WorkflowState] = []
    for value in values or []:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                out.append(WorkflowState(part.strip().upper()))
            except ValueError:
                valid = ", ".join(s.value for s in WorkflowState)
                raise ApiError(422, f"unknown workflow state {part!r}; expected one of {valid}") from None
    return tuple(dict.fromkeys(out))


MAX_EXCEPTION_TYPES = 50


def parse_exception_types(values: list[str] | None) -> tuple[str, ...]:
    """Exact exception type names, deduplicated; repeat the parameter for several (no splitting:
    the match is exact, so a value is taken as typed)."""
    out = tuple(dict.fromkeys(v for v in values or [] if v))
    if len(out) > MAX_EXCEPTION_TYPES:
        raise ApiError(422, f"at most {MAX_EXCEPTION_TYPES} exception_type values per request")
    return out


def check_cursor(cursor: str | None) -> str | None:
    if cursor:
        try:
            decode_cursor(cursor)
        except BadCursor as exc:
            raise ApiError(422, str(exc)) from None
    return cursor or None
