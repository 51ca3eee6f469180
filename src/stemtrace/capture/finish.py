"""Finishing events in the publisher thread, off Celery's hot path.

Handlers enqueue an envelope plus ``raw``: references to live values (args,
kwargs, result, embed, exception text). Here they become captured values:
redacted, bounded, JSON-able. Celery's ``argsrepr``/``kwargsrepr`` replace the
live arguments when the user set them (they differ from Celery's own
``saferepr``), which is Celery's documented way to hide arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stemtrace.capture.canvas import summarize
from stemtrace.capture.config import CaptureConfig
from stemtrace.capture.fields import RAW_FIELDS
from stemtrace.capture.payload import capture_sized, capture_text, fit_event
from stemtrace.capture.redact import Redactor
from stemtrace.core.events import TASK_PUBLISHED, TASK_SUCCEEDED

# The order captured fields give way when an event is over its budget: values and reprs first
# (largest first), then the exception message, the traceback last (see ``fit_event``).
_CAPTURED = ("args", "kwargs", "result", "args_repr", "kwargs_repr", "exception", "traceback")
_ARGS_COLUMNS = ("args", "kwargs")
_RESULT_COLUMNS = ("result",)


_PLAIN = (int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """Small containers of numbers, ``None`` and short strings: their ``repr`` is cheap and bounded."""
    if isinstance(value, (list, tuple)):
        items: Any = value
    elif isinstance(value, dict):
        items = value.values()
        if not all(isinstance(k, str) and len(k) < 64 for k in value):
            return False
    else:
        return False
    return len(value) <= 16 and all(
        isinstance(v, _PLAIN) or (isinstance(v, str) and len(v) < 64) for v in items
    )


def _user_repr(given: Any, live: Any) -> bool:
    """True when ``given`` was set by the user, not computed by Celery from ``live``."""
    if not isinstance(given, str):
        return False
    try:
        # Fast path: Celery's saferepr of plain values is their repr; an argsrepr equal to
        # the repr hides nothing either way, so the live values may be captured.
        if _plain(live):
            if given == repr(live):
                return False
            if isinstance(live, list) and given == repr(tuple(live)):  # a tuple in Celery's hands
                return False
        from celery.utils.saferepr import saferepr

        if given == saferepr(live, 1024):
            return False
        # The body may carry a list where Celery saw a tuple (or the reverse).
        if isinstance(live, (list, tuple)):
            other = tuple(live) if isinstance(live, list) else list(live)
            return bool(given != saferepr(other, 1024))
        return True
    except Exception:
        return False


class Finisher:
    """What the emitter's thread turns each buffered event's live values into, before encoding.

    One entry point, :meth:`tail`: the captured values of one event, as they follow its data
    fields in a row (the values of :meth:`columns`, then one object of any other captured fields).
    """

    def __init__(self, config: CaptureConfig, redactor: Redactor) -> None:
        self.config = config
        self.redactor = redactor

    def _value(self, name: str | None, field: str, value: Any, sizes: dict[str, int]) -> Any:
        value = self.redactor.apply_hook(name, field, value)
        out, sizes[field] = capture_sized(value, self.redactor, self.config.max_field_bytes)
        return out

    def _text(self, name: str | None, field: str, value: Any, texts: dict[str, Callable[[int], Any]]) -> Any:
        """A free-text field captured once, cut to its own cap; ``texts`` learns how to capture
        it again within less room, from the original, should the event be over its budget."""
        value = self.redactor.apply_hook(name, field, value)
        head_tail = field == "traceback"
        limit = self.config.max_traceback_bytes if head_tail else self.config.max_field_bytes
        redactor = self.redactor

        def again(room: int) -> Any:
            return capture_text(value, redactor, min(room, limit), head_tail=head_tail)

        texts[field] = again
        return again(limit)

    def _data(self, etype: str, name: Any, values: tuple[Any, ...]) -> dict[str, Any] | None:
        """The captured ``data`` fields of an event from ``values``, those of its ``RAW_FIELDS``;
        ``None`` when there are none (a task that returned nothing with ``capture_result`` off)."""
        if not values:
            return None
        return self._captured(name, dict(zip(RAW_FIELDS[etype], values, strict=True))) or None

    def columns(self, etype: str) -> tuple[str, ...]:
        """The captured fields every row of ``etype`` from this process carries as values, after
        its ``DATA_FIELDS``: the batch names them once (its ``cols``) instead of each row in an
        object of its own, which costs more to build and to encode."""
        if etype == TASK_PUBLISHED and self.config.capture_args:
            return _ARGS_COLUMNS
        if etype == TASK_SUCCEEDED and self.config.capture_result:
            return _RESULT_COLUMNS
        return ()

    def tail(self, etype: str, name: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """What follows the ``DATA_FIELDS`` values in a row of ``etype``: the captured values of
        :meth:`columns` (``None`` for one not captured, as ``args`` where a user's ``argsrepr``
        stands instead), then one object of any other captured fields (a canvas, a repr)."""
        data = self._data(etype, name, values) or {}
        names = self.columns(etype)
        if not names:
            return (data,) if data else ()
        head = tuple(data.pop(key, None) for key in names)
        return (*head, data) if data else head

    def _result(self, name: Any, value: Any) -> Any:
        """A task's captured result, cut to fit an event when it is larger."""
        sizes: dict[str, int] = {}
        result = self._value(name, "result", value, sizes)
        if sizes["result"] <= self.config.max_event_bytes:
            return result
        data = {"result": result}
        fit_event(data, _CAPTURED, self.config.max_event_bytes, sizes)
        return data["result"]

    def _captured(self, name: Any, raw: dict[str, Any]) -> dict[str, Any]:
        """The captured ``data`` fields from ``raw``, live values by field name."""
        data: dict[str, Any] = {}
        cfg = self.config
        sizes: dict[str, int] = {}
        texts: dict[str, Callable[[int], Any]] = {}
        if "embed" in raw:
            canvas = summarize(raw["embed"])
            if canvas is not None:
                data["canvas"] = canvas
        if cfg.capture_args and "args" in raw:
            args = raw["args"]
            kwargs = {} if raw["kwargs"] is None else raw["kwargs"]
            args_repr, kwargs_repr = raw.get("argsrepr"), raw.get("kwargsrepr")
            if _user_repr(args_repr, args):
                data["args_repr"] = self._text(name, "args_repr", args_repr, texts)
            else:
                live = self.redactor.args(name, args) if isinstance(args, (list, tuple)) else args
                data["args"] = self._value(name, "args", live, sizes)
            if _user_repr(kwargs_repr, kwargs):
                data["kwargs_repr"] = self._text(name, "kwargs_repr", kwargs_repr, texts)
            else:
                data["kwargs"] = self._value(name, "kwargs", kwargs, sizes)
        if cfg.capture_result and "result" in raw:
            data["result"] = self._value(name, "result", raw["result"], sizes)
        if "exception" in raw:
            data["exception"] = self._text(name, "exception", raw["exception"], texts)
        if cfg.capture_traceback and raw.get("traceback"):
            data["traceback"] = self._text(name, "traceback", raw["traceback"], texts)
        # Free text has no measured size; values alone fit when their measured sizes do.
        if texts or sum(sizes.values()) > cfg.max_event_bytes:
            fit_event(data, _CAPTURED, cfg.max_event_bytes, sizes, texts)
        return data
