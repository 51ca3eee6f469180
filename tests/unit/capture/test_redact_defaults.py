"""Redaction by default: secrets inside strings are masked wherever captured text goes.

Table-driven over the built-in rules (sensitive ``key=value`` pairs, HTTP credentials,
passwords in URLs), then through every path a value takes: the converter, the shallow
fast path, the ``.delay()`` fast path of the finisher, reprs, exception messages and
tracebacks. Innocent look-alikes are kept as they are.
"""

from __future__ import annotations

from typing import Any

import pytest

from stemtrace.capture.config import DEFAULT_REDACT_KEYS, CaptureConfig
from stemtrace.capture.finish import Finisher
from stemtrace.capture.payload import capture_text, capture_value, shallow
from stemtrace.capture.redact import Redactor
from stemtrace.core.events import REDACTED, REPR_KEY, TASK_FAILED, TASK_PUBLISHED, TASK_SUCCEEDED
from stemtrace.core.jsontext import dumps

R = Redactor(DEFAULT_REDACT_KEYS)

MASKED = [
    ("password=hunter2 user=bob", "password=[redacted] user=bob"),
    ("PASSWORD=HuNtEr2", "PASSWORD=[redacted]"),
    ("db_password: 's3 cr3t' and more", "db_password: [redacted] and more"),
    ('{"password": "hunter 2", "user": "x"}', '{"password": [redacted], "user": "x"}'),
    ("{'api_key': 'AKIA1234', 'region': 'eu'}", "{'api_key': [redacted], 'region': 'eu'}"),
    ("token=abc&next=/home", "token=[redacted]&next=/home"),
    ("SECRET_KEY = django-insecure-xyz", "SECRET_KEY = [redacted]"),
    ("client_secret=q1w2e3;", "client_secret=[redacted];"),
    ("Authorization: Bearer eyJhbGciOi.J9.abc", "Authorization: [redacted]"),
    ("{'Authorization': 'Basic dXNlcjpwYXNz'}", "{'Authorization': [redacted]}"),
    ("curl -H 'X-Token: t0k3n' url", "curl -H 'X-Token: [redacted]' url"),
    ("sent with Bearer abcd1234efgh5678", "sent with Bearer [redacted]"),
    ("basic dXNlcjpwYXNzd29yZA==", "basic [redacted]"),
    ("redis://user:s3cr3t@cache:6379/0", "redis://user:[redacted]@cache:6379/0"),
    ("amqp://:pw@rabbit//", "amqp://:[redacted]@rabbit//"),
    ("connect postgresql://app:p%40ss@db/x failed", "connect postgresql://app:[redacted]@db/x failed"),
    ("two: a://u:1@h b://v:2@k", "two: a://u:[redacted]@h b://v:[redacted]@k"),
    ("İstanbul password=Hunter2 x", "İstanbul password=[redacted] x"),  # lower() changes the length
]

KEPT = [
    "proj.tasks.process_order order-12345 for customer alice",
    "Basic settings are fine",
    "bearer of bad news",
    "postgresql://bob@db/x",
    "see https://example.com:8080/path?q=1",
    "ratio 3:4, time 10:30",
    "user@example.com",
    "",
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_secrets_inside_text_are_masked(text: str, masked: str) -> None:
    assert R.text(text) == masked
    assert R.finds_secret(text)


@pytest.mark.parametrize("text", KEPT)
def test_innocent_text_is_kept(text: str) -> None:
    assert R.text(text) == text
    assert not R.finds_secret(text)


def test_user_keys_join_the_text_rule_and_patterns_still_apply() -> None:
    r = Redactor((*DEFAULT_REDACT_KEYS, "iban"), patterns=[r"\b\d{16}\b"])
    assert r.text("iban=DE89370400440532013000 card 4111111111111111") == (f"iban={REDACTED} card {REDACTED}")


def _everywhere(value: Any) -> str:
    return dumps(capture_value(value, R, 4096))


@pytest.mark.parametrize(
    "value",
    [
        ["password=hunter2"],  # the shallow fast path (short ASCII strings)
        ("x", "redis://u:hunter2@h/0"),
        {"note": "token=hunter2"},
        {"nested": [{"deep": "Authorization: Bearer hunter2-0123456789"}]},
        ["password=hunter2 " + "x" * 5000],  # cut to a preview: the preview is masked
        "a" * 10 + " api_key=hunter2",
    ],
)
def test_captured_values_carry_no_secret(value: Any) -> None:
    out = _everywhere(value)
    assert "hunter2" not in out
    assert REDACTED in out


def test_a_repr_is_masked_too() -> None:
    class Client:
        def __repr__(self) -> str:
            return "Client(url='redis://app:hunter2@cache/0')"

    out = capture_value([Client()], R, 4096)
    assert out[0][REPR_KEY] == f"Client(url='redis://app:{REDACTED}@cache/0')"


def test_shallow_hands_a_secret_to_the_converter() -> None:
    assert shallow(["ok", 1], R) == ["ok", 1]
    assert shallow(["password=x"], R) is None
    assert shallow({"note": "token=x"}, R) is None


def test_exception_text_and_traceback_are_masked() -> None:
    tb = 'Traceback:\n  File "x.py", line 1\nValueError: cannot reach redis://app:hunter2@cache/0\n'
    assert "hunter2" not in dumps(capture_text(tb, R, 4096, head_tail=True))
    long_tb = "frame\n" * 2000 + "ConnectionError: password=hunter2 refused"
    assert "hunter2" not in dumps(capture_text(long_tb, R, 4096, head_tail=True))


def test_finisher_masks_every_captured_field() -> None:
    finish = Finisher(CaptureConfig(), R)
    # ``.delay("password=…")``: short plain args take the fast path unless a secret is in them.
    sent = finish.tail(TASK_PUBLISHED, "t.login", (("bob", "password=hunter2"), None, None, None, None))
    assert "hunter2" not in dumps(sent) and "bob" in dumps(sent)
    plain = finish.tail(TASK_PUBLISHED, "t.add", ((1, "two"), None, None, None, None))
    assert plain[0] == [1, "two"]
    kwargs = finish.tail(
        TASK_PUBLISHED,
        "t.connect",
        ((), {"dsn": "redis://u:hunter2@h/0"}, None, "()", "{'dsn': 'redis://u:hunter2@h/0'}"),
    )
    assert "hunter2" not in dumps(kwargs)
    result = finish.tail(TASK_SUCCEEDED, "t.echo", ({"args": ["token=hunter2"]},))
    assert "hunter2" not in dumps(result)
    failed = finish.tail(
        TASK_FAILED,
        "t.fail",
        ("ValueError('Authorization: Bearer hunter2')", "Traceback ...\nValueError: password=hunter2"),
    )
    assert "hunter2" not in dumps(failed) and REDACTED in dumps(failed)
