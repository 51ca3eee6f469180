"""The built sdist and wheel, installed the way users install them.

Run after ``python -m build`` (the test command does both): ``pytest -m packaging tests/packaging``.
Each test creates fresh virtual environments outside the source tree, so nothing from the
checkout can leak into what is tested.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"


def _newest(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern), key=lambda p: p.stat().st_mtime)
    assert found, f"no {pattern} in {DIST}: run `python -m build` first"
    return found[-1]


def _version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def _run(*cmd: str | Path, cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env = {k: v for k, v in env.items() if not k.startswith("STEMTRACE_")}
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _venv(where: Path) -> Path:
    _run(sys.executable, "-m", "venv", where, cwd=where.parent)
    return where / "bin"


@pytest.fixture(scope="module")
def server_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh environment with ``stemtrace[server]`` installed from the built wheel."""
    home = tmp_path_factory.mktemp("server-venv")
    bin_dir = _venv(home / "venv")
    wheel = _newest("stemtrace-*.whl")
    _run(bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[server]", cwd=home)
    yield bin_dir


def test_the_wheel_contains_the_built_ui_and_the_typing_marker() -> None:
    names = set(zipfile.ZipFile(_newest("stemtrace-*.whl")).namelist())
    assert "stemtrace/server/static/index.html" in names
    assert any(re.match(r"stemtrace/server/static/assets/.+\.js$", n) for n in names)
    # The build's precompressed copies, which the server sends to clients that accept them.
    entry = next(n for n in names if re.match(r"stemtrace/server/static/assets/index-.+\.js$", n))
    assert f"{entry}.br" in names and f"{entry}.gz" in names
    assert "stemtrace/py.typed" in names
    assert not any(n.startswith(("tests/", "frontend/")) for n in names)


def test_the_sdist_carries_the_ui_sources_and_the_build_hook() -> None:
    with tarfile.open(_newest("stemtrace-*.tar.gz")) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    required = {
        "pyproject.toml",
        "hatch_build.py",
        "frontend/package.json",
        "frontend/package-lock.json",
        "src/stemtrace/__init__.py",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
    }
    assert required <= names, sorted(required - names)
    assert not any("node_modules" in n for n in names)


def test_version_from_the_installed_wheel(server_venv: Path, tmp_path: Path) -> None:
    out = _run(server_venv / "stemtrace", "--version", cwd=tmp_path)
    assert _version(_newest("stemtrace-*.whl")) in out
    where = _run(server_venv / "python", "-c", "import stemtrace; print(stemtrace.__file__)", cwd=tmp_path)
    assert str(server_venv.parent) in where  # the installed copy, not the checkout


def test_the_installed_server_serves_the_ui(server_venv: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_") and k != "PYTHONPATH"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(server_venv / "stemtrace"), "server", "--port", str(port), "--store", f"sqlite:///{tmp_path}/s.db",
         "--events-url", "inproc://packaging"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        assert '<div id="root">' in page
        asset = re.search(r'src="\.?/?(assets/[^"]+\.js)"', page)
        assert asset, page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{asset.group(1)}", timeout=5) as resp:
            assert resp.status == 200 and len(resp.read()) > 1000
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as resp:
            assert json.load(resp)["store"]["ok"] is True
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def _dry_run_names(bin_dir: Path, requirement: str, cwd: Path) -> set[str]:
    report = cwd / f"report-{abs(hash(requirement))}.json"
    pip = (bin_dir / "python", "-m", "pip")
    _run(*pip, "install", "-q", "--dry-run", "--ignore-installed", "--report", report, requirement, cwd=cwd)
    data = json.loads(report.read_text())
    return {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower() for item in data["install"]}


def test_a_library_only_install_pulls_celery_and_nothing_else(tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv")
    wheel = _newest("stemtrace-*.whl")
    ours = _dry_run_names(bin_dir, str(wheel), tmp_path)
    celery_alone = _dry_run_names(bin_dir, "celery>=5.3,<6", tmp_path)
    assert "stemtrace" in ours
    assert ours - {"stemtrace"} == celery_alone


def _serve_until_healthy(server_venv: Path, tmp_path: Path, *args: str) -> str:
    """Start the installed ``stemtrace server`` with ``args``; return its log once /api/health answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_") and k != "PYTHONPATH"}
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(server_venv / "stemtrace"), "server", "--port", str(port),
             "--store", f"sqlite:///{tmp_path}/s-{port}.db", *args],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as resp:
                        assert resp.status == 200
                    break
                except OSError:
                    assert proc.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
            return log_path.read_text()
        finally:
            proc.terminate()
            proc.wait(20)


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672//"])
def test_a_server_only_install_runs_on_the_apps_broker(
    server_venv: Path, tmp_path: Path, broker: str
) -> None:
    """``pip install "stemtrace[server]"`` alone (no dev constraints) consumes from a Celery app's broker.

    The app module is the user's: it knows only its broker URL. Loading kombu's transport for it must
    not fail on a package the ``server`` extra forgot (kombu's Redis transport needs ``packaging``).
    """
    (tmp_path / "proj_packaging.py").write_text(
        f"from celery import Celery\napp = Celery('proj', broker={broker!r})\n"
    )
    name = f"stemtrace.packaging.{os.getpid()}.{time.monotonic_ns()}"
    log = _serve_until_healthy(server_venv, tmp_path, "--app", "proj_packaging:app", "--events-name", name)
    assert "cannot reach" not in log and "Traceback" not in log, log
    assert name in log  # the startup banner names the stream or queue it consumes
