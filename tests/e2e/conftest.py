"""End-to-end fixtures: a real stemtrace server fed by a real Celery worker through the library,
driven with Debian's Chromium through Playwright.

Everything is session-scoped: one server, one worker and one set of scenarios for the whole run,
isolated by a unique queue, event stream and SQLite file.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.support.results import wait as wait_result

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STATIC = ROOT / "src" / "stemtrace" / "server" / "static"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("STEMTRACE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REDIS = os.environ.get("STEMTRACE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # the server may not be up yet
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not (STATIC / "index.html").is_file():
        pytest.fail("The UI is not built: cd frontend && npm ci && npm run build")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    run = uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("e2e")
    yield {
        "E2E_BROKER": REDIS,
        "E2E_QUEUE": f"stemtrace_e2e_{run}",
        "E2E_EVENTS_URL": REDIS,
        "E2E_EVENTS_NAME": f"stemtrace.e2e.{run}",
        "STORE": f"sqlite:///{tmp / 'store.sqlite'}",
        "LOGDIR": str(tmp),
    }
    _forget_run(run)


def _forget_run(run: str) -> None:
    """Delete this run's queue (countdown tasks a stopped worker handed back) and event
    streams from the shared Redis, so runs do not pile them up."""
    import redis

    from stemtrace.capture.install import uninstall

    uninstall()  # this process's library sends its last health report now, not after the delete
    client = redis.Redis.from_url(REDIS)
    try:
        keys = [*client.scan_iter(f"stemtrace_e2e_{run}*"), *client.scan_iter(f"stemtrace.e2e.{run}*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")])}
    return subprocess.Popen(args, cwd=ROOT, env=full, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def _server(e2e_env: dict[str, str], name: str, args: list[str], prefix: str = "") -> Iterator[str]:
    """``stemtrace server`` on the e2e store and a free port; yields its URL once healthy."""
    port = _free_port()
    log = Path(e2e_env["LOGDIR"]) / f"{name}.log"
    command = [sys.executable, "-m", "stemtrace.cli", "server", "--store", e2e_env["STORE"]]
    proc = _spawn([*command, *args, "--port", str(port)], e2e_env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        health = f"{url}{prefix}/api/health"
        wait_for(lambda: proc.poll() is None and get_json(health)["status"], name, 30)
    except AssertionError:
        _stop(proc)
        raise AssertionError(f"{name} did not start:\n" + log.read_text()[-3000:]) from None
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def server_url(e2e_env: dict[str, str]) -> Iterator[str]:
    args = ["--events-url", REDIS, "--events-name", e2e_env["E2E_EVENTS_NAME"]]
    with _server(e2e_env, "server", args) as url:
        yield url


@pytest.fixture(scope="session")
def prefixed_url(e2e_env: dict[str, str], server_url: str) -> Iterator[str]:
    """A read-only replica on the same store under ``--root-path /stemtrace``, as behind a proxy
    that forwards the prefix."""
    args = ["--no-ingest", "--root-path", "/stemtrace"]
    with _server(e2e_env, "server-prefixed", args, prefix="/stemtrace") as url:
        yield url


@pytest.fixture(scope="session")
def worker(e2e_env: dict[str, str], server_url: str) -> Iterator[subprocess.Popen[bytes]]:
    log = Path(e2e_env["LOGDIR"]) / "worker.log"
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "e2e_tasks",
            "worker",
            "-Q",
            e2e_env["E2E_QUEUE"],
            "-c",
            "4",
            "-P",
            "prefork",
            "-n",
            f"e2e-{e2e_env['E2E_QUEUE'][-8:]}@%h",
            "--loglevel",
            "WARNING",
        ],
        e2e_env,
        log,
    )
    try:
        wait_for(
            lambda: proc.poll() is None and get_json(f"{server_url}/api/workers")["items"],
            "the worker to show up",
            60,
        )
    except AssertionError:
        _stop(proc)
        raise AssertionError("worker did not come online:\n" + log.read_text()[-3000:]) from None
    yield proc
    _stop(proc)


@pytest.fixture(scope="session")
def tasks_module(e2e_env: dict[str, str]) -> Any:
    for k, v in e2e_env.items():
        os.environ[k] = v
    sys.path.insert(0, str(HERE))
    return importlib.import_module("e2e_tasks")


def _state(url: str, task_id: str) -> str | None:
    try:
        return str(get_json(f"{url}/api/tasks/{task_id}")["state"])
    except Exception:
        return None


@pytest.fixture(scope="session")
def scenarios(tasks_module: Any, worker: Any, server_url: str) -> dict[str, Any]:
    """Runs every workload once and waits until the server has stored its outcome."""
    from celery import chain, chord, group

    t = tasks_module
    out: dict[str, Any] = {}

    failing = chain(t.add.s(1, 1), t.add.s(2), t.explode.s(), t.add.s(3), t.add.s(4)).apply_async()
    steps: list[str] = []
    node = failing
    while node is not None:
        steps.insert(0, node.id)
        node = node.parent
    out["chain_steps"] = steps

    c = chord([t.add.s(i, i) for i in range(5)])(t.tsum.s())
    out["chord_callback"] = c.id
    out["chord_header"] = [r.id for r in c.parent.results]

    big = group(t.noop.s(i) for i in range(2000)).apply_async()
    out["big_members"] = [r.id for r in big.results]

    out["echo"] = t.echo.delay(
        '<img src=x onerror="window.__xss=1">', note="<b>bold</b>", password="hunter2"
    ).id
    out["flaky"] = t.flaky.delay(2).id
    out["parent"] = t.parent.delay(3).id
    out["picky_key"] = t.picky.delay("key").id
    out["picky_value"] = [t.picky.delay("value").id for _ in range(2)]

    assert wait_result(c, 60) == sum(2 * i for i in range(5))
    wait_result(big, 180)

    wait_for(lambda: _state(server_url, steps[2]) == "FAILURE", "the failing chain step", 60)
    wait_for(lambda: _state(server_url, out["chord_callback"]) == "SUCCESS", "the chord callback", 60)
    wait_for(lambda: _state(server_url, out["flaky"]) == "SUCCESS", "the flaky task", 60)
    wait_for(lambda: _state(server_url, out["echo"]) == "SUCCESS", "the echo task", 60)
    wait_for(lambda: _state(server_url, out["parent"]) == "SUCCESS", "the parent task", 60)
    for tid in [out["picky_key"], *out["picky_value"]]:

        def failed(tid: str = tid) -> bool:
            return _state(server_url, tid) == "FAILURE"

        wait_for(failed, "the picky failures", 60)

    def big_done() -> bool:
        wf = get_json(f"{server_url}/api/workflows/{out['big_members'][0]}")
        return int(wf["counts"].get("SUCCESS", 0)) >= 2000

    wait_for(big_done, "2,000 group members to be stored", 120, every=1)
    out["big_workflow"] = get_json(f"{server_url}/api/workflows/{out['big_members'][0]}")["id"]
    out["chord_workflow"] = get_json(f"{server_url}/api/workflows/{out['chord_callback']}")["id"]
    out["chain_workflow"] = get_json(f"{server_url}/api/workflows/{steps[0]}")["id"]
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not session-wide: Playwright's sync API keeps an event loop
    running in the main thread while it is open, which would break later tests that use asyncio."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server_url)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None
        ),
    )
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, f"browser errors: {errors[:5]}"


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], None]:
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(SHOTS / f"e2e-{name}.png"), full_page=False)

    return take
