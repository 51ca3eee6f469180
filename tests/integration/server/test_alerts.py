"""Alerts end to end: a real worker fails tasks, two ``stemtrace server`` replicas share one store
and one alerts file, and a real local HTTP receiver (webhook, Slack format) and a real local SMTP
server (aiosmtpd) count what arrives: exactly one message per incident, with a working link."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from server_harness import ServerProcess, cleanup_source, free_port, wait_for
from test_real_workers import Running, events_source
from tests.support import AppSettings
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.integration
SECRET = "webhook-secret"
PUBLIC = "https://stemtrace.example.test"


class Receiver:
    """A local HTTP server that records every POST (path, headers, body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path: str) -> list[dict[str, Any]]:
        return [{"headers": h, "body": b, "json": json.loads(b)} for p, h, b in self.posts if p == path]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Mailbox, int]]:
    receiver, mailbox = Receiver(), Mailbox()
    port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        yield receiver, mailbox, port
    finally:
        smtp.stop()
        receiver.server.shutdown()


def alerts_file(tmp_path: Path, receiver: Receiver, smtp_port: int) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(f"""
interval = "1s"

[[channels]]
name = "hook"
type = "webhook"
url = "{receiver.url}/hook"
secret = "{SECRET}"

[[channels]]
name = "slack"
type = "slack"
url = "{receiver.url}/slack"

[[channels]]
name = "mail"
type = "email"
smtp = "smtp://127.0.0.1:{smtp_port}"
from = "stemtrace@example.test"
to = ["oncall@example.test"]

[[rules]]
kind = "failure_group_new"
channels = ["hook", "slack", "mail"]

[[rules]]
kind = "workflow_failed"
name = "t.fail"
channels = ["hook"]
""")
    return path


def test_one_message_per_incident_from_two_replicas_with_working_links(
    tmp_path: Path, redis_url: str, receivers: tuple[Receiver, Mailbox, int]
) -> None:
    receiver, mailbox, smtp_port = receivers
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = events_source(settings)
    config = alerts_file(tmp_path, receiver, smtp_port)
    store = f"sqlite:///{tmp_path / 'alerts.db'}"
    common = ["--store", store, "--alerts", str(config), "--public-url", PUBLIC]
    first = ServerProcess(*common, "--events-url", source.url, "--events-name", source.name)
    second = ServerProcess(*common, "--no-ingest")
    try:
        with Running(settings) as running:
            assert running.tasks is not None
            first.start()
            second.start()
            time.sleep(1.5)  # both alerters armed before the incidents happen
            failed = [running.tasks.fail.delay(f"boom {i}") for i in range(3)]
            for result in failed:
                with pytest.raises(ValueError):
                    wait_result(result, 30)
            ok = running.tasks.add.delay(1, 2)
            assert wait_result(ok, 30) == 3
            running.flush()

            def all_arrived() -> bool:
                hooks = receiver.on("/hook")
                kinds = sorted(h["json"]["rule"] for h in hooks)
                return (
                    kinds.count("workflow_failed") >= 1
                    and "failure_group_new" in kinds
                    and len(mailbox.messages) >= 1
                )

            wait_for(all_arrived, timeout=60)
            time.sleep(4)  # several more evaluations on both replicas: nothing is sent again

        hooks = receiver.on("/hook")
        new_groups = [h for h in hooks if h["json"]["rule"] == "failure_group_new"]
        assert len(new_groups) == 1, [h["json"] for h in hooks]
        incident = new_groups[0]["json"]["incidents"][0]
        assert incident["name"] == "t.fail" and incident["exception_type"] == "builtins.ValueError"
        assert (
            incident["url"] == f"{PUBLIC}/tasks?state=FAILURE&name=t.fail&exception_type=builtins.ValueError"
        )
        # the link's path and query are the UI route and filters the Tasks page reads: the API agrees
        listed = first.get("/api/tasks", state="FAILURE", name="t.fail", exception_type="builtins.ValueError")
        assert {t["id"] for t in listed["items"]} == {r.id for r in failed}

        headers, body = new_groups[0]["headers"], new_groups[0]["body"]
        stamp = headers["X-Stemtrace-Timestamp"]
        expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["X-Stemtrace-Signature"] == f"sha256={expected}"

        # three failed single-task workflows: three incidents, each sent once, never the success
        workflows = [h for h in hooks if h["json"]["rule"] == "workflow_failed"]
        sent = [i["workflow_id"] for h in workflows for i in h["json"]["incidents"]]
        assert sorted(sent) == sorted({r.id for r in failed}), sent

        slack = receiver.on("/slack")
        assert len(slack) == 1 and "t.fail" in slack[0]["json"]["text"]
        assert f"<{PUBLIC}/tasks?" in slack[0]["json"]["blocks"][0]["text"]["text"]

        assert len(mailbox.messages) == 1
        mail = mailbox.messages[0]
        assert mail["To"] == "oncall@example.test" and "t.fail" in mail["Subject"]
        assert f"{PUBLIC}/tasks?state=FAILURE&name=t.fail" in mail.get_payload(decode=True).decode()
    finally:
        second.stop()
        first.stop()
        cleanup_source(source)


def test_a_bad_alerts_file_stops_the_server_naming_each_problem(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "alerts.toml"
    bad.write_text(
        '[[channels]]\nname = "x"\ntype = "pager"\n\n[[rules]]\nkind = "failure"\nchannels = ["y"]\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "stemtrace.cli", "server", "--store", f"sqlite:///{tmp_path}/s.db",
         "--no-ingest", "--alerts", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--alerts" in proc.stderr
    assert "channels[0].type: 'pager' is not one of webhook, slack, email" in proc.stderr
    assert "rules[0].kind: 'failure' is not one of" in proc.stderr
    assert "rules[0].channels: no channel named 'y'" in proc.stderr
    assert "Traceback" not in proc.stderr
