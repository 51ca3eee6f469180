"""``/metrics`` task metrics against what a real worker ran: a real prefork worker hooked by
the library, its events through Redis into the server, then a scrape of ``/metrics``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from server_events import TestClient
from server_harness import cleanup_source, wait_for
from test_real_workers import Running, events_source
from tests.support import AppSettings
from tests.support.results import wait as wait_result

from stemtrace.server import create_app

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The exposition's samples: (metric, labels) -> value. Every line must parse."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, line
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, **labels: str) -> float:
    """The sum over the samples of ``metric`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (name, ls), v in samples.items() if name == metric and want <= set(ls))


def test_metrics_count_what_the_worker_ran(tmp_path: Path, redis_url: str) -> None:
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = events_source(settings)
    try:
        with Running(settings) as running:
            t = running.tasks
            assert t is not None
            app = create_app(store_url=f"sqlite:///{tmp_path / 'm.db'}", events=source)
            with TestClient(app) as c:
                adds = [t.add.delay(i, i) for i in range(5)]
                fails = [t.fail.delay("boom") for _ in range(2)]
                flaky = t.flaky.delay(1)
                slow = t.sleeper.delay(0.3)
                for r in [*adds, flaky, slow]:
                    wait_result(r, 30)
                for r in fails:
                    with pytest.raises(ValueError):
                        wait_result(r, 30)
                running.flush()

                def done() -> bool:
                    s = parse(c.get("/metrics").text)
                    return (
                        value(s, "celery_task_succeeded_total", name="t.add") == 5
                        and value(s, "celery_task_failed_total", name="t.fail") == 2
                        and value(s, "celery_task_succeeded_total", name="t.flaky") == 1
                        and value(s, "celery_task_succeeded_total", name="t.sleeper") == 1
                    )

                wait_for(done, timeout=60)
                s = parse(c.get("/metrics").text)
                for name, n in (("t.add", 5), ("t.fail", 2), ("t.sleeper", 1)):
                    for field in ("sent", "received", "started"):
                        assert value(s, f"celery_task_{field}_total", name=name) == n, (field, name)
                assert value(s, "celery_task_failed_total", name="t.add") == 0
                # A failure counts under the queue known when it failed: the child's task.failed
                # can reach the stream before the main process's task.received and this process's
                # task.published (three publishers), so a failure may count under no queue yet;
                # a counter never moves a count it has given (store/rollups.py).
                fail_labels = [
                    dict(k[1])
                    for k, v in s.items()
                    if k[0] == "celery_task_failed_total" and v and ("name", "t.fail") in k[1]
                ]
                assert fail_labels and all(ls["exception"].endswith("ValueError") for ls in fail_labels)
                assert {ls["queue_name"] for ls in fail_labels} <= {settings.queue, ""}, fail_labels
                assert value(s, "celery_task_retried_total", name="t.flaky") == 1
                assert value(s, "celery_task_retried_total", name="t.add") == 0
                # The histograms: 0.3 s of sleep lands above 0.25 s and within 0.5 s.
                assert value(s, "celery_task_runtime_count", name="t.sleeper") == 1
                assert value(s, "celery_task_runtime_bucket", name="t.sleeper", le="0.25") == 0
                assert value(s, "celery_task_runtime_bucket", name="t.sleeper", le="0.5") == 1
                assert value(s, "celery_task_runtime_bucket", name="t.sleeper", le="+Inf") == 1
                assert 0.29 <= value(s, "celery_task_runtime_sum", name="t.sleeper") < 0.5
                assert value(s, "celery_task_runtime_count", name="t.add") == 5
                assert value(s, "celery_task_queue_wait_time_count", name="t.add") == 5
                assert value(s, "celery_task_queue_wait_time_bucket", name="t.add", le="+Inf") == 5
                assert value(s, "celery_worker_up", hostname=running.worker.nodename) == 1
                assert ("celery_worker_tasks_active", frozenset({("hostname", running.worker.nodename)})) in s
                assert value(s, "stemtrace_tasks_stuck") == 0
                assert value(s, "stemtrace_task_metrics_up") == 1
                # Counters never go down from one scrape to the next.
                again = parse(c.get("/metrics").text)
                for key, v in s.items():
                    if key[0].endswith("_total"):
                        assert again.get(key, 0) >= v, key
                # The aggregate endpoints read the same roll-ups.
                stats = {x["name"]: x for x in c.get("/api/stats/tasks").json()["items"]}
                assert (stats["t.add"]["succeeded"], stats["t.fail"]["failed"]) == (5, 2)
                [group] = [g for g in c.get("/api/failures").json()["items"] if g["name"] == "t.fail"]
                assert group["count"] == 2 and group["last_task_id"] in {r.id for r in fails}
                assert group["sample_message"] and "boom" in group["sample_message"]
    finally:
        cleanup_source(source)
