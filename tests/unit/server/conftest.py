"""API fixtures: a real SQLite store, filled through the same apply() ingest uses."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_events import EventFactory

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from stemtrace.server import create_app
from stemtrace.server.store import SqlStore, open_store

NOW = 1_790_100_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    yield s
    s.close()


@pytest.fixture
def filled(store: SqlStore) -> SqlStore:
    f = EventFactory()
    events = f.run("root-1", "proj.pipeline", 0, args=[1, 2], kwargs={"user": "alice"})
    events += f.run("child-1", "proj.step", 1, parent_id="root-1", root_id="root-1")
    events += f.run("bad-1", "proj.step", 2, fail=True)
    store.apply(events, {}, NOW)
    return store


@pytest.fixture
def client(filled: SqlStore) -> Iterator[TestClient]:
    app = create_app(store=filled, ingest=False)
    with TestClient(app) as c:
        yield c
