"""Celery beat end to end: a real ``celery beat`` (instrumented by ``stemtrace.init`` like the
worker) sends two schedule entries to a real worker on Redis; beat is stopped for a while and
started again. Checked through the HTTP API of a real ``stemtrace server`` and a real local
webhook receiver: runs grouped by entry, outcomes as the worker's, the missed runs found, and
the ``beat_missed`` alert sent once for the stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from server_harness import ServerProcess, cleanup_source, wait_for
from test_alerts import Receiver
from test_real_workers import events_source
from tests.support import AppSettings, WorkerProcess, make_app
from tests.support.app import SETTINGS_ENV
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
SCHEDULE = {
    "every-second": {"task": "t.add", "schedule": 1.0, "args": [2, 3]},
    "every-two-seconds": {"task": "t.fail", "schedule": 2.0, "args": ["beat boom"]},
}
STOPPED_S = 8.0


class BeatProcess:
    """``celery -A tests.support.worker_app beat`` for one :class:`AppSettings`."""

    def __init__(self, settings: AppSettings, schedule_file: Path) -> None:
        self.settings = settings
        self.schedule_file = schedule_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = tempfile.NamedTemporaryFile(prefix="st-beat-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> BeatProcess:
        env = dict(os.environ)
        paths = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
        env.update(
            {SETTINGS_ENV: self.settings.to_env(), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.support.worker_app", "beat",
             "-s", str(self.schedule_file), "--max-interval", "1", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=self.logfile, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: "Sending due task" in self.log(), timeout=30)
        return self

    def log(self) -> str:
        return Path(self.logfile.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # beat flushes stemtrace's buffer at exit
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


def _ts(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


def test_beat_runs_grouped_by_entry_with_missed_runs_and_one_alert(tmp_path: Path, redis_url: str) -> None:
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url, conf={"beat_schedule": SCHEDULE})
    source = events_source(settings)
    receiver = Receiver()
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(
        f'interval = "1s"\n\n[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}/hook"\n\n'
        '[[rules]]\nkind = "beat_missed"\nchannels = ["hook"]\n'
    )
    server = ServerProcess(
        "--store", f"sqlite:///{tmp_path / 'beat.db'}", "--events-url", source.url,
        "--events-name", source.name, "--alerts", str(alerts),
    )  # fmt: skip
    worker = WorkerProcess(settings)
    beat = BeatProcess(settings, tmp_path / "schedule")
    try:
        server.start()
        worker.start()
        beat.start()
        time.sleep(7)
        beat.stop()
        stopped_at = time.time()
        time.sleep(STOPPED_S)
        resumed_at = time.time()
        beat.start()

        def resumed() -> bool:
            entries = {e["entry"]: e for e in server.get("/api/beat")["items"]}
            every = entries.get("every-second")
            return every is not None and _ts(every["last_run"]["sent_at"]) > resumed_at + 3

        wait_for(resumed, timeout=60)
        wait_for(lambda: any(h["json"]["rule"] == "beat_missed" for h in receiver.on("/hook")), timeout=30)
        time.sleep(3)  # more evaluations while beat runs again: nothing is sent twice

        incidents = [i for h in receiver.on("/hook") for i in h["json"]["incidents"]]
        beat.stop()  # the last runs finish: their outcomes are final
        time.sleep(3)

        listed = server.get("/api/beat")
        entries = {e["entry"]: e for e in listed["items"]}
        assert set(SCHEDULE) <= set(entries), listed
        # SIGTERM can land between a publish and its after_task_publish signal: that run's only
        # event is the worker's receipt, whose Celery 5.7 mark groups it under the task's name.
        for name in set(entries) - set(SCHEDULE):
            assert name in ("t.add", "t.fail") and entries[name]["runs"] <= 2, entries[name]
        every, other = entries["every-second"], entries["every-two-seconds"]
        assert every["task_name"] == "t.add" and other["task_name"] == "t.fail"
        assert 0.7 <= every["interval_s"] <= 1.5, every
        assert 1.5 <= other["interval_s"] <= 2.5, other
        assert every["runs"] >= 10 and other["runs"] >= 5

        # the last outcome is the worker's: every-second adds, every-two-seconds fails
        client = make_app(settings, init=False)
        last = client.app.AsyncResult(every["last_run"]["task_id"])
        assert every["last_run"]["state"] == "SUCCESS" == last.state and last.result == 5
        last = client.app.AsyncResult(other["last_run"]["task_id"])
        assert other["last_run"]["state"] == "FAILURE" == last.state
        assert other["last_run"]["exception_type"] == "builtins.ValueError"
        runs = server.get("/api/beat/every-second", limit=1000)["runs"]
        assert len(runs) >= every["runs"] and all(r["name"] == "t.add" for r in runs)
        assert {r["state"] for r in runs} == {"SUCCESS"}

        # the stop is a missed gap for both entries: it spans the time beat was down
        for entry in (every, other):
            gaps = [
                m for m in entry["missed"] if m["before"] is not None and _ts(m["after"]) <= stopped_at + 0.5
            ]
            stop_gaps = [m for m in gaps if _ts(m["before"]) >= resumed_at - 0.5]
            assert len(stop_gaps) == 1, entry["missed"]
            assert stop_gaps[0]["missed"] >= 2

        # every run is in the task list's beat filter too, and nothing else is
        page = server.get("/api/tasks", beat="every-second", limit=1000)
        assert {t["id"] for t in page["items"]} == {r["task_id"] for r in runs}

        # one alert per entry for the stop, each with the entry's page
        stop = [i for i in incidents if stopped_at - 3 <= i["at"] <= resumed_at]
        assert sorted(i["entry"] for i in stop) == ["every-second", "every-two-seconds"], incidents
        assert all(i["url"].startswith("/beat?entry=") for i in stop)
    finally:
        beat.stop()
        worker.stop()
        server.stop()
        cleanup_source(source)
        receiver.server.shutdown()


def test_a_beat_mark_in_the_message_is_read_by_the_worker(tmp_path: Path, redis_url: str) -> None:
    """Without stemtrace in beat the worker reads the message's marks: django-celery-beat's
    ``periodic_task_name`` names the entry; Celery 5.7's ``celery_beat_task`` only marks it (the
    task's name stands for the entry). An uninstrumented client sends them, as such a beat would."""
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = events_source(settings)
    server = ServerProcess(
        "--store", f"sqlite:///{tmp_path / 'mark.db'}",
        "--events-url", source.url, "--events-name", source.name,
    )  # fmt: skip
    client = make_app(settings, init=False)
    try:
        server.start()
        with WorkerProcess(settings):
            named = client.add.apply_async((1, 1), headers={"periodic_task_name": "nightly-add"})
            marked = client.add.apply_async((2, 2), headers={"celery_beat_task": True})
            plain = client.add.delay(3, 3)
            for result in (named, marked, plain):
                wait_result(result, 30)

            def seen() -> Any:
                return {e["entry"]: e for e in server.get("/api/beat")["items"]}

            wait_for(lambda: {"nightly-add", "t.add"} <= set(seen()), timeout=30)
        entries = seen()
        assert set(entries) == {"nightly-add", "t.add"}
        assert entries["nightly-add"]["last_run"]["task_id"] == named.id
        assert entries["t.add"]["last_run"]["task_id"] == marked.id
        assert entries["t.add"]["interval_s"] is None  # one run: no interval observed, nothing missed
        assert server.get(f"/api/tasks/{named.id}")["beat_entry"] == "nightly-add"
        # the terminal's task list takes the same filter
        cli = subprocess.run(
            [sys.executable, "-m", "stemtrace.cli", "tasks", "--beat", "nightly-add",
             "--server", server.base, "--json"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert [t["id"] for t in json.loads(cli.stdout)["items"]] == [named.id]
        assert server.get(f"/api/tasks/{plain.id}")["beat_entry"] is None
    finally:
        server.stop()
        cleanup_source(source)
