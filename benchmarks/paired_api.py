"""Two servers measured at the same moment: this checkout's and another's (``--before``).

On a host shared with other work, runs that alternate see different loads, and the API's
p95 with 20 clients follows the load more than the code. Here both servers run at once, each
read by its own 20 pausing clients (``replay.Clients``, in a client process of its own), so
both see the same load; what differs is the code. Without ``--recording`` both serve ``--store``
read-only (``--no-ingest``); with it, each also replays its own relabelled copy of the
recording from its own stream into its own empty SQLite store, ingest in its own process.
Prints per side: p50/p95 overall and per path, the server's CPU per request (both of its
processes), and with a recording its events/s and events per CPU-second.

    PYTHONPATH=src:. python benchmarks/paired_api.py --before /path/to/old/checkout \\
        --store sqlite:////tmp/fill.db
    PYTHONPATH=src:. python benchmarks/paired_api.py --before /path/to/old/checkout \\
        --recording /tmp/rec.jsonl.gz --clients 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import replay as r

HERE = Path(__file__).resolve().parent.parent
CLIENT = """
import json, sys, time
from replay import Clients
with Clients(sys.argv[1], int(sys.argv[2]), 1.0) as clients:
    time.sleep(float(sys.argv[3]))
print(json.dumps(clients.summary()))
"""


def _cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the ingest process)."""
    return r._proc(pid)[0]


def _env(checkout: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{checkout / 'src'}:{HERE}:{HERE / 'benchmarks'}"}


def read_only(args: argparse.Namespace, sides: dict[str, Path]) -> dict[str, dict[str, Any]]:
    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for label, checkout in sides.items():
            port = r._free_port()
            cmd = [sys.executable, "-c", "from stemtrace.cli import main; main()", "server", "--no-ingest"]
            cmd += ["--store", args.store, "--port", str(port)]
            quiet = subprocess.DEVNULL
            proc = subprocess.Popen(cmd, env=_env(checkout), stdout=quiet, stderr=quiet)
            base = f"http://127.0.0.1:{port}"
            procs[label] = (proc, base)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    r._get(base + "/api/health")
                    break
                except OSError:
                    time.sleep(0.2)
        cpu0 = {label: _cpu(p.pid) for label, (p, _) in procs.items()}
        readers = {
            label: subprocess.Popen(
                [sys.executable, "-c", CLIENT, base, str(args.clients), str(args.seconds)],
                env=_env(HERE),
                stdout=subprocess.PIPE,
            )
            for label, (_, base) in procs.items()
        }
        out = {label: json.loads(reader.communicate()[0]) for label, reader in readers.items()}
        for label, (proc, _) in procs.items():
            out[label]["server_cpu_ms_per_request"] = round(
                (_cpu(proc.pid) - cpu0[label]) * 1000 / max(out[label]["requests"], 1), 2
            )
        return out
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(30)


def ingesting(args: argparse.Namespace, sides: dict[str, Path]) -> dict[str, dict[str, Any]]:
    from record import load

    _, payloads = load(args.recording)
    events, first = r.count_events(payloads), r.first_ns(payloads)
    servers: dict[str, tuple[r.Server, str]] = {}
    out: dict[str, dict[str, Any]] = {}
    saved = os.environ.get("PYTHONPATH", "")
    try:
        for label, checkout in sides.items():
            os.environ["PYTHONPATH"] = _env(checkout)["PYTHONPATH"]  # the server's subprocess
            store = f"sqlite:////tmp/paired-{label}-{uuid.uuid4().hex[:8]}.db"
            servers[label] = (r.Server(store, f"paired.{uuid.uuid4().hex[:8]}"), store)
        os.environ["PYTHONPATH"] = saved

        def run(label: str) -> None:
            batch = list(map(r.Relabel(f"paired-{label}", time.time_ns() - first), payloads))
            out[label] = servers[label][0].ingest(batch, events, args.clients, 1.0)

        threads = [threading.Thread(target=run, args=(label,)) for label in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.environ["PYTHONPATH"] = saved
        for server, store in servers.values():
            server.stop()
            r.drop_store(store)
    return out


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--before", type=Path, required=True, help="the other checkout (its src/ is used)")
    parser.add_argument("--store", default="", help="the store both serve read-only (without --recording)")
    parser.add_argument("--recording", default="", help="replay this recording into both (ingest on)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="read-only: how long the clients run")
    args = parser.parse_args()
    sides = {"before": args.before.resolve(), "after": HERE}
    load = Path("/proc/loadavg").read_text().split()[:3]
    results = ingesting(args, sides) if args.recording else read_only(args, sides)
    for label, result in results.items():
        print(json.dumps({"bench": "paired_api", "side": label, "load_average": load, **result}), flush=True)


if __name__ == "__main__":
    main()
