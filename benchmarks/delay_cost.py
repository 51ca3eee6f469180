"""Added cost of ``.delay()`` when stemtrace is installed, on the real Redis.

Rounds alternate unhooked and hooked (install/uninstall between rounds) in one
process, so both modes see the same machine state; each call is timed on its
own and the medians are compared. Each hooked round starts warm: its first calls (which start
the publisher thread and open its connection, once per process) are not timed.
Target: <= 20 us added per call.

    python benchmarks/delay_cost.py [--redis redis://127.0.0.1:6379/0] [--calls 500] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

import redis  # noqa: E402
from celery import Celery  # noqa: E402

import stemtrace.capture.install as capture  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    prefix = f"stbench_{uuid.uuid4().hex[:8]}:"
    app = Celery("bench", broker=args.redis, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": prefix}
    app.conf.task_default_queue = "bench"

    @app.task(name="bench.add", ignore_result=True)
    def add(x: int, y: int) -> int:
        return x + y

    for i in range(200):  # warm the connection pool and code paths
        add.delay(i, i)
    timings: dict[str, list[float]] = {"unhooked": [], "hooked": []}
    for _ in range(args.rounds):
        for mode in ("unhooked", "hooked"):
            if mode == "hooked":
                capture.install(app)
                # Steady state, as in a long-running process: the publisher thread and its
                # connection exist before the timed calls (their one-time start is not per call).
                for i in range(50):
                    add.delay(i, i)
                capture.flush(5.0)
            for i in range(args.calls):
                start = time.perf_counter_ns()
                add.delay(i, i)
                timings[mode].append((time.perf_counter_ns() - start) / 1000)
            if mode == "hooked":
                capture.uninstall(5.0)
    client = redis.Redis.from_url(args.redis)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    base = statistics.median(timings["unhooked"])
    hooked = statistics.median(timings["hooked"])
    n = args.calls * args.rounds
    print(f"{n} .delay() calls per mode, {args.rounds} interleaved rounds, Redis broker {args.redis}")
    print(f"unhooked: median {base:.1f} us, p90 {statistics.quantiles(timings['unhooked'], n=10)[-1]:.1f} us")
    print(f"hooked:   median {hooked:.1f} us, p90 {statistics.quantiles(timings['hooked'], n=10)[-1]:.1f} us")
    print(f"added per .delay(): {hooked - base:+.1f} us (median difference)")


if __name__ == "__main__":
    main()
