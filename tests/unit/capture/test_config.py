"""One settings table: options, environment overrides and the docs agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stemtrace.capture.config import SETTINGS, load, parse_duration

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration-library.md"


def test_environment_wins_over_code() -> None:
    env = {"STEMTRACE_CAPTURE_ARGS": "false", "STEMTRACE_MAX_FIELD_BYTES": "100", "STEMTRACE_RETENTION": "2h"}
    cfg = load({"capture_args": True, "max_field_bytes": 5000}, env)
    assert cfg.capture_args is False
    assert cfg.max_field_bytes == 100
    assert cfg.retention == 7200.0


def test_code_values_and_defaults() -> None:
    cfg = load({"redact_keys": ["pin"], "redact_args": {"t.login": [1]}, "url": "inproc://x"}, {})
    assert "pin" in cfg.all_redact_keys and "password" in cfg.all_redact_keys
    assert cfg.redact_args == {"t.login": (1,)}
    assert cfg.url == "inproc://x"
    assert cfg.retention == 7 * 24 * 3600


def test_list_and_json_env_values() -> None:
    env = {"STEMTRACE_REDACT_KEYS": "pin, otp", "STEMTRACE_REDACT_ARGS": '{"t.x": [0, 2]}'}
    cfg = load({}, env)
    assert cfg.redact_keys == ("pin", "otp")
    assert cfg.redact_args == {"t.x": (0, 2)}


def test_unknown_option_and_bad_values_are_rejected() -> None:
    with pytest.raises(TypeError, match="capture_argz"):
        load({"capture_argz": True}, {})
    with pytest.raises(ValueError):
        load({}, {"STEMTRACE_ENABLED": "maybe"})
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_docs_list_every_setting_and_its_env_var() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", text, re.M)}
    assert set(rows) == {s.name for s in SETTINGS}
    for setting in SETTINGS:
        if setting.env:
            assert f"`{setting.env}`" in rows[setting.name]
