"""Fixtures for capture tests: an isolated app per test, cleaned up afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from tests.support import AppSettings

import stemtrace.capture.install as capture


def purge(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def settings(redis_url: str) -> Iterator[AppSettings]:
    """Unique key prefix and queue on the real Redis; the library is uninstalled after."""
    capture.uninstall(0.5)
    value = AppSettings(broker_url=redis_url, backend_url=redis_url)
    yield value
    capture.uninstall(0.5)
    purge(redis_url, value.prefix)
