"""The settings table, its docs, and the `stemtrace server` command's startup checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stemtrace.cli import main
from stemtrace.server.settings import SETTINGS, ServerSettings, markdown_table, parse_duration

ROOT = Path(__file__).parents[3]


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("12h", 43200), ("30m", 1800), ("90s", 90), ("15", 15)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="7d"):
        parse_duration("a week")


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration-server.md").read_text()
    start, end = doc.index("<!-- settings-table:start -->"), doc.index("<!-- settings-table:end -->")
    assert doc[start:end].split("-->", 1)[1].strip() == markdown_table().strip()
    for s in SETTINGS:
        assert s.env in doc


def test_environment_and_explicit_values() -> None:
    env = {"STEMTRACE_PORT": "8001", "STEMTRACE_RETENTION": "2d", "STEMTRACE_AUTH_TOKENS": "a, b"}
    s = ServerSettings.build(env=env, port=9000)
    assert (s.port, s.retention, s.auth_tokens) == (9000, 172800.0, ("a", "b"))
    assert ServerSettings.build(env={}).port == 7373
    assert ServerSettings.build(env={}).store_url.endswith("/stemtrace.db")


def test_version_and_help() -> None:
    runner = CliRunner()
    assert "stemtrace" in runner.invoke(main, ["--version"]).output
    out = runner.invoke(main, ["server", "--help"]).output
    for s in SETTINGS:
        if s.name != "auth_password":
            assert s.flag in out


def test_refuses_a_public_host_without_auth(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["server", "--host", "0.0.0.0", "--store", f"sqlite:///{tmp_path}/x.db"]
    )
    assert result.exit_code == 2
    assert "without authentication" in result.output


def test_unreachable_store_and_broker_give_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["server", "--store", "postgresql://u:hunter2@127.0.0.1:1/db", "--broker", "redis://x"]
    )
    assert r.exit_code == 2 and "hunter2" not in r.output
    assert "cannot connect to PostgreSQL store postgresql://u:**@127.0.0.1:1/db" in r.output
    r = CliRunner().invoke(
        main,
        ["server", "--store", f"sqlite:///{tmp_path}/s.db", "--broker", "redis://:hunter2@127.0.0.1:1/0"],
    )
    assert r.exit_code == 2 and "hunter2" not in r.output
    assert "cannot reach the event broker redis://:**@127.0.0.1:1/0" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_cli_import_does_not_load_the_server_extra() -> None:
    code = "import sys, stemtrace.cli; print(sorted(m for m in ('fastapi','uvicorn','psycopg','pydantic') if m in sys.modules))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
