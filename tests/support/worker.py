"""Run a real ``celery worker`` subprocess for one :class:`AppSettings`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.app import SETTINGS_ENV, AppSettings

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``with WorkerProcess(settings, pool="prefork") as w:`` starts a worker and waits for it.

    ``env`` adds environment variables for the worker only (``STEMTRACE_*`` options,
    ``STEMTRACE_URL`` for another event broker). ``log()`` returns its output so a
    failing test can show it.
    """

    def __init__(
        self,
        settings: AppSettings,
        pool: str = "solo",
        *,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        ready_timeout_s: float = 30.0,
        loglevel: str = "INFO",
        app: str = "tests.support.worker_app",
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.concurrency = concurrency
        self.nodename = f"st{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.env = env or {}
        self.extra_args = extra_args
        self.ready_timeout_s = ready_timeout_s
        self.app = app  # the module ``celery -A`` loads
        self.loglevel = loglevel  # start() waits for the " ready." line INFO prints; others suit command()
        self.proc: subprocess.Popen[bytes] | None = None
        self._logfile = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the worker
            prefix="st-worker-", suffix=".log", delete=False
        )

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.app,
            "worker",
            "-P",
            self.pool,
            "-c",
            str(self.concurrency),
            "-Q",
            self.settings.queue,
            "-n",
            self.nodename,
            "--without-gossip",
            "--without-mingle",
            "-l",
            self.loglevel,
            *self.extra_args,
        ]

    def start(self) -> WorkerProcess:
        env = dict(os.environ)
        paths = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
        env.update(
            {SETTINGS_ENV: self.settings.to_env(), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        )
        env.update(self.env)
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=self._logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        output = self.log()
        self.stop()
        raise RuntimeError(f"worker did not become ready:\n{output[-4000:]}")

    def log(self) -> str:
        return Path(self._logfile.name).read_text(errors="replace")

    def child_pids(self) -> list[int]:
        """Pids of the pool's child processes (prefork)."""
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Warm shutdown (SIGTERM), then kill the whole session if it hangs."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.proc = None
        return proc.returncode

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        try:
            os.unlink(self._logfile.name)
        except OSError:
            pass


__all__ = ["WorkerProcess"]
