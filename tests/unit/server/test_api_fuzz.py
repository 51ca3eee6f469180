"""Property-based API tests generated from the OpenAPI spec (schemathesis).

Every GET route, against an app whose store holds real-looking data (chains, a
failure, retries, a worker): no response is a 5xx, and every response -- status,
content type, headers, body -- matches the schema (schemathesis's default checks).
``/api/stream`` is an endless SSE stream, so it is left to the live-stream tests.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from server_events import EventFactory

from stemtrace.server import create_app
from stemtrace.server.store import open_store

NOW = 1_790_100_000.0


def _populated_app() -> tuple[Any, Any, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="st-fuzz-")
    store = open_store(f"sqlite:///{tmp.name}/api.db")
    f = EventFactory()
    events = f.run("root-1", "proj.pipeline", 0, args=[1, "ünïcode"], kwargs={"user": "alice"})
    events += f.run("child-1", "proj.step", 1, parent_id="root-1", root_id="root-1")
    events += f.run("bad-1", "proj.step", 2, fail=True)
    events += [
        f.event("task.published", "flaky-1", "proj.flaky", 3, root_id="flaky-1", retries=0),
        f.event("task.started", "flaky-1", "proj.flaky", 3.1, retries=0),
        f.event("task.retried", "flaky-1", "proj.flaky", 3.2, retries=0, exception_type="IOError"),
        f.event("task.published", "flaky-1", "proj.flaky", 3.3, root_id="flaky-1", retries=1),
        f.event("task.started", "flaky-1", "proj.flaky", 3.4, retries=1),
        f.event("worker.online", None, None, 0, hostname="w1@h1", pool="prefork", concurrency=2),
    ]
    for i in range(4):  # a beat entry with an interval and a missed run (/api/beat)
        events += f.run(f"beat-{i}", "proj.tick", 5 + i * 60 + (120 if i == 3 else 0), beat="every-minute")
    store.apply(events, {}, NOW)
    return create_app(store=store, ingest=False), store, tmp


# Schemathesis parametrizes at collection time, so the app exists from import on
# (``schemathesis.pytest.from_fixture`` does not work with this pytest version).
APP, STORE, TMP = _populated_app()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = (
        schemathesis.openapi.from_asgi("/api/openapi.json", APP)
        .include(method="GET")
        .exclude(path="/api/stream")
    )


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    STORE.close()
    TMP.cleanup()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_get_route_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Time parameters are strings whose format (ISO-8601 or epoch seconds) the spec
        # states only in prose, so a random string is "schema-valid" yet rightly a 422.
        # State names are accepted case-insensitively (``state=failure``) on purpose, which the
        # spec's upper-case enum cannot express, so "accepted a value outside the enum" is expected.
        case.call_and_validate(
            excluded_checks=[checks.positive_data_acceptance, checks.negative_data_rejection]
        )


def test_fuzzing_covers_every_get_route() -> None:
    """A route added without being fuzzed would make the test above vacuous for it."""
    import json

    spec = json.loads((Path(__file__).parents[3] / "frontend" / "openapi.json").read_text())
    gets = {p for p, ops in spec["paths"].items() if "get" in ops}
    assert gets - {"/api/stream"} == {
        "/api/beat",
        "/api/beat/{entry}",
        "/api/failures",
        "/api/health",
        "/api/quarantine",
        "/api/stats/tasks",
        "/api/stuck",
        "/api/task-names",
        "/api/tasks",
        "/api/tasks.csv",
        "/api/tasks/{task_id}",
        "/api/workers",
        "/api/workflows",
        "/api/workflows/{workflow_id}",
    }
