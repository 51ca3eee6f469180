"""The committed OpenAPI spec (the UI's generated client) must match the code."""

from __future__ import annotations

import json
from pathlib import Path

from stemtrace.server.openapi import render

COMMITTED = Path(__file__).parents[3] / "frontend" / "openapi.json"


def test_committed_spec_is_current() -> None:
    assert COMMITTED.read_text() == render(), (
        "frontend/openapi.json is stale: run `python -m stemtrace.server.openapi > frontend/openapi.json`"
    )


def test_spec_is_stable_and_lists_the_contract() -> None:
    assert render() == render()
    paths = json.loads(render())["paths"]
    for path in (
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/workflows",
        "/api/workflows/{workflow_id}",
        "/api/workers",
        "/api/health",
        "/api/stream",
        "/api/task-names",
        "/api/failures",
        "/api/stats/tasks",
        "/api/stuck",
    ):
        assert set(paths[path]) == {"get"}
