"""PostgreSQL store faults under a running server, on real PostgreSQL and a real Redis stream:
connections terminated, the server refusing logins, a revoked permission, the schema renamed
away or dropped. Each is loud (``/api/health`` degraded with a reason, an ERROR log line), pauses
ingest without acknowledging anything, and, where the database comes back, resumes by itself
with no event lost. The PostgreSQL half of ``test_ingest_faults.py``'s SQLite file faults.

Every test runs as its own login role on its own schema, so terminating "the server's
connections" or revoking "its" permission touches nobody else's tests.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pg_levers import Pg
from server_events import TestClient
from server_harness import wait_for
from test_ingest_faults import count, ctx_of, lives, publish, unacknowledged

from stemtrace.server import create_app
from stemtrace.transport import TransportConfig

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["redis"], indirect=True)]


def reasons(c: TestClient) -> str:
    return " | ".join(c.get("/api/health").json()["reasons"])


def degraded_with(c: TestClient, text: str) -> bool:
    health = c.get("/api/health").json()
    return health["status"] == "degraded" and text in " | ".join(health["reasons"])


def error_logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(r.levelno >= logging.ERROR and text in r.getMessage() for r in caplog.records)


def test_terminated_connections_are_replaced_and_nothing_is_lost(source: TransportConfig, pg: Pg) -> None:
    app = create_app(store_url=pg.url, events=source)
    with TestClient(app) as c:
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        publish(source, lives(20, "a"))
        wait_for(lambda: count(c, "a-") == 20, timeout=30)
        for round_ in range(3):  # every connection of the server, three times over
            assert pg.terminate() > 0
            publish(source, lives(20, f"b{round_}"))
            wait_for(lambda r=round_: count(c, f"b{r}-") == 20, timeout=30)  # type: ignore[misc]
        wait_for(lambda: c.get("/api/health").json()["status"] == "ok", timeout=15)
        wait_for(lambda: unacknowledged(source, ingestor) == 0, timeout=20)
        assert c.get("/api/quarantine").json()["items"] == []  # a store fault is never the data's


def test_refused_logins_pause_ingest_loudly_until_the_database_lets_it_back(
    source: TransportConfig, pg: Pg, caplog: pytest.LogCaptureFixture
) -> None:
    """``NOLOGIN`` plus terminated backends: every reconnect is refused by the server, as when
    PostgreSQL is down or restarting."""
    app = create_app(store_url=pg.url, events=source)
    with caplog.at_level(logging.ERROR, logger="stemtrace.server.ingest"), TestClient(app) as c:
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        publish(source, lives(10, "a"))
        wait_for(lambda: count(c, "a-") == 10, timeout=30)
        pg.sql(f'ALTER ROLE "{pg.role}" NOLOGIN')
        pg.terminate()
        publish(source, lives(10, "b"))
        wait_for(lambda: degraded_with(c, "cannot connect to PostgreSQL"), timeout=15)
        assert c.get("/api/health").json()["store"]["ok"] is False
        wait_for(lambda: unacknowledged(source, ingestor) > 0, timeout=10)
        wait_for(lambda: error_logged(caplog, "ingest paused"))
        pg.sql(f'ALTER ROLE "{pg.role}" LOGIN')
        wait_for(lambda: count(c, "b-") == 10, timeout=60)  # resumed by itself
        wait_for(lambda: c.get("/api/health").json()["status"] == "ok", timeout=15)
        wait_for(lambda: unacknowledged(source, ingestor) == 0, timeout=20)


def test_a_revoked_permission_pauses_ingest_and_a_grant_resumes_it(
    source: TransportConfig, pg: Pg, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(store_url=pg.url, events=source)
    with caplog.at_level(logging.ERROR, logger="stemtrace.server.ingest"), TestClient(app) as c:
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        publish(source, lives(10, "a"))
        wait_for(lambda: count(c, "a-") == 10, timeout=30)
        pg.sql(f'REVOKE USAGE ON SCHEMA "{pg.schema}" FROM "{pg.role}"')
        publish(source, lives(10, "b"))
        wait_for(lambda: degraded_with(c, "permission"), timeout=15)
        wait_for(lambda: unacknowledged(source, ingestor) > 0, timeout=10)
        # Without USAGE the schema drops out of the search path: the write's own error, logged.
        wait_for(lambda: error_logged(caplog, "ingest paused") and error_logged(caplog, "does not exist"))
        pg.sql(f'GRANT USAGE ON SCHEMA "{pg.schema}" TO "{pg.role}"')
        wait_for(lambda: count(c, "b-") == 10, timeout=60)
        wait_for(lambda: c.get("/api/health").json()["status"] == "ok", timeout=15)
        wait_for(lambda: unacknowledged(source, ingestor) == 0, timeout=20)
        assert c.get("/api/quarantine").json()["items"] == []


def test_the_schema_renamed_away_pauses_ingest_until_it_is_back_and_dropped_stays_paused(
    source: TransportConfig, pg: Pg, caplog: pytest.LogCaptureFixture
) -> None:
    """The PostgreSQL form of a SQLite directory moved away and then removed: never a silent
    new, empty store under the old name, neither by the running server nor by reconnecting."""
    app = create_app(store_url=pg.url, events=source)
    with caplog.at_level(logging.ERROR, logger="stemtrace.server.ingest"), TestClient(app) as c:
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        publish(source, lives(10, "a"))
        wait_for(lambda: count(c, "a-") == 10, timeout=30)
        pg.sql(f'ALTER SCHEMA "{pg.schema}" RENAME TO "{pg.schema}_away"')
        publish(source, lives(10, "b"))
        wait_for(lambda: degraded_with(c, "is gone"), timeout=15)
        health: dict[str, Any] = c.get("/api/health").json()
        assert health["store"]["ok"] is False, health
        wait_for(lambda: unacknowledged(source, ingestor) > 0, timeout=10)
        wait_for(lambda: error_logged(caplog, "ingest paused") and error_logged(caplog, "does not exist"))
        pg.terminate()  # the reconnects too must not create it anew
        wait_for(lambda: degraded_with(c, "is gone"), timeout=15)
        assert not pg.schema_exists(pg.schema)
        pg.sql(f'ALTER SCHEMA "{pg.schema}_away" RENAME TO "{pg.schema}"')
        wait_for(lambda: count(c, "b-") == 10, timeout=60)  # resumed by itself, nothing lost
        wait_for(lambda: c.get("/api/health").json()["status"] == "ok", timeout=15)
        wait_for(lambda: unacknowledged(source, ingestor) == 0, timeout=20)
        committed = ingestor.stats.events
        pg.sql(f'DROP SCHEMA "{pg.schema}" CASCADE')
        publish(source, lives(5, "c"))
        wait_for(lambda: degraded_with(c, "is gone"), timeout=15)
        wait_for(lambda: unacknowledged(source, ingestor) > 0, timeout=10)
        pg.terminate()
        c.get("/api/health")  # a fresh connection, on the API's side too
        assert not pg.schema_exists(pg.schema)
        assert ingestor.stats.events == committed  # c-* never went into a new, empty schema
