"""Instructions the library adds per task, counted by valgrind: repeatable on a noisy machine.

Wall and CPU time of ``overhead.py`` move by several percent between identical runs on a
shared 2-core host; an instruction count does not. Each role of a task's life runs in its own
interpreter under ``valgrind --tool=callgrind``, unhooked and hooked, once with a warm-up only
and once with ``--tasks`` more tasks; the difference, divided by the tasks, is that role's
cost per task, and the hooked figure minus the unhooked one is what the library adds:

- ``client``: ``add.delay(i, i)`` on Celery's in-memory broker (signal dispatch and our
  ``before``/``after_task_publish`` handlers; the send itself is Celery's and kombu's);
- ``child``: Celery's tracer runs the task, as in a pool child (``task_prerun``/``task_postrun``);
- ``main``: ``task_received`` sent as the worker's main process sends it, for a stand-in
  request with the attributes Celery's ``Request`` has.

With ``--publish`` the publisher thread's work is counted too: the buffered events are built,
finished and encoded into batches every 100 tasks (``Emitter._take``), as the thread does,
but not sent (the transport is not what is measured here). Run in a quiet or busy machine alike:

    python benchmarks/instructions.py [--tasks 2000] [--roles client,child,main] [--publish]

``valgrind`` must be installed (Debian: ``apt-get install valgrind``). Counts are of the whole
interpreter (C code included) with ``PYTHONHASHSEED=0``, so a run repeats to the instruction.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM = 200  # tasks run before the counted ones in both runs, so one-time costs cancel out
ROLES = ("client", "child", "main")
_EMPTY_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def role_main(role: str, count: int, hooked: bool, publish: bool) -> None:
    """One measured interpreter: ``count`` tasks of ``role``."""
    sys.path.insert(0, str(ROOT / "src"))
    from celery import Celery, signals
    from celery.app.trace import build_tracer

    app = Celery("bench", broker="memory://", set_as_current=True)
    app.conf.task_ignore_result = True

    @app.task(name="bench.add")
    def add(x: int, y: int = 0) -> int:
        return x + y

    app.finalize()
    task: Any = app.tasks["bench.add"]
    emitter: Any = None
    if hooked:
        import stemtrace
        from stemtrace.capture import state

        # The publisher thread sleeps through the run: the buffer is drained below instead.
        stemtrace.init(app, url="memory://", flush_interval=3600, buffer_size=1_000_000)
        current = state.current()
        assert current is not None
        if role != "client":
            current.set_role("child" if role == "child" else "main", "bench@host")
        emitter = current.emitter()
    ids = [str(uuid.UUID(int=i + 1)) for i in range(count)]
    tracer = build_tracer("bench.add", task, app=app, eager=False, propagate=False)
    for i, task_id in enumerate(ids):
        if role == "client":
            task.delay(i, i)
        elif role == "child":
            request = {"id": task_id, "root_id": task_id, "parent_id": None, "group": None, "retries": 0}
            tracer(task_id, (i, i), {}, {**request, "hostname": "bench@host", "is_eager": False})
        else:
            request_dict = {"id": task_id, "task": "bench.add", "root_id": task_id, "retries": 0}
            request = SimpleNamespace(
                id=task_id,
                name="bench.add",
                request_dict=request_dict,
                delivery_info={"exchange": "", "routing_key": "celery", "redelivered": False},
                _payload=((i, i), {}, dict(_EMPTY_EMBED)),
            )
            signals.task_received.send(sender=None, request=request)
        if emitter is not None and i % 100 == 99:
            if publish:
                while emitter.buffer:
                    emitter._take()
            else:
                emitter.buffer.clear()


def count_instructions(role: str, tasks: int, hooked: bool, publish: bool) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--role",
        role,
        "--count",
        str(tasks),
        *(["--hooked"] if hooked else []),
        *(["--publish"] if publish else []),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--publish", action="store_true", help="count the publisher thread's work too")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hooked", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role_main(args.role, args.count, args.hooked, args.publish)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    roles = [r for r in args.roles.split(",") if r]
    runs = [(r, n, h) for r in roles for h in (False, True) for n in (WARM, WARM + args.tasks)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(
            zip(runs, pool.map(lambda run: count_instructions(*run, args.publish), runs), strict=True)
        )
    print(
        f"instructions per task, {args.tasks} tasks" + (", publisher work included" if args.publish else "")
    )
    total = 0.0
    for role in roles:
        per = {
            h: (counts[(role, WARM + args.tasks, h)] - counts[(role, WARM, h)]) / args.tasks
            for h in (False, True)
        }
        added = per[True] - per[False]
        total += added
        print(f"{role:7s} unhooked {per[False]:>10,.0f}  hooked {per[True]:>10,.0f}  added {added:>8,.0f}")
    print(f"added per task, all roles: {total:,.0f}")


if __name__ == "__main__":
    main()
