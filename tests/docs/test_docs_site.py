"""The documentation site builds with ``mkdocs build --strict`` and its API page renders the spec."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _hook() -> ModuleType:
    path = ROOT / "docs" / "hooks" / "openapi.py"
    spec = importlib.util.spec_from_file_location("stemtrace_docs_openapi_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "stemtrace", "version": "9.9"},
    "paths": {
        "/api/tasks/{task_id}": {
            "get": {
                "summary": "One task",
                "parameters": [
                    {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 50},
                        "description": "at most | this many",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskOut"}}},
                    },
                    "404": {"description": "Not found"},
                },
            }
        },
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "OK"}}}},
    },
    "components": {
        "schemas": {
            "TaskOut": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string"},
                    "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
                    "state": {"enum": ["SUCCESS", "FAILURE"]},
                    "started": {"type": "string", "format": "date-time"},
                },
            },
            "Attempt": {"type": "object", "properties": {"n": {"type": "integer"}}},
        }
    },
}


def test_render_lists_operations_parameters_and_schemas() -> None:
    text = _hook().render(SPEC)
    assert "stemtrace version 9.9, OpenAPI 3.1.0" in text
    assert "## Tasks" in text and "## Healthz" in text
    assert "### `GET /api/tasks/{task_id}`" in text
    assert "| `task_id` | path | string | yes |" in text
    # nullable integer, escaped pipe, default shown
    assert "| `limit` | query | integer or null | no | at most \\| this many (default `50`) |" in text
    assert "| 200 | OK | `application/json`: [TaskOut](#schema-taskout) |" in text
    assert "### TaskOut { #schema-taskout }" in text
    assert "| `attempts` | array of [Attempt](#schema-attempt) | no |" in text
    assert "| `id` | string | yes |" in text
    assert "| `state` | one of `SUCCESS`, `FAILURE` | no |" in text
    assert "| `started` | string (date-time) | no |" in text


def test_hook_replaces_only_the_marker_and_fails_without_a_spec(tmp_path: Path) -> None:
    hook = _hook()
    (tmp_path / "frontend").mkdir()
    (tmp_path / "frontend" / "openapi.json").write_text(json.dumps(SPEC), encoding="utf-8")
    config = {"config_file_path": str(tmp_path / "mkdocs.yml")}
    assert hook.on_page_markdown("no marker", None, config, None) == "no marker"
    out = hook.on_page_markdown(f"# API\n\n{hook.MARKER}\n", None, config, None)
    assert hook.MARKER not in out and "### `GET /healthz`" in out
    (tmp_path / "frontend" / "openapi.json").unlink()
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match=r"openapi\.json"):
        hook.on_page_markdown(hook.MARKER, None, config, None)


def test_every_committed_operation_is_rendered() -> None:
    spec = json.loads((ROOT / "frontend/openapi.json").read_text(encoding="utf-8"))
    text = _hook().render(spec)
    for path, item in spec["paths"].items():
        for method in item:
            if method in _hook().METHODS:
                assert f"### `{method.upper()} {path}`" in text


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable)) or shutil.which("mkdocs")
    assert mkdocs, "mkdocs is not installed (it is in the dev extra)"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (tmp_path / "site" / "api-reference" / "index.html").read_text(encoding="utf-8")
    assert "GET /api/tasks" in page
    # No page may pull anything from another host at view time (no CDN, no web fonts).
    for html in (tmp_path / "site").rglob("*.html"):
        tags = r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"'
        external = re.findall(tags, html.read_text("utf-8"))
        external = [u for u in external if not u.startswith("https://stemtrace.github.io/")]
        assert not external, f"{html}: {external}"
