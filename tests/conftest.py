"""Shared fixtures: the machine's real services, isolated per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from tests.support.results import never_unsubscribe_from_a_finalizer

never_unsubscribe_from_a_finalizer()

REDIS_URL = os.environ.get("STEMTRACE_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("STEMTRACE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
PG_DSN = os.environ.get("STEMTRACE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def run_id() -> str:
    """A short id unique to this test run, for key prefixes, queue names and schemas."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def unique_name(run_id: str) -> Iterator[str]:
    """A name unique to one test (stream key, queue, schema)."""
    yield f"st_{run_id}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return AMQP_URL


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return PG_DSN
