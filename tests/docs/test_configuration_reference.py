"""docs/configuration.md lists every environment variable of both settings tables, and no other.

The tables (``stemtrace.capture.config.SETTINGS`` and ``stemtrace.server.settings.SETTINGS``) drive
option parsing; this test makes the overview page drift-proof. The per-half pages
(configuration-library.md, configuration-server.md) have their own tests next to their tables.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stemtrace.capture import config as library
from stemtrace.server import settings as server
from stemtrace.server.cli import CLI_EXCLUDED

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _rows() -> dict[str, list[str]]:
    """``STEMTRACE_X`` -> the table row's cells, from the 'Every environment variable' table."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(STEMTRACE_[A-Z0-9_]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in match.group(2).split("|")]
    return rows


def _library_envs() -> dict[str, str]:
    return {s.env: s.name for s in library.SETTINGS if s.env}


def _server_envs() -> dict[str, str]:
    """Variable -> what the docs' server column shows: the flag, or that there is none."""
    return {s.env: "(environment only)" if s.name in CLI_EXCLUDED else f"`{s.flag}`" for s in server.SETTINGS}


def test_the_table_was_found() -> None:
    assert len(_rows()) >= 20


@pytest.mark.parametrize("env", sorted(_library_envs()))
def test_every_library_variable_is_listed_with_its_option(env: str) -> None:
    row = _rows().get(env)
    assert row is not None, f"{env} is missing from docs/configuration.md"
    assert row[0] == f"`{_library_envs()[env]}`", f"{env}: library column says {row[0]}"


@pytest.mark.parametrize("env", sorted(_server_envs()))
def test_every_server_variable_is_listed_with_its_flag(env: str) -> None:
    row = _rows().get(env)
    assert row is not None, f"{env} is missing from docs/configuration.md"
    assert row[1] == _server_envs()[env], f"{env}: server column says {row[1]}"


def test_no_variable_is_listed_that_the_code_does_not_read() -> None:
    known = set(_library_envs()) | set(_server_envs())
    stale = sorted(set(_rows()) - known)
    assert not stale, f"docs/configuration.md lists variables no setting reads: {stale}"


def test_columns_say_dash_where_a_half_does_not_read_the_variable() -> None:
    for env, row in _rows().items():
        if env not in _library_envs():
            assert row[0] == "—", env
        if env not in _server_envs():
            assert row[1] == "—", env


def test_names_read_by_both_halves_are_called_out() -> None:
    shared = set(_library_envs()) & set(_server_envs())
    text = DOC.read_text(encoding="utf-8")
    warning = text[text.index('!!! warning "') :]
    warning = warning[: warning.index("\n\n## ")]
    mentioned = set(re.findall(r"`(STEMTRACE_[A-Z0-9_]+)`", warning))
    assert mentioned == shared


def test_library_options_without_a_variable_are_named() -> None:
    text = DOC.read_text(encoding="utf-8")
    for setting in library.SETTINGS:
        if setting.env is None:
            assert f"`{setting.name}`" in text, f"say that {setting.name} has no environment variable"
