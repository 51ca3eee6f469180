"""Instructions per task end to end, hooked against unhooked: the whole ratio, without the noise.

``overhead.py`` times a real worker and client on the real Redis; on a shared 2-core host its
ratio moves by several percent between identical runs. Here the same system (the client's
``add.delay(i, i)``, then a prefork worker, main process and pool children, running each task
and storing its result in Redis) runs under ``valgrind --tool=callgrind``, which counts every
instruction those processes execute, threads included (the publisher thread, when hooked).
Each mode runs twice, with ``--small`` and with ``--large`` tasks; the difference between the
two, divided by the extra tasks, is the cost of one task, start-up and shutdown cancelling
out. The ratio of the two modes' costs is the library's overhead in instructions.

What it leaves out: the Redis server's own work (not under valgrind) and what instructions do
not show (cache misses, the GIL hand-overs between the publisher thread and the main one).
Under valgrind everything runs some fifty times slower, so the library's clocks are slowed as
much (``--slowdown``: its flush, heartbeat and health intervals are multiplied by it): each
publisher wake-up then finds as many events as it would at full speed (a few hundred at the
~600 tasks/s of ``overhead.py``), instead of one or two, each batch paying a whole send.

    python benchmarks/instructions_e2e.py [--small 100] [--large 300] [--pool prefork]

``valgrind`` must be installed (Debian: ``apt-get install valgrind``); one run takes a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import redis  # noqa: E402
from tests.support import AppSettings, WorkerProcess, make_app  # noqa: E402
from tests.support.app import SETTINGS_ENV  # noqa: E402

from stemtrace.capture.config import CaptureConfig  # noqa: E402

MODES = ("unhooked", "hooked")


def client_main(count: int) -> None:
    """The measured client: ``count`` ``add.delay`` calls, then its own last events sent. The
    results are awaited outside valgrind (``_wait_for_results``): waiting is a polling loop whose
    count grows with wall time, not with the work, and drowns the difference otherwise."""
    settings = AppSettings.from_env()
    tasks = make_app(settings)  # calls stemtrace.init when settings.instrument
    # A full collection is due soon after start-up (the imports made many objects); whether it
    # falls inside the run or not would weigh more than a hundred tasks. A long-lived process
    # is past that point: start from there.
    gc.collect()
    for i in range(count):
        tasks.add.delay(i, i)
    if settings.instrument:
        from stemtrace.capture import state

        st = state.current()
        assert st is not None
        st.emitter().flush(600.0)


def _wait_for_results(client: redis.Redis, settings: AppSettings, count: int) -> None:
    pattern = f"{settings.prefix}celery-task-meta-*"
    deadline = time.monotonic() + 3600
    while sum(1 for _ in client.scan_iter(match=pattern, count=1000)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} results after an hour")
        time.sleep(0.5)


def _valgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p", "--quiet"]


def _collected(out: Path) -> int:
    """Instructions of every process that wrote a callgrind file into ``out``."""
    total = 0
    for path in out.glob("cg.*"):
        with path.open(errors="replace") as fh:
            for line in fh:
                found = re.match(r"(?:summary|totals): (\d+)", line)
                if found:
                    total += int(found.group(1))
                    break
    return total


def _worker_command(out: Path, pool: str, settings: AppSettings) -> list[str]:
    worker = WorkerProcess(settings, pool, extra_args=("--without-heartbeat",), loglevel="WARNING")
    command = worker.command()
    worker.__exit__()  # only its command line is used: remove the log file it made
    return [*_valgrind(out), *command]


def one_run(mode: str, count: int, pool: str, redis_url: str, slowdown: float) -> tuple[int, int]:
    """Instructions of (worker, client) for ``count`` tasks in ``mode``.

    The client sends every task first, then the worker starts and drains the queue: each is
    busy all the time it is measured, instead of idling in a polling loop while the other,
    fifty times slower under valgrind, catches up (idle loops count wall time, not work).
    """
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url, instrument=mode == "hooked")
    env = dict(os.environ, PYTHONHASHSEED="0", **{SETTINGS_ENV: settings.to_env()})
    defaults = CaptureConfig()
    for name in ("flush_interval", "heartbeat_interval", "health_interval"):
        env[f"STEMTRACE_{name.upper()}"] = str(getattr(defaults, name) * slowdown)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    broker = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory(prefix="st-e2e-") as tmp:
        worker_out, client_out = Path(tmp, "worker"), Path(tmp, "client")
        worker_out.mkdir()
        client_out.mkdir()
        worker: subprocess.Popen[bytes] | None = None
        try:
            began = time.perf_counter()
            subprocess.run(
                [*_valgrind(client_out), sys.executable, __file__, "--client", str(count)],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=3600,
            )
            sent = time.perf_counter()
            with Path(tmp, "worker.log").open("wb") as log_fh:
                worker = subprocess.Popen(
                    _worker_command(worker_out, pool, settings),
                    cwd=ROOT,
                    env=env,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _wait_for_results(broker, settings, count)
            print(
                f"  {mode} {count} tasks: sent in {sent - began:.0f} s, "
                f"run in {time.perf_counter() - sent:.0f} s",
                file=sys.stderr,
            )
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(300)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait(30)
            keys = list(broker.scan_iter(match=f"{settings.prefix}*"))
            if keys:
                broker.delete(*keys)
        time.sleep(1.0)  # the pool children write their files as they exit
        return _collected(worker_out), _collected(client_out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=300)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument(
        "--slowdown",
        type=float,
        default=50.0,
        help="how much slower valgrind runs (scales stemtrace's clocks)",
    )
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        client_main(args.client)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    extra = args.large - args.small
    per: dict[str, tuple[float, float]] = {}
    for mode in MODES:
        small = one_run(mode, args.small, args.pool, args.redis, args.slowdown)
        large = one_run(mode, args.large, args.pool, args.redis, args.slowdown)
        per[mode] = ((large[0] - small[0]) / extra, (large[1] - small[1]) / extra)
        print(
            f"{mode:9s} worker {per[mode][0]:>12,.0f}  client {per[mode][1]:>12,.0f}  instructions per task"
        )
    worker, client = (per["hooked"][i] / per["unhooked"][i] for i in (0, 1))
    total = sum(per["hooked"]) / sum(per["unhooked"])
    added = sum(per["hooked"]) - sum(per["unhooked"])
    print(f"ratio hooked/unhooked: worker {worker:.4f}x  client {client:.4f}x  all {total:.4f}x")
    print(f"added per task: {added:,.0f} instructions")


if __name__ == "__main__":
    main()
