"""orjson for the server's hot paths, with the standard library behind it.

The server parses transport payloads and stored event bodies, and encodes event
bodies and task columns, once per event or task: orjson does each several times
faster than ``json``. It is a dependency of the ``server`` extra only; ``core`` and
the capture library stay standard-library.

Nothing ``json`` accepted is refused or read differently: what orjson will not
parse (``NaN``/``Infinity`` literals, ``1e400``, lone surrogates, a BOM, UTF-16) or
would read differently (integers outside ``[-2**63, 2**64 - 1]``, which it makes floats) is parsed
by ``json``. Non-finite numbers read that way become :class:`NonFinite`, a
``float`` subclass that orjson refuses to encode (it would write ``null``), so a
value holding one is encoded by ``json`` as before (``NaN``/``Infinity``).
Anything else orjson cannot encode (non-string keys, big integers, other types)
also takes the ``json`` path, ``default=repr`` included.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from stemtrace.core.events import Event, MalformedEvent
from stemtrace.core.wire import decode_items

# Subclasses of str/int/dict/list and dataclasses/datetimes are not JSON types: leave them
# (and NonFinite, which orjson never encodes) to ``json``.
_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_OrjsonDecodeError = orjson.JSONDecodeError


class NonFinite(float):
    """``NaN``, ``Infinity`` or ``-Infinity`` as read by the ``json`` fallback.

    Compares and computes like the plain float; ``json`` encodes it the same way.
    """

    __slots__ = ()


# orjson reads an integer outside [-2**63, 2**64 - 1] as a float (json keeps it exact). With
# the digits mapped to "0", a search finds in C what could be out of that range: a run of 20
# digits or more, or 19 after a minus sign (any 19 digits are below 2**64). Only then are the
# runs read one by one, so the 19-digit nanosecond timestamps of every batch (< 2**63) stay on
# orjson at ~1% of a parse. A run inside a string or a float is judged like an integer: out of
# range, it sends the text to json, which reads it as before.
_BYTES_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_BYTES = b"0" * 19
_SUSPECT_BYTES = (b"0" * 20, b"-" + _LONG_BYTES)
_MAX_POSITIVE = 2**64 - 1  # orjson's largest exact integer (unsigned 64-bit)
_MAX_NEGATED = 2**63  # -(its smallest, signed 64-bit)


def _in_range(digits: str, negative: bool) -> bool:
    """Whether a run of ``digits`` (after a ``-`` when ``negative``) is within orjson's range."""
    digits = digits.lstrip("0")
    if len(digits) > 20:  # also keeps int() below Python's limit on the digits it converts
        return False
    return int(digits or "0") <= (_MAX_NEGATED if negative else _MAX_POSITIVE)


def _bytes_exact(text: bytes) -> bool:
    """No run of digits in ``text`` that orjson would read differently from json."""
    zeros = text.translate(_BYTES_DIGITS)
    if _SUSPECT_BYTES[0] not in zeros and _SUSPECT_BYTES[1] not in zeros:
        return True
    start, end = zeros.find(_LONG_BYTES), len(zeros)
    while start != -1:  # the leftmost 19 digits after the previous run begin a run
        stop = start + 19
        while stop < end and zeros[stop] == 48:  # b"0"
            stop += 1
        if not _in_range(text[start:stop].decode(), start > 0 and text[start - 1] == 45):  # b"-"
            return False
        start = zeros.find(_LONG_BYTES, stop)
    return True


def _str_exact(text: str) -> bool:
    """:func:`_bytes_exact` for text. Digits are ASCII, so the runs are the same in its UTF-8
    bytes, and ``bytes.translate`` (a table lookup) costs a fifth of ``str.translate`` (a dict
    lookup per character): ~3 us instead of ~12 for a 150-character object."""
    return _bytes_exact(text.encode("utf-8", "surrogatepass"))


def _float(text: str) -> float:
    """json's ``parse_float``, marking an overflow to infinity (``1e400``) as NonFinite."""
    value = float(text)
    return value if value - value == 0.0 else NonFinite(text)


def loads(text: bytes | str) -> Any:
    """``json.loads``, via orjson when that gives the same value; raises ``ValueError`` like it."""
    # Others (bytearray, a str subclass, ...): json decides, as it always did.
    if _bytes_exact(text) if type(text) is bytes else type(text) is str and _str_exact(text):
        try:
            return _orjson_loads(text)
        except _OrjsonDecodeError:
            pass
    return json.loads(text, parse_constant=NonFinite, parse_float=_float)


def decode_payload(payload: bytes | str) -> tuple[list[Event], list[MalformedEvent]]:
    """``core.wire.decode_batch`` with :func:`loads`: the same events and malformed kinds."""
    try:
        parsed = loads(payload)
    except ValueError as exc:  # UnicodeDecodeError included
        return [], [MalformedEvent("invalid_json", str(exc)[:80])]
    return decode_items(parsed)


def fast_dumps(value: Any) -> str | None:
    """Compact JSON text of ``value`` from orjson, or None when only ``json`` can encode it."""
    try:
        return _orjson_dumps(value, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
