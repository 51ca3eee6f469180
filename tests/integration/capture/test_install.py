"""``stemtrace.init``: idempotent, Django-compatible, any broker, harmless when events can't go out."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.connection import Connection
from tests.support import AppSettings, WorkerProcess, make_app, read_stream
from tests.support.results import wait as wait_result

import stemtrace
import stemtrace.capture.install as capture
from stemtrace.core.wire import decode_batch
from stemtrace.transport import TransportConfig, resolve

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_init_twice_sends_each_event_once(settings: AppSettings) -> None:
    tasks = make_app(settings)
    stemtrace.init(tasks.app)
    stemtrace.init(tasks.app)
    sent = tasks.add.delay(1, 2)
    assert capture.flush(5.0)
    events, _ = read_stream(settings.broker_url, settings.stream_key)
    assert [e["task"]["id"] for e in events if e["type"] == "task.published"] == [sent.id]


def test_disabled_by_environment_connects_nothing(
    settings: AppSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEMTRACE_ENABLED", "false")
    tasks = make_app(settings)
    tasks.add.delay(1, 2)
    assert capture.flush(1.0)
    assert read_stream(settings.broker_url, settings.stream_key)[0] == []


def test_django_settings_namespace(settings: AppSettings, tmp_path: Path) -> None:
    (tmp_path / "proj_settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "test"
            INSTALLED_APPS = []
            CELERY_BROKER_URL = {settings.broker_url!r}
            CELERY_BROKER_TRANSPORT_OPTIONS = {{"global_keyprefix": {settings.prefix!r}}}
            CELERY_TASK_DEFAULT_QUEUE = {settings.queue!r}
            """
        )
    )
    script = textwrap.dedent(
        """
        import os
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj_settings")
        from celery import Celery
        import stemtrace
        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        stemtrace.init(app)  # before django.setup(), as in a project's celery.py
        import django
        django.setup()
        @app.task(name="proj.add")
        def add(x, y):
            return x + y
        print(add.delay(2, 3).id)
        """
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}:{ROOT / 'src'}")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    events, _ = read_stream(settings.broker_url, settings.stream_key)
    published = [e for e in events if e["type"] == "task.published"]
    assert [e["task"]["id"] for e in published] == [out.stdout.strip()]
    assert published[0]["data"]["queue"] == settings.queue


@pytest.fixture
def amqp_settings(amqp_url: str, redis_url: str, unique_name: str) -> Iterator[AppSettings]:
    capture.uninstall(0.5)
    value = AppSettings(broker_url=amqp_url, backend_url=redis_url, options={"name": unique_name})
    yield value
    capture.uninstall(0.5)
    with Connection(amqp_url) as conn:
        for queue in (unique_name, value.queue):
            try:
                conn.default_channel.queue_delete(queue)
            except Exception:
                pass


def test_rabbitmq_zero_config_worker(amqp_settings: AppSettings) -> None:
    tasks = make_app(amqp_settings)
    with WorkerProcess(amqp_settings, "threads"):
        assert wait_result(tasks.add.delay(2, 2), 20) == 4
    capture.flush(5.0)
    config = TransportConfig(url=amqp_settings.broker_url, name=amqp_settings.options["name"])
    consumer = resolve(config).consumer("servers", "one")
    types: list[str] = []
    for _ in range(20):
        got = consumer.poll(100, 0.5)
        if not got:
            break
        for delivery in got:
            types.extend(e.type for e in decode_batch(delivery.payload)[0])
        consumer.ack(got)
    consumer.close()
    for expected in (
        "worker.online",
        "task.published",
        "task.received",
        "task.started",
        "task.succeeded",
        "worker.offline",
    ):
        assert expected in types


@pytest.fixture
def hung_url() -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


@pytest.mark.parametrize("broken", ["refused", "hung"])
def test_tasks_run_when_the_event_broker_is_broken(settings: AppSettings, broken: str, hung_url: str) -> None:
    url = "redis://127.0.0.1:1/0" if broken == "refused" else hung_url
    tuned = dataclasses.replace(settings, options={"url": url, "flush_timeout": 0.5})
    tasks = make_app(tuned)
    with WorkerProcess(tuned, "prefork", concurrency=2) as worker:
        results = [tasks.add.delay(i, 1) for i in range(20)]
        assert [wait_result(r, 20) for r in results] == [i + 1 for i in range(20)]
        code = worker.stop(timeout_s=10)
    assert code == 0  # warm shutdown finished despite the final flush having nowhere to go


def test_worker_heartbeat_lists_running_tasks_and_offline_is_last(settings: AppSettings) -> None:
    tasks = make_app(settings)
    env = {"STEMTRACE_HEARTBEAT_INTERVAL": "0.3", "STEMTRACE_HEALTH_INTERVAL": "0.5"}
    with WorkerProcess(settings, "prefork", concurrency=1, env=env) as worker:
        running = tasks.sleeper.delay(1.5)
        assert wait_result(running, 20) == 1.5
        worker.stop()
    events, _ = read_stream(settings.broker_url, settings.stream_key)
    main = [e for e in events if e["src"]["proc"] == "main"]
    beats = [e for e in main if e["type"] == "worker.heartbeat"]
    assert any(running.id in e["data"]["active"] for e in beats)
    assert beats[-1]["data"]["processed"] >= 1
    assert {e["data"]["interval"] for e in beats} == {0.3}  # the server's offline clock uses it
    offline = [e for e in main if e["type"] == "worker.offline"]
    assert len(offline) == 1 and offline[0]["data"]["hostname"] == worker.nodename
    assert {e["src"]["proc"] for e in events if e["type"] == "library.health"} >= {"main", "child"}
