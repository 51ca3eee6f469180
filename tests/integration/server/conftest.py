"""Integration fixtures: real brokers and real stores, isolated per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "server"))
sys.path.insert(0, str(Path(__file__).parent))

from pg_levers import Pg
from server_harness import cleanup_source

from stemtrace.transport import TransportConfig


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest, redis_url: str, amqp_url: str) -> str:
    return redis_url if request.param == "redis" else amqp_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str, unique_name: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'it.db'}"
        return
    yield f"{pg_dsn}?schema={unique_name}"
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


@pytest.fixture
def source(broker: str, unique_name: str) -> Iterator[TransportConfig]:
    config = TransportConfig(url=broker, name=unique_name)
    yield config
    cleanup_source(config)


@pytest.fixture
def pg(pg_dsn: str, unique_name: str) -> Iterator[Pg]:
    """A login role and schema of this test's own (``pg_levers.Pg``), dropped afterwards."""
    handle = Pg(pg_dsn, unique_name)
    try:
        yield handle
    finally:
        handle.close()
