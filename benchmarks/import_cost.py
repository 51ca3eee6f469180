"""Cost of ``import stemtrace`` on top of Celery: time and resident memory.

Each sample is a fresh interpreter that imports celery first (the user's app
already does), then measures ``import stemtrace`` and, separately, what
``stemtrace.init`` loads on first call. Targets: <= 15 ms, <= 3 MB RSS.

    python benchmarks/import_cost.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import json, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
import celery, celery.app, kombu
r0, t0 = rss(), time.perf_counter()
import stemtrace
t1, r1 = time.perf_counter(), rss()
from celery import Celery
app = Celery("bench", broker="inproc://bench")
t2 = time.perf_counter()
stemtrace.init(app, url="inproc://bench")
t3, r3 = time.perf_counter(), rss()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "import_rss": r1 - r0,
                  "init_ms": (t3 - t2) * 1e3, "init_rss": r3 - r1}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    samples = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
        samples.append(json.loads(out.stdout))

    def med(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    print(f"runs: {args.runs} fresh interpreters, python {sys.version.split()[0]}")
    print(
        f"import stemtrace (celery already imported): {med('import_ms'):.2f} ms median, "
        f"{med('import_rss') / 2**20:.2f} MiB RSS"
    )
    print(
        f"first stemtrace.init (loads the capture library): {med('init_ms'):.2f} ms median, "
        f"{med('init_rss') / 2**20:.2f} MiB RSS"
    )


if __name__ == "__main__":
    main()
