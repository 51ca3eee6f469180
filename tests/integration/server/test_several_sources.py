"""Two apps on two brokers feeding one server (``--source NAME=URL``), with real workers.

App "orders" runs on Redis (its events in a stream under its own key prefix), app "billing" on
RabbitMQ (its events in a queue of their own). Each worker is a ``celery worker`` subprocess
instrumented by ``stemtrace.init``; the tasks are sent from uninstrumented apps in this process,
so what the server stores comes from the workers' events alone. Every task must carry its
source's name, and ``source=`` must select exactly one app's tasks in the list and the CSV, its
workflows, its statistics and failure groups, its task names and workers; the task metrics
carry a ``source`` label; an alert rule scoped to one source (delivered to a real local HTTP
receiver) hears of that source's failures alone, and a rule for all names the source.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_events import TestClient
from server_harness import cleanup_source, wait_for
from test_alerts import Receiver
from tests.support import AppSettings, WorkerProcess, make_app
from tests.support.results import wait as wait_result

from stemtrace.server import create_app
from stemtrace.server.settings import ServerSettings, SettingsError
from stemtrace.server.source import event_sources
from stemtrace.transport import TransportConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def apps(redis_url: str, amqp_url: str, unique_name: str) -> Iterator[dict[str, AppSettings]]:
    orders = AppSettings(broker_url=redis_url, backend_url=redis_url)
    billing = AppSettings(broker_url=amqp_url, backend_url=redis_url, options={"name": unique_name})
    yield {"orders": orders, "billing": billing}
    cleanup_source(TransportConfig(url=redis_url, name=orders.stream_key))
    cleanup_source(TransportConfig(url=amqp_url, name=unique_name))


def sources(apps: dict[str, AppSettings]) -> list[str]:
    orders, billing = apps["orders"], apps["billing"]
    return [
        f"orders={orders.broker_url}#{orders.stream_key}",
        f"billing={billing.broker_url}#{billing.options['name']}",
    ]


def listed(c: TestClient, **params: Any) -> dict[str, dict[str, Any]]:
    items = c.get("/api/tasks", params={"limit": 1000, **params}).json()["items"]
    return {t["id"]: t for t in items}


def scoped_alerts(tmp_path: Path, receiver: Receiver) -> str:
    path = tmp_path / "alerts.toml"
    path.write_text(f"""
interval = "1s"

[[channels]]
name = "billing-team"
type = "webhook"
url = "{receiver.url}/billing"

[[channels]]
name = "everyone"
type = "webhook"
url = "{receiver.url}/all"

[[rules]]
kind = "failure_group_new"
channels = ["billing-team"]
source = "billing"

[[rules]]
kind = "failure_group_new"
channels = ["everyone"]
""")
    return str(path)


def test_each_task_carries_its_source_and_the_filters_select_by_it(
    apps: dict[str, AppSettings], store_url: str, tmp_path: Path
) -> None:
    sent: dict[str, set[str]] = {"orders": set(), "billing": set()}
    workers = [WorkerProcess(s, "solo") for s in apps.values()]
    for w in workers:
        w.start()
    receiver = Receiver()
    try:
        app = create_app(store_url=store_url, sources=sources(apps), alerts=scoped_alerts(tmp_path, receiver))
        with TestClient(app) as c:
            for label, settings in apps.items():
                kit = make_app(settings, init=False)  # the sender: no events of its own
                results = [kit.add.delay(i, i) for i in range(4)]
                failed = kit.fail.delay(f"{label} broke")
                for r in results:
                    assert wait_result(r, 60) is not None
                with pytest.raises(ValueError, match="broke"):
                    wait_result(failed, 60)
                sent[label] = {r.id for r in results} | {failed.id}

            every = sent["orders"] | sent["billing"]
            wait_for(lambda: every <= set(listed(c)) and all(
                t["state"] in ("SUCCESS", "FAILURE") for t in listed(c).values() if t["id"] in every
            ), timeout=90)  # fmt: skip
            tasks = listed(c)
            for label, ids in sent.items():
                assert {tasks[i]["source"] for i in ids} == {label}
                assert set(listed(c, source=label)) == ids
                failures = listed(c, source=label, state="FAILURE")
                assert len(failures) == 1 and failures.keys() <= ids
            assert listed(c, source="nowhere") == {}

            export = c.get("/api/tasks.csv", params={"source": "billing"})
            assert export.status_code == 200, export.text
            assert "source-billing" in export.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(export.text)))
            assert {r["id"] for r in rows} == sent["billing"]

            health = c.get("/api/health").json()
            assert health["status"] == "ok", health["reasons"]
            by_name = {s["name"]: s for s in health["ingest"]["sources"]}
            assert set(by_name) == {"orders", "billing"}
            assert all(s["status"] == "ok" and s["events"] > 0 for s in by_name.values()), by_name
            assert "guest:guest" not in str(by_name)  # passwords masked

            scoped_reads(c, sent)
            scoped_metrics(c.get("/metrics").text)
            # Alerts: the billing rule hears of billing's failure group only; the rule for all
            # sources is evaluated per source, each message naming its source.
            wait_for(lambda: len(receiver.on("/all")) >= 2, timeout=30)
            time.sleep(2.5)  # two more evaluations: nothing is sent twice
            billing = [i for m in receiver.on("/billing") for i in m["json"]["incidents"]]
            assert [(i["source"], i["name"]) for i in billing] == [("billing", "t.fail")]
            assert "source=billing" in billing[0]["url"]
            titles = sorted(m["json"]["title"] for m in receiver.on("/all"))
            assert [t.split("]")[0] for t in titles] == ["[billing", "[orders"], titles
    finally:
        receiver.server.shutdown()
        for w in workers:
            w.stop()


def scoped_reads(c: TestClient, sent: dict[str, set[str]]) -> None:
    """Workflows, statistics, failure groups, task names and workers, each app's alone."""
    for label, ids in sent.items():
        workflows = c.get("/api/workflows", params={"source": label, "limit": 100}).json()["items"]
        assert {w["id"] for w in workflows} == ids  # each task here is its own workflow
        assert {w["source"] for w in workflows} == {label}
        assert c.get(f"/api/workflows/{next(iter(ids))}").json()["source"] == label
        stats = c.get("/api/stats/tasks", params={"source": label, "since": "0"}).json()["items"]
        assert {s["name"]: (s["total"], s["failed"]) for s in stats} == {"t.add": (4, 0), "t.fail": (1, 1)}
        [group] = c.get("/api/failures", params={"source": label}).json()["items"]
        assert group["name"] == "t.fail" and group["count"] == 1 and group["last_task_id"] in ids
        names = c.get("/api/task-names", params={"source": label}).json()["items"]
        assert names == [{"name": "t.add", "count": 4}, {"name": "t.fail", "count": 1}]
        workers = c.get("/api/workers", params={"source": label}).json()["items"]
        assert len(workers) == 1, workers
    everywhere = c.get("/api/stats/tasks", params={"since": "0"}).json()["items"]
    assert {s["name"]: s["total"] for s in everywhere} == {"t.add": 8, "t.fail": 2}
    assert [g["count"] for g in c.get("/api/failures").json()["items"]] == [2]
    assert len(c.get("/api/workers").json()["items"]) == 2


def scoped_metrics(text: str) -> None:
    """Every task series names its source; the two apps' counts stay apart."""
    for label in ("orders", "billing"):
        assert re.search(
            rf'^celery_task_succeeded_total\{{name="t\.add",queue_name="[^"]+",source="{label}"\}} 4$',
            text,
            re.M,
        ), text
        assert re.search(
            rf'^celery_task_failed_total\{{name="t\.fail",queue_name="[^"]+",source="{label}",'
            rf'exception="[^"]*ValueError"\}} 1$',
            text,
            re.M,
        ), text
    task_lines = [line for line in text.splitlines() if line.startswith("celery_task_")]
    assert task_lines and all('source="' in line for line in task_lines)


def test_a_single_source_server_labels_nothing(redis_url: str, store_url: str, unique_name: str) -> None:
    """The default case is unchanged: no ``source`` on tasks, no sources in health."""
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = TransportConfig(url=redis_url, name=settings.stream_key)
    worker = WorkerProcess(settings, "solo")
    worker.start()
    try:
        with TestClient(create_app(store_url=store_url, events=source)) as c:
            kit = make_app(settings, init=False)
            result = kit.add.delay(2, 3)
            assert wait_result(result, 60) == 5
            wait_for(lambda: listed(c).get(result.id, {}).get("state") == "SUCCESS", timeout=60)
            assert listed(c)[result.id]["source"] is None
            assert c.get("/api/health").json()["ingest"]["sources"] == []
    finally:
        worker.stop()
        cleanup_source(source)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["orders"], "expected NAME=URL"),
        (["=redis://x"], "source name"),
        (["a b=redis://x"], "source name"),
        (["a=redis://x", "a=redis://y"], "given twice"),
    ],
)
def test_bad_sources_are_refused_with_the_reason(items: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServerSettings.build(env={}, sources=items)


def test_sources_come_from_the_environment_too() -> None:
    settings = ServerSettings.build(
        env={"STEMTRACE_SOURCES": "eu=redis://127.0.0.1:6379/0#eu:stemtrace.events,us=amqp://guest@h//"}
    )
    found = {s.label: (s.config.url, s.config.name) for s in event_sources(settings)}
    assert found == {
        "eu": ("redis://127.0.0.1:6379/0", "eu:stemtrace.events"),
        "us": ("amqp://guest@h//", "stemtrace.events"),
    }
    with pytest.raises(ValueError, match="replaces --app"):
        event_sources(settings.with_(broker="redis://127.0.0.1:6379/0"))


def test_the_server_command_takes_repeated_source_flags(
    redis_url: str, unique_name: str, tmp_path: Any
) -> None:
    """``stemtrace server --source east=… --source west=…`` as users run it: two streams on one
    Redis, each batch stamped with the name of the stream it came from."""
    from server_harness import ServerProcess
    from test_ingest_faults import lives, publish

    east = TransportConfig(url=redis_url, name=f"{unique_name}-east")
    west = TransportConfig(url=redis_url, name=f"{unique_name}-west")
    server = ServerProcess(
        "--source", f"east={redis_url}#{east.name}",
        "--source", f"west={redis_url}#{west.name}",
        "--store", f"sqlite:///{tmp_path / 'two.db'}",
    )  # fmt: skip
    try:
        server.start()
        publish(east, lives(6, "e"))
        publish(west, lives(4, "w"))

        def ids(**params: Any) -> set[str]:
            return {t["id"] for t in server.get("/api/tasks", limit=100, **params)["items"]}

        wait_for(lambda: len(ids()) == 10, timeout=30)
        assert ids(source="east") == {f"e-{i:04d}" for i in range(6)}
        assert ids(source="west") == {f"w-{i:04d}" for i in range(4)}
        names = {s["name"] for s in server.get("/api/health")["ingest"]["sources"]}
        assert names == {"east", "west"}
    finally:
        server.stop()
        cleanup_source(east)
        cleanup_source(west)
