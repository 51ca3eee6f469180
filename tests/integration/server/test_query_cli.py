"""``stemtrace tasks|show|workflow|tail`` against a real ``stemtrace server`` fed by a real worker.

The commands are run as users run them (a subprocess of the installed CLI), read the server only
over HTTP, and are checked on what they print, in text and in ``--json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from server_harness import ServerProcess, cleanup_source, wait_for
from test_real_workers import Running, events_source, run_canvases
from tests.support import AppSettings
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.integration

TOKEN = "query-cli-token-0123456789"


def cli(*args: str, server: ServerProcess, token: str | None = TOKEN, check: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_")}
    if token:
        env["STEMTRACE_API_TOKEN"] = token
    proc = subprocess.run(
        [sys.executable, "-m", "stemtrace.cli", *args, "--server", server.base],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def served(tmp_path: Any, redis_url: str) -> Iterator[tuple[ServerProcess, Running, dict[str, str]]]:
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = events_source(settings)
    server = ServerProcess(
        "--store", f"sqlite:///{tmp_path / 'cli.db'}", "--events-url", source.url,
        "--events-name", source.name, "--auth-tokens", TOKEN,
    )  # fmt: skip
    try:
        with Running(settings) as running:
            assert running.tasks is not None
            server.start()
            ids = run_canvases(running.tasks)
            running.flush()
            yield server, running, ids
    finally:
        server.stop()
        cleanup_source(source)


def test_tasks_show_and_workflow_print_what_the_api_holds(
    served: tuple[ServerProcess, Running, dict[str, str]],
) -> None:
    server, _, ids = served

    def failed_listed() -> bool:
        out = cli("tasks", "--state", "FAILURE", "--json", server=server).stdout
        return ids["fail"] in {t["id"] for t in json.loads(out)["items"]}

    wait_for(failed_listed, timeout=60)

    def callback_done() -> bool:
        shown = json.loads(cli("show", ids["chord_body"], "--json", server=server).stdout)
        return bool(shown["task"]["state"] == "SUCCESS")

    wait_for(callback_done, timeout=60)

    table = cli("tasks", "--name", "t.fail", server=server).stdout.splitlines()
    assert table[0].split()[:3] == ["STATE", "NAME", "ID"]
    assert any(ids["fail"] in line and line.startswith("FAILURE") for line in table[1:]), table

    shown = cli("show", ids["fail"], server=server).stdout
    assert shown.splitlines()[0] == "t.fail  FAILURE"
    assert "ValueError" in shown and "boom" in shown
    assert "traceback (attempt 1)" in shown
    assert "queued " in shown and "ran " in shown  # the waits of the attempt

    flaky = cli("show", ids["flaky"], server=server).stdout
    assert "#1 RETRY" in flaky and "#2 SUCCESS" in flaky

    tree = cli("workflow", ids["chord_body"], server=server).stdout.splitlines()
    assert tree[0].split()[1] == "SUCCESS"
    chord_line = next(i for i, line in enumerate(tree) if line.strip().startswith("chord x3"))
    assert "3 SUCCESS" in tree[chord_line]
    members = tree[chord_line + 1 : chord_line + 4]
    assert all(line.strip().startswith("• t.add  SUCCESS") for line in members), tree
    assert tree[chord_line + 4].strip().startswith("then t.tsum  SUCCESS  " + ids["chord_body"]), tree

    chain = cli("workflow", ids["chain_tail"], server=server).stdout
    head = chain.index(ids["chain_head"])
    assert head < chain.index(ids["chain_tail"])  # the chain's steps in order

    as_json = json.loads(cli("workflow", ids["chord_body"], "--json", server=server).stdout)
    assert as_json["state"] == "SUCCESS" and len(as_json["nodes"]) >= 4


def test_auth_is_honoured_and_errors_are_plain(served: tuple[ServerProcess, Running, dict[str, str]]) -> None:
    server, _, _ = served
    refused = cli("tasks", server=server, token=None, check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("stemtrace: 401") and "Traceback" not in refused.stderr
    missing = cli("show", "no-such-task-id", server=server, check=False)
    assert missing.returncode == 1 and "404" in missing.stderr
    gone = subprocess.run(
        [sys.executable, "-m", "stemtrace.cli", "tasks", "--server", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert gone.returncode == 1 and "cannot reach the stemtrace server" in gone.stderr


def test_tail_prints_tasks_as_they_change(served: tuple[ServerProcess, Running, dict[str, str]]) -> None:
    server, running, _ = served
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_")}
    env["STEMTRACE_API_TOKEN"] = TOKEN
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stemtrace.cli", "tail", "--name", "t.add", "--state", "SUCCESS",
         "--server", server.base],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        time.sleep(1.5)  # the stream is open before the task is sent
        assert running.tasks is not None
        result = running.tasks.add.delay(20, 22)
        assert wait_result(result, 30) == 42
        running.flush()
        wait_for(lambda: any(result.id in line for line in lines), timeout=30)
        line = next(line for line in lines if result.id in line)
        assert "SUCCESS" in line and "t.add" in line
        assert all("t.add" in line and "SUCCESS" in line for line in lines)  # the filters hold
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_filtered_task_list_exports_as_csv(served: tuple[ServerProcess, Running, dict[str, str]]) -> None:
    import csv
    import io
    import urllib.request

    server, _, ids = served

    def get(path: str) -> tuple[str, str]:
        request = urllib.request.Request(server.base + path, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.headers["Content-Disposition"], resp.read().decode()

    def failures_exported() -> bool:
        return ids["fail"] in get("/api/tasks.csv?state=FAILURE")[1]

    wait_for(failures_exported, timeout=60)
    disposition, text = get("/api/tasks.csv?state=FAILURE&name=t.fail")
    assert 'filename="stemtrace-tasks_state-FAILURE_name-t.fail_' in disposition and disposition.endswith(
        '.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [ids["fail"]]
    assert rows[0]["state"] == "FAILURE" and rows[0]["exception_type"].endswith("ValueError")

    listed = cli("tasks", "--limit", "1000", "--json", server=server).stdout
    everything = list(csv.DictReader(io.StringIO(get("/api/tasks.csv")[1])))
    assert [r["id"] for r in everything] == [t["id"] for t in json.loads(listed)["items"]]  # same order
    capped = list(csv.DictReader(io.StringIO(get("/api/tasks.csv?max_rows=3")[1])))
    assert [r["id"] for r in capped] == [r["id"] for r in everything[:3]]
