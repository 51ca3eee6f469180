"""orjson for the server's hot paths, with the standard library behind it.

The server parses transport payloads and stored event bodies, and encodes event
bodies and task columns, once per event or task: orjson does each several times
faster than ``json``. It is a dependency of the ``server`` extra only; ``core`` and
the capture library stay standard-library.

Nothing ``json`` accepted is refused or read differently: what orjson will not
parse (``NaN``/``Infinity`` literals, ``1e400``, lone surrogates, a BOM, UTF-16) or
would read differently (integers beyond 64 bits, which it makes floats) is parsed
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

from stemtrace.core.events import Event, MalformedEvent, decode_items

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


# orjson reads an integer outside the 64-bit range as a float (json keeps it exact), so a
# text with a run of 19 or more digits goes to json. Mapping digits to "0" and searching is
# ~1% of a parse; a number that long is rare in events (a 32-hex id holds one ~0.2% of the time).
_BYTES_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_STR_DIGITS = str.maketrans("123456789", "000000000")
_LONG_BYTES = b"0" * 19
_LONG_STR = "0" * 19


def _float(text: str) -> float:
    """json's ``parse_float``, marking an overflow to infinity (``1e400``) as NonFinite."""
    value = float(text)
    return value if value - value == 0.0 else NonFinite(text)


def loads(text: bytes | str) -> Any:
    """``json.loads``, via orjson when that gives the same value; raises ``ValueError`` like it."""
    if type(text) is bytes:
        long_number = _LONG_BYTES in text.translate(_BYTES_DIGITS)
    elif type(text) is str:
        long_number = _LONG_STR in text.translate(_STR_DIGITS)
    else:  # bytearray, a str subclass, ...: json decides, as it always did
        long_number = True
    if not long_number:
        try:
            return _orjson_loads(text)
        except _OrjsonDecodeError:
            pass
    return json.loads(text, parse_constant=NonFinite, parse_float=_float)


def decode_payload(payload: bytes | str) -> tuple[list[Event], list[MalformedEvent]]:
    """``core.events.decode_batch`` with :func:`loads`: the same events and malformed kinds."""
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
