"""The library's settings: the environment wins over code, and configuration never raises.

A bad value is one warning naming its variable or option and what it accepts, then a fallback;
a bad privacy option (or an unknown one) turns capture off instead of guessing.
"""

from __future__ import annotations

import logging

import pytest
from celery import Celery

import stemtrace
from stemtrace.capture import install as _install
from stemtrace.capture import state as _state
from stemtrace.capture.config import PRIVACY, SETTINGS, CaptureConfig, load


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "stemtrace.capture" and r.levelno == logging.WARNING
    ]


def test_environment_wins_over_code() -> None:
    env = {
        "STEMTRACE_CAPTURE_ARGS": "false",
        "STEMTRACE_MAX_FIELD_BYTES": "100",
        "STEMTRACE_EVENTS_RETENTION": "2h",
    }
    cfg = load({"capture_args": True, "max_field_bytes": 5000}, env)
    assert cfg.capture_args is False
    assert cfg.max_field_bytes == 100
    assert cfg.events_retention == 7200.0


def test_code_values_and_defaults() -> None:
    cfg = load({"redact_keys": ["pin"], "redact_args": {"t.login": [1]}, "url": "inproc://x"}, {})
    assert "pin" in cfg.all_redact_keys and "password" in cfg.all_redact_keys
    assert cfg.redact_args == {"t.login": (1,)}
    assert cfg.url == "inproc://x"
    assert cfg.events_retention == 7 * 24 * 3600
    assert cfg.enabled is None  # nobody said: on, unless the app runs eagerly


def test_the_table_and_the_config_agree() -> None:
    """Every row is a field of CaptureConfig, with the same default (one table, no second copy)."""
    assert load({}, {}) == CaptureConfig()
    assert [s.name for s in SETTINGS] == list(CaptureConfig.__dataclass_fields__)
    assert {s.name for s in SETTINGS} >= PRIVACY


def test_list_and_json_env_values() -> None:
    env = {"STEMTRACE_REDACT_KEYS": "pin, otp", "STEMTRACE_REDACT_ARGS": '{"t.x": [0, 2]}'}
    cfg = load({}, env)
    assert cfg.redact_keys == ("pin", "otp")
    assert cfg.redact_args == {"t.x": (0, 2)}


def test_every_duration_of_the_shared_grammar(caplog: pytest.LogCaptureFixture) -> None:
    """The value that used to raise in the user's process (issue: STEMTRACE_RETENTION=2w)."""
    env = {
        "STEMTRACE_EVENTS_RETENTION": "2w",
        "STEMTRACE_FLUSH_INTERVAL": "500ms",
        "STEMTRACE_HEARTBEAT_INTERVAL": "1m30s",
    }
    with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
        cfg = load({"connect_timeout": "5s", "health_interval": 45}, env)
    assert (cfg.events_retention, cfg.flush_interval, cfg.heartbeat_interval) == (1209600.0, 0.5, 90.0)
    assert (cfg.connect_timeout, cfg.health_interval) == (5.0, 45.0)
    assert _warnings(caplog) == []


def test_a_bad_value_warns_once_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    env = {"STEMTRACE_FLUSH_INTERVAL": "soon", "STEMTRACE_BUFFER_SIZE": "lots", "STEMTRACE_MAX_LENGTH": "0"}
    with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
        cfg = load({"buffer_size": 500}, env)
    assert cfg.flush_interval == 0.2  # the default
    assert cfg.buffer_size == 500  # the code's value, next in line after the bad variable
    assert cfg.max_length == 100_000
    assert cfg.enabled is None  # operational settings never switch capture off
    warnings = sorted(_warnings(caplog))
    assert len(warnings) == 3
    assert warnings[0].startswith("stemtrace: STEMTRACE_BUFFER_SIZE='lots': not a whole number")
    assert warnings[0].endswith("using 500 instead")
    assert "STEMTRACE_FLUSH_INTERVAL='soon': not a duration; use " in warnings[1]
    assert "500ms, 30s, 5m, 2h, 7d, 2w" in warnings[1] and warnings[1].endswith("using 200ms instead")
    assert "STEMTRACE_MAX_LENGTH='0': below the minimum 1" in warnings[2]


@pytest.mark.parametrize(
    ("options", "env", "named"),
    [
        ({}, {"STEMTRACE_ENABLED": "maybe"}, "STEMTRACE_ENABLED"),
        ({}, {"STEMTRACE_CAPTURE_ARGS": "nope"}, "STEMTRACE_CAPTURE_ARGS"),
        ({}, {"STEMTRACE_REDACT_ARGS": "[1, 2]"}, "STEMTRACE_REDACT_ARGS"),
        ({}, {"STEMTRACE_REDACT_PATTERNS": "(unclosed"}, "STEMTRACE_REDACT_PATTERNS"),
        ({"redactor": "not a function"}, {}, "option 'redactor'"),
        ({"redact_keys": ["pin", 7]}, {}, "option 'redact_keys'"),
        ({"capture_argz": False}, {}, "option 'capture_argz'"),
    ],
)
def test_a_bad_privacy_value_turns_capture_off(
    options: dict[str, object], env: dict[str, str], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
        cfg = load(options, env)
    assert cfg.enabled is False
    (warning,) = _warnings(caplog)
    assert named in warning and warning.endswith("capture is off until it is fixed")


def test_an_unknown_option_suggests_the_known_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
        load({"capture_argz": False}, {})
    assert "did you mean 'capture_args'?" in _warnings(caplog)[0]


def test_renamed_option_and_variable_still_work(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
        by_option = load({"retention": "3d"}, {})
        by_variable = load({}, {"STEMTRACE_RETENTION": "2w"})
    assert by_option.events_retention == 3 * 86400.0
    assert by_variable.events_retention == 14 * 86400.0
    assert _warnings(caplog) == [
        "stemtrace: stemtrace.init option 'retention' is deprecated: "
        "use stemtrace.init option 'events_retention'",
        "stemtrace: STEMTRACE_RETENTION is deprecated: use STEMTRACE_EVENTS_RETENTION",
    ]


def test_init_never_raises_because_of_configuration(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The real entry point, with the environment of a shared .env file and a misspelt option."""
    monkeypatch.setenv("STEMTRACE_RETENTION", "2w")  # the server's value, seen by the library
    monkeypatch.setenv("STEMTRACE_BATCH_SIZE", "many")
    app = Celery("config-never-raises", broker="memory://", set_as_current=False)
    try:
        with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
            stemtrace.init(app, flush_interval="nope")
        st = _state.current()
        assert st is not None
        assert st.config.events_retention == 14 * 86400.0
        assert st.config.batch_size == 200 and st.config.flush_interval == 0.2
        assert len(_warnings(caplog)) == 3
        _install.uninstall()
        stemtrace.init(app, capture_argz=False)  # off: nothing is installed, nothing raised
        assert _state.current() is None
    finally:
        _install.uninstall()
