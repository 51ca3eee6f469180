"""The server's orjson decoding accepts and refuses exactly what ``core.wire.decode_batch`` does."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stemtrace.core.wire import decode_batch
from stemtrace.server.jsonfast import NonFinite, decode_payload, loads

FIXTURES = sorted((Path(__file__).parents[2] / "golden" / "fixtures").glob("*.json"))

EVENT = '{"type":"task.started","ts":1.5,"seq":%d,"task":{"id":"t"},"data":%s}'
HEAD = '{"v":1,"src":{"host":"h","pid":1,"inst":"i"},"events":['


def batch(*datas: str) -> str:
    return HEAD + ",".join(EVENT % (seq, data) for seq, data in enumerate(datas, 1)) + "]}"


PAYLOADS: list[bytes | str] = [
    batch("{}", '{"x":1e-7}').encode(),
    (EVENT % (3, "{}")).encode(),  # one event, not a batch
    batch('{"n":NaN,"i":-Infinity}').encode(),  # orjson refuses the literals
    batch('{"big":123456789012345678901234567890}').encode(),  # > 64 bits: orjson gives a float
    batch('{"a":-9223372036854775809,"b":18446744073709551616,"c":1e400}').encode(),
    batch('{"a":-9223372036854775808,"b":18446744073709551615,"c":1.0000000000000000000001}').encode(),
    b"\xef\xbb\xbf" + batch("{}").encode(),  # a UTF-8 BOM
    batch('{"s":"\\ud800"}').encode(),  # a lone surrogate escape
    batch("{}").encode("utf-16"),  # json detects the encoding
    batch('{"é":"\u2028"}'),  # str payload
    HEAD.encode() + b'1, {"v": 1}, ' + (EVENT % (9, "{}")).encode() + b"]}",  # bad elements among good
    HEAD.encode() + b'{"type":"task.started","ts":NaN,"seq":1}]}',
    b'[{"v":1,"type":"task.started","ts":1.5}]',  # an array of envelopes: not a message
    b"not json",
    b"[1,",
    b"\xff\xfe\xfd",
    b"",
    b"42",
    b"null",
    # the process stated once, events with their own seq
    b'{"v":1,"src":{"host":"h","pid":1,"inst":"i","proc":"main"},"events":[{"type":"task.started",'
    b'"ts":1.5,"seq":1,"task":{"id":"t"},"data":{"n":NaN}},{"type":"task.started","ts":2.5,"seq":2,'
    b'"proc":"thread","task":{"id":"t"},"data":{}},3]}',
    b'{"v":5,"src":{},"events":[]}',
    # rows whose field names the batch states once
    b'{"v":1,"src":{"host":"h","pid":1,"inst":"i"},"cols":{"task.started":["retries","n"]},"events":['
    b'["task.started",1500000000,1,"t","a",0,NaN],'
    b'["task.started",1500000000,2,"t","a",0,1,{"big":123456789012345678901234567890}],'
    b'["task.started",1500000000,3,"t"],["task.received",1500000000,4,"t","a"],[]]}',
    b'{"v":1,"src":{"host":"h","pid":1,"inst":"i"},"cols":{"task.started":[1]},"events":[]}',
    # a row's ts in integer nanoseconds
    b'{"v":1,"src":{"host":"h","pid":1,"inst":"i"},"cols":{"task.started":["retries","n"]},"events":['
    b'["task.started",1795480694309215744,1,"t","a",0,1],["task.started",1.5,2,"t","a",0,1],'
    b'["task.started",123456789012345678901234567890,3,"t","a",0,1],["task.started",-5,4,"t","a",0,1],'
    b'["task.started",1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111,5,"t","a",0,1]]}',
    b'{"v":1,"src":{"host":"h"},"events":"x"}',
    b'{"v":4,"src":{"host":"h","pid":1,"inst":"i"},"events":[]}',  # an intermediate layout: refused
    *(path.read_bytes() for path in FIXTURES),
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_decode_payload_is_decode_batch(payload: bytes | str) -> None:
    events, errors = decode_payload(payload)
    want_events, want_errors = decode_batch(payload)
    assert [e.kind for e in errors] == [e.kind for e in want_errors]
    assert [str(e) for e in errors] == [str(e) for e in want_errors]
    enc = json.JSONEncoder(separators=(",", ":"))  # NaN compares through its text
    assert [enc.encode(e.to_dict()) for e in events] == [enc.encode(e.to_dict()) for e in want_events]
    assert events == want_events or any("NaN" in enc.encode(e.to_dict()) for e in events)


def test_non_finite_numbers_are_marked() -> None:
    value = loads(b'{"a":[NaN,Infinity,-Infinity,1.5,1e400]}')
    assert [type(x) for x in value["a"]] == [NonFinite, NonFinite, NonFinite, float, NonFinite]
    assert math.isnan(value["a"][0]) and value["a"][1] == math.inf and value["a"][2] == -math.inf
    assert type(loads(b"[1.5]")[0]) is float


def test_loads_keeps_big_integers_exact() -> None:
    for text in ("[123456789012345678901234567890]", "[-9223372036854775809]"):
        assert loads(text) == loads(text.encode()) == json.loads(text)
        assert type(loads(text)[0]) is int


def test_loads_raises_like_json() -> None:
    for bad in (b"[1,", b"\xff", b""):
        with pytest.raises(ValueError):
            loads(bad)


# Integers at orjson's bounds: [-2**63, 2**64 - 1] it reads exactly, beyond them as floats.
BOUNDS = [
    ("[9223372036854775807]", True),  # 2**63 - 1
    ("[9223372036854775808]", True),  # 2**63
    ("[18446744073709551615]", True),  # 2**64 - 1
    ("[18446744073709551616]", False),  # 2**64
    ("[-9223372036854775808]", True),  # -2**63
    ("[-9223372036854775809]", False),  # -2**63 - 1
    ("[-18446744073709551615]", False),  # a negative orjson would make a float
    ("[-9223372036854775807, -1000000000000000000]", True),  # 19 digits after a minus, in range
    ("[-9999999999999999999]", False),  # 19 digits after a minus, out of range
    ("[10000000000000000000]", True),  # 20 digits, in range
    ("[00000000000000000000000000001]", True),  # invalid JSON either way: orjson refuses it too
    ("[1795480694309215744, 1795480694309215745]", True),  # nanosecond timestamps
    ('["123456789012345678901234567890"]', False),  # digits in a string: json, read the same
    ('["id 18446744073709551615"]', True),
    ('["id-18446744073709551615"]', False),  # judged as a negative number: json, read the same
    ("[1.0000000000000000000001, 12345678901234567890.5]", True),  # float digits in range
    ("[1795480694309215744, 99999999999999999999]", False),  # the second run decides
]


@pytest.mark.parametrize(("text", "fast"), BOUNDS)
def test_only_integers_beyond_64_bits_leave_orjson(text: str, fast: bool) -> None:
    from stemtrace.server import jsonfast

    assert jsonfast._bytes_exact(text.encode()) is fast
    assert jsonfast._str_exact(text) is fast
    try:
        want: object = json.loads(text)
    except ValueError:
        for form in (text, text.encode()):
            with pytest.raises(ValueError):
                loads(form)
        return
    for form in (text, text.encode()):
        got = loads(form)
        assert got == want
        assert [type(x) for x in got] == [type(x) for x in want]  # type: ignore[attr-defined]
