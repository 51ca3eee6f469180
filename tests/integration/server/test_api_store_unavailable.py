"""A store that cannot answer gets 503 with ``Retry-After`` from every API route, not 500, and
the same route answers again once the store is back; an error of stemtrace's own stays 500,
logged with its traceback. Real faults on real stores: a SQLite table renamed away under the
running server, a PostgreSQL schema renamed away and logins refused."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg
import pytest
from pg_levers import Pg
from server_events import TestClient

from stemtrace.server import create_app
from stemtrace.server.store.faults import unavailable

pytestmark = [pytest.mark.integration]

ROUTES = ("/api/tasks", "/api/workflows", "/api/task-names", "/api/failures")


def assert_unavailable(c: TestClient, path: str) -> None:
    r = c.get(path)
    assert r.status_code == 503, (path, r.status_code, r.text[:300])
    assert r.headers["Retry-After"] == "5"
    body = r.json()["error"]
    assert body["status"] == 503
    assert body["message"].startswith("the store is unavailable, retry later: ")
    assert body["detail"]["reason"] == "store_unavailable"


def test_a_sqlite_table_renamed_away_answers_503_until_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    app = create_app(store_url=f"sqlite:///{path}", ingest=False)
    with caplog.at_level(logging.WARNING, logger="stemtrace.server.api"), TestClient(app) as c:
        for route in ROUTES:
            assert c.get(route).status_code == 200, route
        other = sqlite3.connect(path, isolation_level=None)  # another process's hand on the file
        other.execute("ALTER TABLE tasks RENAME TO tasks_away")
        other.execute("ALTER TABLE workflows RENAME TO workflows_away")
        for route in ("/api/tasks", "/api/workflows"):
            assert_unavailable(c, route)
        assert "no such table" in c.get("/api/tasks").json()["error"]["message"]
        health = c.get("/api/health")  # health itself answers, and says why
        assert health.status_code == 200
        warned = [r for r in caplog.records if "API requests get 503" in r.getMessage()]
        assert len(warned) == 1  # once per fault kind, not once per request
        other.execute("ALTER TABLE tasks_away RENAME TO tasks")
        other.execute("ALTER TABLE workflows_away RENAME TO workflows")
        other.close()
        for route in ROUTES:
            assert c.get(route).status_code == 200, route


def test_a_query_the_store_rejects_as_written_is_a_500_logged_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A column missing is what a wrong query looks like: stemtrace's bug, not an outage."""
    path = tmp_path / "s.db"
    app = create_app(store_url=f"sqlite:///{path}", ingest=False)
    with caplog.at_level(logging.ERROR, logger="stemtrace.server.api"), TestClient(app) as c:
        assert c.get("/api/tasks").status_code == 200
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("ALTER TABLE tasks RENAME COLUMN sort_ts TO sort_ts_away")
        other.close()
        r = c.get("/api/tasks")
        assert r.status_code == 500, r.text[:300]
        assert r.json()["error"]["message"] == "internal error (OperationalError); see the server log"
        assert "Retry-After" not in r.headers
        logged = [rec for rec in caplog.records if rec.levelno == logging.ERROR and rec.exc_info]
        assert logged and "no such column" in str(logged[-1].exc_info[1])  # type: ignore[index]


def test_a_postgresql_schema_renamed_away_answers_503_until_it_is_back(pg: Pg) -> None:
    app = create_app(store_url=pg.url, ingest=False)
    with TestClient(app) as c:
        for route in ROUTES:
            assert c.get(route).status_code == 200, route
        pg.sql(f'ALTER SCHEMA "{pg.schema}" RENAME TO "{pg.schema}_away"')
        for route in ROUTES:
            assert_unavailable(c, route)
        assert c.get("/api/health").json()["store"]["ok"] is False
        pg.sql(f'ALTER SCHEMA "{pg.schema}_away" RENAME TO "{pg.schema}"')
        for route in ROUTES:
            assert c.get(route).status_code == 200, route


def test_refused_postgresql_logins_answer_503_until_the_database_lets_the_server_back(pg: Pg) -> None:
    """``NOLOGIN`` plus terminated backends, as when PostgreSQL is down or restarting."""
    app = create_app(store_url=pg.url, ingest=False)
    with TestClient(app) as c:
        assert c.get("/api/tasks").status_code == 200
        pg.sql(f'ALTER ROLE "{pg.role}" NOLOGIN')
        pg.terminate()
        assert_unavailable(c, "/api/tasks")
        assert "cannot connect to PostgreSQL" in c.get("/api/workflows").json()["error"]["message"]
        pg.sql(f'ALTER ROLE "{pg.role}" LOGIN')
        assert c.get("/api/tasks").status_code == 200


def test_real_driver_errors_are_told_apart(tmp_path: Path, pg_dsn: str) -> None:
    """The classification on errors the drivers really raise, not constructed ones."""
    conn = sqlite3.connect(tmp_path / "c.db")
    caught: list[BaseException] = []
    for sql in ("SELECT * FROM no_table", "SELEC 1", "SELECT no_column FROM sqlite_master"):
        try:
            conn.execute(sql)
        except sqlite3.Error as exc:
            caught.append(exc)
    conn.close()
    try:
        conn.execute("SELECT 1")
    except sqlite3.Error as exc:
        caught.append(exc)
    with psycopg.connect(pg_dsn, autocommit=True) as pconn:
        for sql in ("SELECT * FROM no_such_table_here", "SELEC 1", "SELECT no_column FROM pg_class"):
            try:
                pconn.execute(sql)
            except psycopg.Error as exc:
                caught.append(exc)
    try:
        psycopg.connect(pg_dsn.replace(":5432", ":1") if ":5432" in pg_dsn else pg_dsn + "?port=1")
    except psycopg.Error as exc:
        caught.append(exc)
    assert [unavailable(e) for e in caught] == [True, False, False, True, True, False, False, True]
