"""Captured values: structured JSON when possible, always bounded, never raising.

:func:`capture_value` turns anything (args, kwargs, a result) into JSON-able
data: redacted keys masked, each string cut to a preview with a visible marker,
long containers cut, and everything without a JSON form (custom objects, sets,
bytes, non-UTF-8 text) replaced by a bounded ``repr``. A field that is still
over ``max_field_bytes`` is shrunk leaf by leaf, so a small ``user_id`` next to a
1 MB blob survives; only as a last resort does the whole field become a preview.
:func:`fit_event` then keeps the event under ``max_event_bytes`` by shrinking the
largest captured fields first.
"""

from __future__ import annotations

import datetime as _dt
import math
import reprlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from stemtrace.capture.redact import Redactor
from stemtrace.core.events import REDACTED, REPR_KEY, TRUNCATED_KEY
from stemtrace.core.jsontext import dumps

MAX_DEPTH = 12
MAX_ITEMS = 200
_REPR = reprlib.Repr()
_REPR.maxstring = 200
_REPR.maxother = 200
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 20


def truncated(preview: str, size: int) -> dict[str, Any]:
    return {TRUNCATED_KEY: True, "preview": preview, "size": size}


def type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def safe_repr(value: Any, limit: int = 400) -> dict[str, Any]:
    """A bounded repr that survives a ``__repr__`` that raises."""
    try:
        text = _REPR.repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type_name(value)}: {type(exc).__name__}>"
    return {REPR_KEY: text[:limit], "type": type_name(value)}


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


class _Converter:
    def __init__(self, redactor: Redactor, leaf_bytes: int) -> None:
        self.redactor = redactor
        self.leaf = max(16, leaf_bytes)

    def string(self, text: str) -> Any:
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates from undecodable bytes
                return self.masked_repr(text)
        size = utf8_size(text)
        if size <= self.leaf:
            return self.redactor.text(text)
        # Cut before masking: only the preview leaves, and the regex pass stays cheap.
        return truncated(self.redactor.text(text[: self.leaf]), size)

    def masked_repr(self, value: Any) -> dict[str, Any]:
        """A bounded repr with any secret in it masked (a client object's repr may hold a URL)."""
        out = safe_repr(value)
        out[REPR_KEY] = self.redactor.text(out[REPR_KEY])
        return out

    def convert(self, value: Any, depth: int = 0) -> Any:
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        if isinstance(value, str):
            return self.string(value)
        if depth >= MAX_DEPTH:
            return self.masked_repr(value)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for i, (key, item) in enumerate(value.items()):
                if i >= MAX_ITEMS:
                    out[TRUNCATED_KEY] = True
                    out["size"] = len(value)
                    break
                skey = key if isinstance(key, str) else str(key)
                if self.redactor.is_sensitive_key(skey):
                    out[skey] = REDACTED
                else:
                    out[skey] = self.convert(item, depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            items = [self.convert(item, depth + 1) for item in value[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                items.append(truncated(f"{len(value) - MAX_ITEMS} more items", len(value)))
            return items
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, (uuid.UUID, Decimal)):
            return str(value)
        return self.masked_repr(value)


SHORT = 64  # characters: a string this short is never cut (fields are at least this big)
_SHALLOW_ITEMS = 16


def _scalar(value: Any) -> bool:
    """Exact numbers, ``None`` and short ASCII strings: captured as they are."""
    kind = type(value)
    if kind is str:
        return len(value) <= SHORT and value.isascii()
    if kind is float:
        return math.isfinite(value)
    return kind is int or kind is bool or value is None


def shallow(value: Any, redactor: Redactor) -> Any:
    """``value`` captured without the converter, or ``None`` when it needs it.

    The commonest arguments are a short list of ids, numbers and short strings: nothing in
    them is cut or masked (but a sensitive key), so the converter's walk is skipped. The
    caller makes sure no pattern applies and fields are at least ``SHORT`` bytes; a string
    with a secret in it (``"password=x"``) is left to the converter, which masks it.
    """
    kind = type(value)
    if kind is list or kind is tuple:
        if len(value) <= _SHALLOW_ITEMS and all(_scalar(v) for v in value):
            if any(type(v) is str and redactor.finds_secret(v) for v in value):
                return None
            return list(value)
    elif kind is dict and len(value) <= _SHALLOW_ITEMS:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str or len(key) > SHORT or not _scalar(item):
                return None
            if type(item) is str and redactor.finds_secret(item):
                return None
            out[key] = REDACTED if redactor.is_sensitive_key(key) else item
        return out
    return None


def encoded_size(value: Any) -> int:
    return utf8_size(dumps(value))


def capture_value(value: Any, redactor: Redactor, max_field_bytes: int) -> Any:
    """``value`` as bounded, redacted JSON-able data. Never raises."""
    return capture_sized(value, redactor, max_field_bytes)[0]


def capture_sized(value: Any, redactor: Redactor, max_field_bytes: int) -> tuple[Any, int]:
    """:func:`capture_value` and the encoded size of its result, which :func:`fit_event` reuses."""
    if value is None:  # the commonest results: no converter, no encoding
        return None, 4
    if type(value) is int:
        return value, len(str(value))
    try:
        if max_field_bytes >= SHORT and not redactor.has_patterns:
            out = shallow(value, redactor)
            if out is not None:
                size = encoded_size(out)
                if size <= max_field_bytes:
                    return out, size
        leaf = max_field_bytes
        for _ in range(4):
            out = _Converter(redactor, leaf).convert(value)
            size = encoded_size(out)
            if size <= max_field_bytes:
                return out, size
            leaf = int(leaf * max_field_bytes / size / 1.5)  # shrink leaves, keep the structure
            if leaf < 32:
                break
        cut = truncated(dumps(out)[: max(16, max_field_bytes // 2)], size)
        return cut, encoded_size(cut)
    except Exception as exc:  # a converter bug must not lose the event
        failed = capture_failed(exc, value)
        return failed, encoded_size(failed)


def capture_failed(exc: BaseException, value: Any = None) -> dict[str, Any]:
    """What stands for a value the library failed to capture: visible, never the value."""
    out = {REPR_KEY: f"<capture failed: {type(exc).__name__}>"}
    if value is not None:
        out["type"] = type_name(value)
    return out


# Between the head and the tail of a cut traceback: says what is missing, in the text itself.
_CUT_LINE = "\n[… {} bytes cut …]\n"


def cut_text(text: str, max_bytes: int, *, head_tail: bool = False) -> str:
    """``text`` cut to about ``max_bytes``: its beginning (an exception message: its gist comes
    first), or with ``head_tail`` its first quarter and its last three (a traceback: the
    exception line and the innermost frames are at its end), on line boundaries where one is
    near, joined by a line saying how much is missing."""
    size = utf8_size(text)
    if size <= max_bytes:
        return text
    # Characters for bytes: proportionally fewer where the text is not ASCII.
    budget = max(16, max_bytes if len(text) == size else max_bytes * len(text) // size)
    if not head_tail:
        return text[:budget]
    budget -= len(_CUT_LINE.format(size))
    head_end = max(8, budget // 4)
    tail_start = len(text) - max(8, budget - head_end)
    newline = text.rfind("\n", 0, head_end)
    if newline > head_end // 2:
        head_end = newline
    newline = text.find("\n", tail_start)
    if 0 <= newline < tail_start + (len(text) - tail_start) // 4:
        tail_start = newline + 1
    cut = utf8_size(text[head_end:tail_start])
    return text[:head_end] + _CUT_LINE.format(cut) + text[tail_start:]


def capture_text(text: str | None, redactor: Redactor, max_bytes: int, *, head_tail: bool = False) -> Any:
    """Free text (exception messages, tracebacks, reprs): redacted, then cut once to
    ``max_bytes`` (see :func:`cut_text`) into one marker that holds the original size."""
    if text is None:
        return None
    try:
        text = str(text)
        size = utf8_size(text)
        if size <= max_bytes:
            return redactor.text(text)
        return truncated(redactor.text(cut_text(text, max_bytes, head_tail=head_tail)), size)
    except Exception as exc:
        return f"<unrepresentable text: {type(exc).__name__}>"


def is_truncated(value: Any) -> bool:
    return type(value) is dict and value.get(TRUNCATED_KEY) is True


def _recut(value: Any, room: int, size: int) -> dict[str, Any]:
    """``value`` as one marker of about ``room`` bytes: a value already cut keeps its marker's
    original size and loses more of its preview (never a marker inside a marker)."""
    if is_truncated(value) and isinstance(value.get("preview"), str):
        return truncated(cut_text(value["preview"], room), value.get("size") or size)
    return truncated(dumps(value)[:room], size)


def fit_event(
    data: dict[str, Any],
    fields: tuple[str, ...],
    max_event_bytes: int,
    known: dict[str, int] | None = None,
    texts: dict[str, Callable[[int], Any]] | None = None,
) -> None:
    """Shrink captured values in ``data`` until together they fit ``max_event_bytes``.

    ``fields`` are in the order they give way: the largest of those before the last two
    first (arguments, results, reprs), then the last two in order (the exception message,
    then the traceback: the last thing a reader of a failure wants to lose). ``known`` holds
    sizes already measured (by :func:`capture_sized`); ``texts`` captures a free-text field
    again within a given size (:func:`capture_text` of its original), so it is cut once from
    the original rather than its marker wrapped in another.
    """
    known = known or {}
    texts = texts or {}
    sizes = {
        name: known[name] if name in known else encoded_size(data[name])
        for name in fields
        if data.get(name) is not None
    }
    total = sum(sizes.values())
    values = sorted((n for n in sizes if n not in fields[-2:]), key=sizes.__getitem__, reverse=True)
    for name in [*values, *(n for n in fields[-2:] if n in sizes)]:
        if total <= max_event_bytes:
            return
        other = total - sizes[name]
        room = max(64, max_event_bytes - other - 64)  # 64: the marker's own keys
        if name in texts:
            data[name] = texts[name](room)
        else:
            data[name] = _recut(data[name], room, sizes[name])
        total = other + encoded_size(data[name])
