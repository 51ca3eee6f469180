"""Instructions the server spends ingesting the realistic recording: repeatable on a noisy host.

ADR 0008 keeps a fast path only if it buys at least 2% of end-to-end ingest. Ingest CPU time
on a shared 2-core host moves by ±10% between identical runs, which hides a 2% difference; an
instruction count under ``valgrind --tool=callgrind`` does not (identical runs agree to
0.01%). So this runs, each in its own interpreter under callgrind:

- ``relabel``: load the recording and relabel copies of it (the baseline);
- ``ingest``: the same, then decode every payload and ingest the events into a fresh SQLite
  store in 5,000-event batches in recorded order, as the server catches up a backlog
  (``Store.prepare`` then ``apply_begin`` and its commit).

``ingest`` minus ``relabel`` is the decode, plan and write of every event (the broker read is
left out: it is not in the fast paths). The store gets a fixed clock (50,000 events/s from the
start), not the wall clock: under valgrind a run takes minutes, and rules that read the clock
(a workflow settles 5 minutes after its last event arrived) would otherwise do more work in a
slower run.

Compare two source trees (a copy with one fast path switched to its reference path)::

    python benchmarks/ingest_instructions.py                       # this tree's src/
    python benchmarks/ingest_instructions.py --src /tmp/variant/src

One run of each takes a few minutes (valgrind is some fifty times slower). ``--recording`` takes
another recording (``benchmarks/record.py``) and ``--batch`` the events per batch; the default is
the committed sample, which has the recorded backlog (a task's later events in a later batch).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORDING = HERE / "recordings" / "sample-1500.jsonl.gz"
BATCH = 5000


def _child(mode: str, copies: int, recording: str, batch: int) -> None:
    """What runs under valgrind: relabel ``copies`` of the recording, then (``ingest``) ingest them."""
    from replay import Relabel, first_ns, load
    from stemtrace.server.jsonfast import decode_payload
    from stemtrace.server.store import open_store

    _, payloads = load(recording)
    base, now = first_ns(payloads), time.time_ns()
    relabelled = []
    for copy in range(copies):
        relabel = Relabel(f"c{copy}", now - base - 3600 * 10**9 + copy * 10**9)
        relabelled.extend(relabel(p) for p in payloads)
    if mode == "relabel":
        return
    events = [e for p in relabelled for e in decode_payload(p)[0]]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/store.db")
        start = now / 1e9
        for i in range(0, len(events), batch):
            chunk = events[i : i + batch]
            store.apply_begin(chunk, {}, start + i / 50_000, prepared=store.prepare(chunk)).result()
        store.close()
    print(len(events), file=sys.stderr)


def _instructions(src: Path, mode: str, copies: int, recording: str, batch: int) -> tuple[int, int]:
    """(instructions, events) of one run of ``mode`` under callgrind."""
    with tempfile.TemporaryDirectory() as out:
        path = os.pathsep.join([str(src), str(ROOT), str(HERE)])
        env = {**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/cg.%p",
                "--quiet",
                sys.executable,
                __file__,
                "--child",
                mode,
                "--copies",
                str(copies),
                "--recording",
                recording,
                "--batch",
                str(batch),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        total = 0
        for f in Path(out).glob("cg.*"):
            for line in f.read_text().splitlines():
                if line.startswith("summary:"):
                    total += int(line.split()[1])
                    break
        events = int(done.stderr.strip().splitlines()[-1]) if mode == "ingest" else 0
        return total, events


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to measure")
    parser.add_argument("--copies", type=int, default=2, help="relabelled copies of the recording")
    parser.add_argument("--recording", default=str(RECORDING), help="a recording (benchmarks/record.py)")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per batch (the server's default)")
    parser.add_argument("--child", choices=["relabel", "ingest"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.copies, args.recording, args.batch)
        return
    baseline, _ = _instructions(args.src, "relabel", args.copies, args.recording, args.batch)
    total, events = _instructions(args.src, "ingest", args.copies, args.recording, args.batch)
    ingest = total - baseline
    print(f"src {args.src}: {events} events, {ingest:,} instructions ({ingest / events:,.0f} per event)")


if __name__ == "__main__":
    main()
