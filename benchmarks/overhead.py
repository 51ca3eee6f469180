"""Worker overhead: trivial tasks end to end on the real Redis, hooked vs unhooked.

Each mode has its own prefork worker and its own long-lived client process,
each pair on its own queue and key prefix; in the hooked mode both the worker and
the client call ``stemtrace.init`` (once, at start, as a real deployment does).
Runs alternate between the modes; a run makes the client send ``--tasks`` ``add``
tasks and wait for every result. Target: <= 1.03x.

Reported per mode: the median wall time and the median CPU seconds spent by the
worker (main process and pool children), the client (publisher thread included)
and the local ``redis-server``. On a 2-core machine the run saturates both cores,
so total CPU is what throughput pays for; it is also far steadier than wall time
when other jobs share the box.

    python benchmarks/overhead.py [--tasks 2000] [--runs 7] [--restarts 1] [--pool prefork] [--concurrency 2]

An A/A run (``--aa``: both pairs unhooked) shows the noise floor of the machine; on the
2-core development VM it moved by about 3% between two identical pairs, so compare
ratios over several ``--restarts`` and runs, never one short run. The medians of per-round
ratios come with a 95% bootstrap interval: when it is wide, the machine was too noisy to
tell a few percent apart, and more (or shorter, ``--tasks``) rounds narrow it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import redis  # noqa: E402
from tests.support import AppSettings, WorkerProcess, make_app  # noqa: E402
from tests.support.app import SETTINGS_ENV  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PARTS = ("worker", "client", "redis")
DETAIL = ("worker_main", "worker_children")
# Main threads against the other threads (stemtrace's publisher, when hooked), per process kind.
THREADS = ("main_t", "main_x", "children_t", "children_x", "client_t", "client_x")


def _stat_cpu(stat: str) -> float:
    """User + system CPU seconds from a ``/proc`` stat file, 0 once its process or thread is gone."""
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_of(pid: int) -> float:
    """CPU seconds of one process (all its threads)."""
    return _stat_cpu(f"/proc/{pid}/stat")


def threads_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid``'s main thread and of its other threads (the publisher, when hooked)."""
    main = other = 0.0
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    for tid in tids:
        cpu = _stat_cpu(f"/proc/{pid}/task/{tid}/stat")
        if tid == pid:
            main += cpu
        else:
            other += cpu
    return main, other


def process_tree(pid: int) -> list[int]:
    out = [pid]
    for thread in Path(f"/proc/{pid}/task").iterdir():
        for child in (thread / "children").read_text().split():
            out += process_tree(int(child))
    return out


def redis_pid() -> int | None:
    found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True, check=False)
    pids = found.stdout.split()
    return int(pids[0]) if len(pids) == 1 else None


def client_main() -> None:
    """The client process: ``stemtrace.init`` once when hooked, then one run per stdin line."""
    settings = AppSettings.from_env()
    tasks = make_app(settings)  # calls stemtrace.init when settings.instrument
    for line in sys.stdin:
        count = int(line)
        start = time.perf_counter()
        results = [tasks.add.delay(i, i) for i in range(count)]
        for result in results:
            result.get(timeout=120)
        wall = time.perf_counter() - start
        if settings.instrument and not os.environ.get("STEMTRACE_URL"):  # a black hole never drains
            from stemtrace.capture import state

            st = state.current()
            assert st is not None
            st.emitter().flush(5.0)  # this run's events are paid for in this run
        print(json.dumps({"wall": wall}), flush=True)


class Client:
    def __init__(self, settings: AppSettings, extra_env: dict[str, str]) -> None:
        env = dict(os.environ, **{SETTINGS_ENV: settings.to_env()}, **extra_env)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--client"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, count: int) -> float:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{count}\n")
        stdin.flush()
        return float(json.loads(stdout.readline())["wall"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run(client: Client, count: int, worker_pid: int, server: int | None, settle: float) -> dict[str, float]:
    pids = process_tree(worker_pid)
    before = {p: cpu_of(p) for p in pids}
    redis_before = cpu_of(server) if server else 0.0
    client_before = cpu_of(client.proc.pid)
    threads_before = {p: threads_cpu(p) for p in [*pids, client.proc.pid]}
    wall = client.run(count)
    # The worker's publisher sends its last events up to a flush interval after the run: wait,
    # so that CPU is counted in this run (the other mode's run would not count it at all).
    time.sleep(settle)
    main = cpu_of(worker_pid) - before[worker_pid]
    every = sum(cpu_of(p) - before[p] for p in pids)
    split = dict.fromkeys(THREADS, 0.0)
    for p, (t0, x0) in threads_before.items():
        t1, x1 = threads_cpu(p)
        kind = "client" if p == client.proc.pid else "main" if p == worker_pid else "children"
        split[f"{kind}_t"] += t1 - t0
        split[f"{kind}_x"] += x1 - x0
    return {
        **split,
        "wall": wall,
        "worker": every,
        "worker_main": main,
        "worker_children": every - main,
        "client": cpu_of(client.proc.pid) - client_before,
        "redis": (cpu_of(server) - redis_before) if server else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--events-url",
        help="STEMTRACE_URL for the hooked pair, e.g. a black hole redis://127.0.0.1:9/0 (default: broker)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.5,
        help="seconds to wait after each run before reading CPU counters (> the flush interval)",
    )
    parser.add_argument(
        "--restarts",
        type=int,
        default=1,
        help="spread the runs over this many fresh worker/client pairs, alternating which mode goes "
        "first: averages out one process's luck (its layout, its core)",
    )
    parser.add_argument(
        "--aa", action="store_true", help="A/A check: leave the second pair unhooked too (the noise floor)"
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main()
        return
    samples: dict[str, list[dict[str, float]]] = {"unhooked": [], "hooked": []}
    restarts = max(1, args.restarts)
    for r in range(restarts):
        runs = args.runs // restarts + (1 if r < args.runs % restarts else 0)
        order = ("unhooked", "hooked") if r % 2 == 0 else ("hooked", "unhooked")
        for mode, got in measure(args, order, runs).items():
            samples[mode].extend(got)
    report(samples, args)


def measure(args: argparse.Namespace, order: tuple[str, ...], runs: int) -> dict[str, list[dict[str, float]]]:
    """``runs`` interleaved runs per mode on one fresh worker/client pair per mode."""
    hooked = not args.aa
    modes = {
        "unhooked": AppSettings(broker_url=args.redis, backend_url=args.redis, instrument=False),
        "hooked": AppSettings(broker_url=args.redis, backend_url=args.redis, instrument=hooked),
    }
    modes = {m: modes[m] for m in order}
    envs = {m: {"STEMTRACE_URL": args.events_url} if args.events_url and m == "hooked" else {} for m in modes}
    workers = {
        m: WorkerProcess(s, args.pool, concurrency=args.concurrency, env=envs[m]) for m, s in modes.items()
    }
    server = redis_pid() if "127.0.0.1" in args.redis or "localhost" in args.redis else None
    samples: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    clients: dict[str, Client] = {}
    try:
        for worker in workers.values():
            worker.start()
        clients = {m: Client(s, envs[m]) for m, s in modes.items()}
        for i in range(runs + 1):
            for mode in modes:
                proc = workers[mode].proc
                assert proc is not None
                sample = run(clients[mode], args.tasks, proc.pid, server, args.settle)
                if i > 0:  # the first round warms workers and clients up
                    samples[mode].append(sample)
    finally:
        for c in clients.values():
            c.close()
        for worker in workers.values():
            worker.stop()
        client = redis.Redis.from_url(args.redis)
        for settings in modes.values():
            keys = list(client.scan_iter(match=f"{settings.prefix}*"))
            if keys:
                client.delete(*keys)
    return samples


def interval(ratios: list[float], rounds: int = 2000) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of the median of ``ratios``: how far the reported
    median could move on this machine's noise with other rounds of the same length."""
    rnd = random.Random(1)
    medians = sorted(statistics.median(rnd.choices(ratios, k=len(ratios))) for _ in range(rounds))
    return medians[int(rounds * 0.025)], medians[int(rounds * 0.975) - 1]


def report(samples: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    def med(mode: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[mode])

    def total(s: dict[str, float]) -> float:
        return sum(s[p] for p in PARTS)

    print(
        f"{args.tasks} tasks per run, {args.runs} interleaved runs per mode over {max(1, args.restarts)} "
        f"worker/client pair(s), {args.pool} -c {args.concurrency}, Redis {args.redis}"
        + (f", hooked events to {args.events_url}" if args.events_url else "")
        + (" -- A/A CHECK: the 'hooked' pair is unhooked too" if args.aa else "")
    )
    for mode, runs in samples.items():
        walls = " ".join(f"{s['wall']:.3f}" for s in runs)
        cpu = "  ".join(f"{p} {med(mode, p):.3f}" for p in (*PARTS, *DETAIL))
        total_cpu = statistics.median(total(s) for s in runs)
        print(f"{mode:9s}: wall median {med(mode, 'wall'):.3f} s (runs {walls})")
        print(f"{'':9s}  CPU s median: {cpu}  total {total_cpu:.3f}")
    base, hooked = samples["unhooked"], samples["hooked"]
    print(f"ratio hooked/unhooked, wall (medians): {med('hooked', 'wall') / med('unhooked', 'wall'):.3f}x")
    pairs = [h["wall"] / u["wall"] for h, u in zip(hooked, base, strict=True)]
    print(f"ratio hooked/unhooked, wall (median of per-round ratios): {statistics.median(pairs):.3f}x")
    low, high = interval(pairs)
    print(f"  95% bootstrap interval of that median: {low:.3f}x .. {high:.3f}x")
    cpu_hooked = statistics.median(total(s) for s in hooked)
    cpu_base = statistics.median(total(s) for s in base)
    print(f"ratio hooked/unhooked, total CPU (medians): {cpu_hooked / cpu_base:.3f}x")
    cpu_pairs = [total(h) / total(u) for h, u in zip(hooked, base, strict=True)]
    low, high = interval(cpu_pairs)
    print(
        f"ratio hooked/unhooked, total CPU (median of per-round ratios): {statistics.median(cpu_pairs):.3f}x"
        f" (95% bootstrap interval {low:.3f}x .. {high:.3f}x)"
    )
    per_task = (cpu_hooked - cpu_base) / args.tasks
    print(f"added CPU per task, all processes: {per_task * 1e6:.1f} us")

    # Means, not medians: the tick counts are coarse (10 ms), and a sum over rounds is exact.
    def added(key: str) -> float:
        hooked_mean = statistics.fmean(s[key] for s in hooked)
        return (hooked_mean - statistics.fmean(s[key] for s in base)) / args.tasks

    parts = "  ".join(f"{k} {added(k) * 1e6:+.1f}" for k in (*PARTS, *THREADS))
    print(f"added CPU per task by part, us (mean; _t main threads, _x other threads): {parts}")


if __name__ == "__main__":
    main()
