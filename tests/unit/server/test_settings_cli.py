"""The settings table, its docs, and the `stemtrace server` command's startup checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stemtrace.cli import main
from stemtrace.server.settings import SETTINGS, ServerSettings, SettingsError

ROOT = Path(__file__).parents[3]


def test_durations_use_the_shared_grammar() -> None:
    env = {"STEMTRACE_RETENTION": "2w", "STEMTRACE_FAILURE_RETENTION": "1d12h"}
    s = ServerSettings.build(env=env, expected_heartbeat_interval="500ms")
    assert (s.retention, s.failure_retention, s.expected_heartbeat_interval) == (1209600.0, 129600.0, 0.5)


def test_bad_values_are_all_named_with_what_is_accepted() -> None:
    env = {"STEMTRACE_RETENTION": "a week", "STEMTRACE_PORT": "http", "STEMTRACE_INGEST": "maybe"}
    with pytest.raises(SettingsError) as caught:
        ServerSettings.build(env=env, log_level="loud")
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert any(line.startswith("STEMTRACE_RETENTION='a week': not a duration; use ") for line in lines)
    assert any(line.startswith("STEMTRACE_PORT='http': not a whole number") for line in lines)
    assert any(line.startswith("STEMTRACE_INGEST='maybe': not a boolean") for line in lines)
    assert any(line.startswith("--log-level='loud': not a log level") for line in lines)


def test_the_table_and_the_settings_agree() -> None:
    """Every row is a field of ServerSettings with the same default: one table, no second copy."""
    built = ServerSettings.build(env={})
    assert built == ServerSettings()
    names = [f for f in ServerSettings.__dataclass_fields__ if f != "deprecations"]
    assert names == [s.name for s in SETTINGS]


def test_renamed_settings_still_work_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    env = {"STEMTRACE_BATCH_SIZE": "700", "STEMTRACE_HEARTBEAT_INTERVAL": "1m"}
    with caplog.at_level("WARNING", logger="stemtrace.server"):
        s = ServerSettings.build(env=env)
    assert (s.write_batch_size, s.expected_heartbeat_interval) == (700, 60.0)
    assert s.deprecations == (
        "STEMTRACE_BATCH_SIZE is deprecated: use STEMTRACE_WRITE_BATCH_SIZE",
        "STEMTRACE_HEARTBEAT_INTERVAL is deprecated: use STEMTRACE_EXPECTED_HEARTBEAT_INTERVAL",
    )
    assert [r.getMessage() for r in caplog.records] == [f"stemtrace: {d}" for d in s.deprecations]
    new_wins = ServerSettings.build(env={**env, "STEMTRACE_WRITE_BATCH_SIZE": "900"})
    assert new_wins.write_batch_size == 900


def test_a_bad_variable_stops_the_server_with_one_line_and_status_2(tmp_path: Path) -> None:
    """A real process: no traceback, the variable named, exit status 2."""
    env = {**os.environ, "STEMTRACE_RETENTION": "2 weeks", "STEMTRACE_AUTH_PASSWORD": "hunter2x"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stemtrace.cli",
            "server",
            "--store",
            f"sqlite:///{tmp_path}/s.db",
            "--port",
            "x",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "stemtrace: --port='x': not a whole number"
    assert lines[1].startswith("stemtrace: STEMTRACE_RETENTION='2 weeks': not a duration; use ")
    assert len(lines) == 2


def test_renamed_flags_are_hidden_but_accepted(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        ["server", "--host", "0.0.0.0", "--store", f"sqlite:///{tmp_path}/x.db", "--batch-size", "10"],
    )
    assert r.exit_code == 2 and "without authentication" in r.output  # got past the settings
    assert "--batch-size" not in CliRunner().invoke(main, ["server", "--help"]).output


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
