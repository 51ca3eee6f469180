"""Hostile HTTP input: every answer is a 4xx in the one error shape, never a 5xx.

Two halves. Schemathesis generates schema-violating requests too (negative mode, NUL bytes
allowed) for every GET route of an app whose store holds real-looking data, checking only
"no server error". Then a hand-written list of the inputs attackers and broken clients send
(NUL bytes in paths and values, 65,000-character parameters, infinities, years past 9999,
lone surrogates in percent-encoding), against SQLite and PostgreSQL stores, with HEAD too.

The stateful half runs schemathesis' state machine over the links it infers (a task id from
``/api/tasks`` into ``/api/tasks/{task_id}``, a workflow id from ``/api/workflows`` into
``/api/workflows/{workflow_id}``), so the detail routes also see ids that really exist.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode, checks
from server_events import EventFactory

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from stemtrace.server import create_app
from stemtrace.server.store import SqlStore, open_store

NOW = 1_790_100_000.0


def _fill(store: SqlStore) -> None:
    f = EventFactory()
    events = f.run("root-1", "proj.pipeline", 0, args=[1, "ünïcode"], kwargs={"user": "alice"})
    events += f.run("child-1", "proj.step", 1, parent_id="root-1", root_id="root-1")
    events += f.run("bad-1", "proj.step", 2, fail=True)
    events += [f.event("worker.online", None, None, 0, hostname="w1@h1", pool="prefork", concurrency=2)]
    store.apply(events, {}, NOW)


def _fuzz_app() -> tuple[Any, SqlStore, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="st-hostile-")
    store = open_store(f"sqlite:///{tmp.name}/api.db")
    _fill(store)
    return create_app(store=store, ingest=False), store, tmp


# Schemathesis parametrizes at collection time, so the app exists from import on.
APP, STORE, TMP = _fuzz_app()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = (
        schemathesis.openapi.from_asgi("/api/openapi.json", APP)
        .include(method="GET")
        .exclude(path="/api/stream")
    )
    schema.config.generation.update(
        modes=[GenerationMode.NEGATIVE, GenerationMode.POSITIVE], allow_x00=True, max_examples=40
    )


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    STORE.close()
    TMP.cleanup()


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_generated_requests_never_get_a_server_error(case: schemathesis.Case[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = case.call()
    case.validate_response(response, checks=[checks.not_a_server_error])
    if response.status_code >= 400:
        _assert_error_shape(response.status_code, response.text)


class NoServerErrors(schema.as_state_machine()):  # type: ignore[misc]
    """Chained requests through inferred links; the one property checked is "no 5xx"."""

    def validate_response(self, response: Any, case: schemathesis.Case[Any], *_: Any, **__: Any) -> None:
        case.validate_response(response, checks=[checks.not_a_server_error])


def test_chained_requests_never_get_a_server_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NoServerErrors.run(
            settings=settings(
                max_examples=15,
                stateful_step_count=5,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
        )


def _assert_error_shape(status: int, text: str) -> None:
    body = json.loads(text)
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


LONG = "a" * 65_000
HOSTILE = [
    # NUL bytes: in a UI path, an API path, an asset name, a query value and a parameter name
    "/tasks/%00",
    "/%00",
    "/assets/x%00.js",
    "/api/tasks/%00",
    "/api/workflows/ab%00cd",
    "/api/workflows/root-1%00/graph",
    "/api/tasks?q=%00",
    "/api/tasks?name=a%00b",
    "/api/tasks?%00=1",
    "/api/tasks?cursor=%00",
    "/api/failures?name=%00",
    "/api/stream?task=%00",
    # very long parameters and paths
    f"/api/tasks?q={LONG}",
    f"/api/workflows?q={LONG}",
    f"/api/tasks?name={'é' * 5000}",
    f"/api/tasks?cursor={'A' * 20_000}",
    f"/api/tasks/{'x' * 5000}",
    f"/{'y' * 300}",
    f"/tasks/{'z' * 5000}",
    "/api/tasks?" + "&".join(f"state=SUCCESS{i}" for i in range(2000)),
    "/api/tasks?" + "&".join("exception_type=E" for _ in range(100)),
    # infinities, NaN, huge and out-of-range times
    "/api/tasks?since=-inf",
    "/api/tasks?since=inf",
    "/api/tasks?until=nan",
    "/api/tasks?since=1e400",
    "/api/tasks?since=-1e308",
    "/api/tasks?since=99999999999999",
    "/api/tasks?since=10000-01-01",
    "/api/tasks?since=9999-12-31T23:59:59-23:59",
    "/api/tasks?since=0001-01-01T00:00:00%2B14:00",
    "/api/workflows?since=-inf",
    "/api/failures?since=-inf",
    "/api/failures?until=nan",
    "/api/stats/tasks?since=-inf",
    "/api/stats/tasks?since=nan",
    "/api/stats/tasks?until=1e300",
    "/api/stats/tasks?since=0&until=253402300799",
    "/api/stats/tasks?buckets=99999999999999999999999",
    "/api/tasks?limit=-1",
    "/api/tasks?limit=1e3",
    "/api/tasks?limit=99999999999999999999999",
    # unicode edge cases: lone surrogates and invalid UTF-8 in percent-encoding, odd code points
    "/api/tasks?q=%ED%A0%80",
    "/api/tasks/%ED%A0%80",
    "/api/workflows/%ED%B0%80/graph",
    "/%ED%A0%80",
    "/api/tasks?worker=%FF%FE",
    "/api/tasks?q=%F4%90%80%80",
    "/api/tasks?q=%EF%BF%BF%E2%80%AE",
    "/api/tasks?q=%25%5C_",
    "/api/tasks?state=%C0%80",
    "/api/tasks?since=%D9%A1%D9%A2",
    "/api/stream?topics=tasks,%ED%A0%80",
    # malformed query strings and cursors
    "/api/tasks?&&==&q",
    "/api/tasks?cursor=!!!",
    "/api/tasks?cursor=eyJ4IjoxfQ",
    "/api/tasks?cursor=bnVsbA",
    "/api/workflows?state=nope",
    "/api/stream?topics=",
]


def _hostile_store(kind: str, tmp_path: Path, pg_dsn: str, unique_name: str) -> Iterator[SqlStore]:
    if kind == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'hostile.db'}")
        yield store
        store.close()
        return
    store = open_store(f"{pg_dsn}?schema={unique_name}")
    yield store
    store.close()
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def hostile_client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str, unique_name: str
) -> Iterator[TestClient]:
    for store in _hostile_store(request.param, tmp_path, pg_dsn, unique_name):
        _fill(store)
        with TestClient(create_app(store=store, ingest=False), raise_server_exceptions=False) as client:
            yield client


def test_hostile_requests_get_a_4xx_with_a_message(hostile_client: TestClient) -> None:
    failures = []
    for url in HOSTILE:
        for method in ("GET", "HEAD"):
            if url.startswith("/api/stream") and method == "GET":
                continue  # a valid stream request would not end; its bad ones are 4xx (below)
            response = hostile_client.request(method, url)
            if response.status_code >= 500:
                failures.append(f"{method} {url[:80]} -> {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400 and method == "GET":
                _assert_error_shape(response.status_code, response.text)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/tasks/%00", 400, "NUL"),
        ("/api/tasks?q=a%00", 400, "'q' contains a NUL byte"),
        (f"/api/tasks?q={LONG}", 414, "longer than"),
        (f"/api/tasks?q={'q' * 4097}", 414, "'q' is longer than 4096"),
        ("/api/tasks?since=-inf", 422, "out of range"),
        ("/api/stats/tasks?since=-inf", 422, "out of range"),
        ("/api/tasks?until=nan", 422, "out of range"),
        ("/api/tasks?since=10000-01-01", 422, "invalid since"),
    ],
)
def test_each_known_500_is_now_a_named_4xx(client: TestClient, url: str, status: int, says: str) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


def test_the_longest_accepted_values_still_work(client: TestClient) -> None:
    """The limits refuse only the absurd: a 4,096-character search and an old date are served."""
    assert client.get(f"/api/tasks?q={'%25' * 4096}").status_code == 200
    assert client.get("/api/tasks?since=0001-01-02").status_code == 200
    assert client.get("/api/tasks?until=9999-12-31").json()["items"]


def test_head_answers_like_get_without_a_body(client: TestClient) -> None:
    for url in ("/api/tasks", "/api/health", "/api/tasks/root-1", "/", "/tasks/root-1", "/api/openapi.json"):
        get, head = client.get(url), client.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    assert client.head("/api/tasks/nope").status_code == 404
    # Writes stay refused; the message names both methods that work.
    post = client.post("/api/tasks")
    assert post.status_code == 405
    assert "HEAD" in post.json()["error"]["message"]
