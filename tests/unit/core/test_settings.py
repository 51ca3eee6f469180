"""The one settings mechanism: grammars, precedence, errors naming their source, renamed names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stemtrace.core.settings import (
    Setting,
    SettingError,
    format_duration,
    parse_bool,
    parse_duration,
    resolve,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604800),
        ("2w", 1209600),
        ("90", 90),
        ("0.25", 0.25),
        ("1.5h", 5400),
        ("1h30m", 5400),
        ("1d12h", 129600),
        ("2m30s", 150),
        ("1s500ms", 1.5),
        (" 1h 30m ", 5400),
        ("0", 0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "a week",
        "-5s",
        "7D",
        "5M",
        "30m1h",
        "1h1h",
        "1h30",
        "h",
        "ms",
        "1e3",
        "inf",
        "nan",
        "5 minutes",
    ],
)
def test_not_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"500ms, 30s, 5m, 2h, 7d, 2w"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from([0.001, 1, 60, 3600, 86400]))
def test_format_duration_reads_back(count: int, unit: float) -> None:
    seconds = count * unit
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_format_duration_is_short() -> None:
    assert [format_duration(s) for s in (604800, 1209600, 30, 0.2, 5400, 1.5)] == [
        "7d",
        "14d",
        "30s",
        "200ms",
        "90m",
        "1.5s",
    ]


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("ON", True), ("yes", True), ("0", False), ("off", False)]
)
def test_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_a_boolean_is_not_guessed() -> None:
    with pytest.raises(ValueError, match="true/false"):
        parse_bool("maybe")


TABLE = (
    Setting("ttl", "duration", "7d", "how long", renamed_from=("retention",), minimum=1),
    Setting("size", "int", 10, "how many", minimum=1),
    Setting("tags", "list", (), "which"),
    Setting("on", "bool", True, "whether"),
    Setting("token", "str", None, "secret", secret=True),
    Setting("hook", "callable", None, "code only"),
)


def _resolve(given: dict[str, Any], env: dict[str, str], *, env_wins: bool = True) -> Any:
    return resolve(TABLE, given, env, environment_wins=env_wins, given_label=lambda n: f"option {n!r}")


def test_defaults_are_typed() -> None:
    found = _resolve({}, {})
    assert found.values == {"ttl": 604800.0, "size": 10, "tags": (), "on": True, "token": None, "hook": None}
    assert not found.errors and not found.deprecations and not found.explicit


def test_precedence_either_way() -> None:
    env = {"STEMTRACE_SIZE": "3"}
    assert _resolve({"size": 5}, env).values["size"] == 3
    assert _resolve({"size": 5}, env, env_wins=False).values["size"] == 5
    assert _resolve({"size": 5}, env).explicit == {"size"}


def test_an_empty_variable_is_unset() -> None:
    assert _resolve({}, {"STEMTRACE_SIZE": "  ", "STEMTRACE_ON": ""}).values["size"] == 10


def test_a_bad_value_names_its_source_and_the_next_source_is_used() -> None:
    found = _resolve({"size": 4}, {"STEMTRACE_SIZE": "many", "STEMTRACE_TTL": "2 weeks"})
    assert found.values["size"] == 4 and found.values["ttl"] == 604800.0
    messages = sorted(str(e) for e in found.errors)
    assert messages[0].startswith("STEMTRACE_SIZE='many': not a whole number")
    assert messages[1].startswith("STEMTRACE_TTL='2 weeks': not a duration; use ")


def test_minimum_type_and_unknown_option_errors() -> None:
    found = _resolve({"size": 0, "ttl": True, "colour": "red", "hook": "not callable"}, {})
    by_source = {e.source: str(e) for e in found.errors}
    assert "below the minimum 1" in by_source["option 'size'"]
    assert "not a duration" in by_source["option 'ttl'"] or "is not" in by_source["option 'ttl'"]
    assert by_source["option 'colour'"] == "option 'colour'='red': unknown option"
    assert "a function" in by_source["option 'hook'"]


def test_a_secret_value_is_never_shown() -> None:
    found = _resolve({}, {"STEMTRACE_TOKEN": "hunter2"})
    assert found.values["token"] == "hunter2"
    err = SettingError("STEMTRACE_TOKEN", "hunter2", TABLE[4], "bad")
    assert "hunter2" not in str(err)


def test_renamed_names_still_work_and_are_reported() -> None:
    found = _resolve({"retention": "2w"}, {})
    assert found.values["ttl"] == 1209600.0
    assert found.deprecations == ["option 'retention' is deprecated: use option 'ttl'"]
    found = _resolve({}, {"STEMTRACE_RETENTION": "1h", "STEMTRACE_TTL": "2h"})
    assert found.values["ttl"] == 7200.0  # the new name wins over the old
    assert found.deprecations == ["STEMTRACE_RETENTION is deprecated: use STEMTRACE_TTL"]


def test_code_values_in_their_own_types() -> None:
    found = _resolve({"ttl": 90, "tags": "one,two", "on": 0, "hook": print}, {"STEMTRACE_TAGS": ""})
    assert found.values["ttl"] == 90.0
    assert found.values["tags"] == ("one,two",)  # in code a string is one item
    assert found.values["on"] is False and found.values["hook"] is print
    assert _resolve({}, {"STEMTRACE_TAGS": "a, b,,c"}).values["tags"] == ("a", "b", "c")
