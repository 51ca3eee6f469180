"""The shipped Prometheus alert rules and Grafana dashboard (``deploy/``) query only metrics
``/metrics`` exports, and the task metrics follow the exposition format's rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from server_events import EventFactory, TestClient

from stemtrace.server import create_app
from stemtrace.server.store import SqlStore

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "stemtrace-dashboard.json"
_METRIC = re.compile(r"\b((?:celery|stemtrace)_[a-z_]+)")
NOW = 1_790_000_500.0


def exported(text: str) -> set[str]:
    """Every sample name the exposition can carry (a histogram's with their suffixes)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


@pytest.fixture
def metrics_text(filled: SqlStore) -> str:
    f = EventFactory(node="w9@h9")
    filled.apply([f.event("worker.online", None, None, 0, hostname="w9@h9")], {}, NOW)
    with TestClient(create_app(store=filled, ingest=False)) as c:
        text: str = c.get("/metrics").text
    return text


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)] + [
            e for v in node.values() for e in _exprs(v)
        ]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_every_rule_and_panel_queries_an_exported_metric(metrics_text: str) -> None:
    names = exported(metrics_text)
    for wanted in (
        "celery_task_sent_total",
        "celery_task_received_total",
        "celery_task_started_total",
        "celery_task_succeeded_total",
        "celery_task_failed_total",
        "celery_task_retried_total",
        "celery_task_revoked_total",
        "celery_task_rejected_total",
        "celery_task_lost_total",
        "celery_task_runtime_bucket",
        "celery_task_queue_wait_time_bucket",
        "celery_worker_up",
        "celery_worker_tasks_active",
        "stemtrace_tasks_stuck",
    ):
        assert wanted in names, wanted
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += _exprs(dashboard["panels"]) + _exprs(dashboard["templating"])
    assert len(exprs) > 20
    used = {m for e in exprs for m in _METRIC.findall(e)}
    # Exported only while ingest runs (this app has none): named in metrics.py's source.
    ingest_only = {"stemtrace_ingest_lag_seconds"}
    source = (ROOT / "src" / "stemtrace" / "server" / "metrics.py").read_text()
    assert all(f'"{n}"' in source for n in ingest_only)
    assert used - names - ingest_only == set()
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "CeleryTaskFailureRateHigh",
        "CeleryQueueWaitHigh",
        "CeleryTaskLost",
        "CeleryTasksStuck",
        "CeleryWorkerDown",
    }


def test_task_metrics_exposition(metrics_text: str) -> None:
    lines = metrics_text.splitlines()
    # The filled store: proj.step ran twice (one failure), proj.pipeline once.
    assert 'celery_task_succeeded_total{name="proj.step",queue_name="celery"} 1' in lines
    assert 'celery_task_failed_total{name="proj.step",queue_name="celery",exception="ValueError"} 1' in lines
    assert 'celery_task_runtime_bucket{name="proj.step",queue_name="celery",le="+Inf"} 2' in lines
    assert 'celery_task_runtime_count{name="proj.step",queue_name="celery"} 2' in lines
    # Its one event is older than the worker retention: an expired worker leaves the metrics
    # (tests/integration/server/test_task_metrics.py sees a live one up).
    assert "# TYPE celery_worker_up gauge" in lines
    assert not any(ln.startswith('celery_worker_up{hostname="w9@h9"}') for ln in lines)
    # Buckets are cumulative and each family has one HELP and TYPE.
    buckets = [
        float(ln.rsplit(" ", 1)[1])
        for ln in lines
        if ln.startswith('celery_task_runtime_bucket{name="proj.step"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 2
    types = [ln.split(" ")[2] for ln in lines if ln.startswith("# TYPE ")]
    assert len(types) == len(set(types))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_accepts_the_rules() -> None:
    out = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
