"""Compact JSON text, ``default=repr``, from one encoder built once.

``json.JSONEncoder.encode`` builds a new C encoder on every call, which costs more than
encoding a small value: the library measures every captured argument and result, and
the server encodes every stored row. :func:`dumps` builds the C encoder once, with the
very arguments ``JSONEncoder.iterencode`` passes on 3.10-3.13, so the text is byte for
byte what ``json.dumps(value, separators=(",", ":"), default=repr, ensure_ascii=False)``
gives. The shared encoder cannot keep a per-call record of containers in progress, so it
does not look for cycles; a cyclic value exceeds the recursion limit instead and is then
encoded by the standard encoder, which reports the cycle as ``json.dumps`` does.
"""

from __future__ import annotations

import json
from typing import Any

_STANDARD = json.JSONEncoder(separators=(",", ":"), default=repr, ensure_ascii=False)
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
# (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
_C_ENCODE: Any = (
    _C_MAKE_ENCODER(None, repr, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _C_MAKE_ENCODER is not None
    else None
)


def dumps(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), default=repr, ensure_ascii=False)``."""
    if _C_ENCODE is not None:
        try:
            return "".join(_C_ENCODE(value, 0))
        except RecursionError:
            pass  # deeper than the recursion limit, or a cycle: let the standard encoder say which
    return _STANDARD.encode(value)
