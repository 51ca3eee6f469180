"""Every HTTP path the hand-written pages mention is a route the server really has."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "index.md", "getting-started.md", "architecture.md", "deployment.md", "security.md",
    "integrations.md", "troubleshooting.md", "configuration.md", "api-reference.md",
]  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from stemtrace.server import create_app

    db = tmp_path_factory.mktemp("docs-paths") / "s.db"
    app = create_app(store_url=f"sqlite:///{db}", events_url="inproc://docs-paths", ingest=False)
    with TestClient(app) as test_client:
        yield test_client


def _mentioned() -> set[str]:
    found: set[str] = set()
    for page in PAGES:
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        found |= set(re.findall(r"(?<![\w.])(/api/[a-z][a-z0-9/_.-]*[a-z0-9]|/metrics)\b", text))
    return found


def test_pages_mention_paths() -> None:
    assert {"/api/health", "/metrics", "/api/openapi.json"} <= _mentioned()


@pytest.mark.parametrize("path", sorted(_mentioned()))
def test_mentioned_path_is_served(path: str, client: TestClient) -> None:
    # The live stream never ends by itself: HEAD answers its headers and stops.
    response = client.head(path) if path == "/api/stream" else client.get(path)
    assert response.status_code == 200, f"docs mention {path}: {response.status_code} {response.text[:200]}"
    if not path.startswith("/api/"):  # outside /api/ the UI answers unknown paths with its index page
        assert "text/html" not in response.headers["content-type"], path
