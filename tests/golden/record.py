"""Record the golden fixtures: every canvas on a real, instrumented Celery worker.

Not a test module (pytest does not collect it). Run it from the repository root with
the Python of the Celery version to record, Redis on ``STEMTRACE_TEST_REDIS``
(default ``redis://127.0.0.1:6379/0``)::

    PYTHONPATH=src:. .venv/bin/python tests/golden/record.py             # Celery 5.7
    PYTHONPATH=src:. .venv-celery53/bin/python tests/golden/record.py    # Celery 5.3
    PYTHONPATH=src:. .venv/bin/python tests/golden/record.py chord link  # some scenarios

Each scenario runs on a prefork worker (``-c 2``, Redis broker and Redis result
backend, except ``chord_unlock`` which needs a polling result backend and uses
``file://``). The task events it produced are written to
``tests/golden/fixtures/<scenario>__celery-<x.y.z>.json``: a JSON list of event dicts
exactly as captured (ids kept), sorted by ``(ts, src.inst, src.seq)``. Worker and
library-health events are left out; they belong to no workflow.

The recorder refuses to write a fixture whose events do not form exactly one
workflow (a leftover from an earlier scenario, or a missing link).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery
from celery import chain, chord, group
from tests.support import AppSettings, Recorder, TaskKit

from stemtrace.core.events import TASK_EVENT_TYPES, decode_event
from stemtrace.core.identity import UnionFind

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXTRA_TASKS = "tests.golden.golden_tasks"


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[TaskKit], Any]
    backend: str = "redis"  # "redis" or "file" (a polling backend: chord_unlock)
    settle_s: float = 1.5


def _on_error(t: TaskKit) -> Any:
    return t.app.signature("golden.on_error")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("single", lambda t: t.add.delay(1, 2)),
    Scenario("chain", lambda t: chain(t.add.s(1, 2), t.add.s(3), t.add.s(4)).apply_async()),
    Scenario(
        "chain_failing",
        lambda t: chain(t.add.s(1, 1), t.fail.si("step 2 failed"), t.add.s(3), t.add.s(4)).apply_async(),
    ),
    Scenario("group", lambda t: group(t.add.s(1, 1), t.add.s(2, 2)).apply_async()),
    Scenario("chord", lambda t: chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s()).apply_async()),
    Scenario(
        "chord_failing_member",
        lambda t: chord([t.add.s(1, 1), t.fail.si("header member failed")], t.tsum.s()).apply_async(),
    ),
    Scenario(
        "chain_group_upgrade",
        lambda t: chain(t.add.s(1, 1), group(t.add.s(1), t.add.s(2)), t.tsum.s()).apply_async(),
    ),
    Scenario(
        "group_of_chains",
        lambda t: group(chain(t.add.s(1, 1), t.add.s(2)), chain(t.add.s(3, 3), t.add.s(4))).apply_async(),
    ),
    Scenario(
        "chord_of_chords",
        lambda t: chord(
            [chain(t.add.s(1, 1), t.add.s(1)), chord([t.add.s(2, 2), t.add.s(3, 3)], t.tsum.s())],
            t.tsum.s(),
        ).apply_async(),
    ),
    Scenario(
        "chord_mid_chain",
        lambda t: chain(
            t.add.s(1, 1), chord([t.add.s(1), t.add.s(2)], t.tsum.s()), t.add.s(1000)
        ).apply_async(),
    ),
    Scenario(
        "link",
        lambda t: t.add.apply_async((1, 1), link=t.add.s(10), link_error=_on_error(t)),
    ),
    Scenario(
        "link_error",
        lambda t: t.fail.apply_async(("linked task failed",), link=t.add.s(10), link_error=_on_error(t)),
    ),
    Scenario("retry_recovers", lambda t: t.flaky.delay(2)),
    Scenario("retry_gives_up", lambda t: t.flaky.delay(10)),  # max_retries=5: 6 attempts
    Scenario("replace", lambda t: chain(t.replacer.s(5), t.add.s(7)).apply_async()),
    Scenario(
        "replace_with_chain",
        lambda t: chain(t.app.signature("golden.replace_with_chain", args=(5,)), t.add.s(7)).apply_async(),
    ),
    Scenario("spawner", lambda t: t.spawner.delay(3), settle_s=2.0),
    Scenario(
        "chord_unlock",
        # The slow member makes chord_unlock poll (retry) at least once.
        lambda t: chord([t.add.s(1, 1), t.sleeper.si(1.5)], t.tsum.s()).apply_async(),
        backend="file",
        settle_s=3.0,
    ),
)


def _sort_key(event: dict[str, Any]) -> tuple[float, str, int]:
    return (float(event["ts"]), str(event["src"]["inst"]), int(event["src"]["seq"]))


def workflows_of(events: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The workflows (connected components of task ids) the events form."""
    uf = UnionFind()
    task_ids: set[str] = set()
    for raw in events:
        event = decode_event(raw)
        uf.add_event(event)
        if event.task_id:
            task_ids.add(event.task_id)
    out: dict[str, set[str]] = {}
    for task_id in task_ids:
        out.setdefault(uf.find(task_id), set()).add(task_id)
    return out


def _recorder(backend: str, workdir: Path) -> Recorder:
    if backend == "file":
        results = workdir / "results"
        results.mkdir(parents=True, exist_ok=True)
        settings = AppSettings(backend_url=f"file://{results}")
    else:
        settings = AppSettings()
    rec = Recorder(pool="prefork", concurrency=2, settings=settings)
    rec.worker.extra_args = ("-I", EXTRA_TASKS)
    return rec


def record_all(names: set[str] | None) -> list[Path]:
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    written: list[Path] = []
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="st-golden-") as tmp:
        for backend in ("redis", "file"):
            batch = [s for s in chosen if s.backend == backend]
            if not batch:
                continue
            with _recorder(backend, Path(tmp)) as rec:
                for scenario in batch:
                    raw = rec.record(scenario.run, timeout_s=30.0, settle_s=scenario.settle_s)
                    events = sorted((e for e in raw if e.get("type") in TASK_EVENT_TYPES), key=_sort_key)
                    found = workflows_of(events)
                    if len(found) != 1:
                        sizes = sorted(len(ids) for ids in found.values())
                        raise SystemExit(f"{scenario.name}: {len(found)} workflows (task counts {sizes})")
                    path = FIXTURES / f"{scenario.name}__celery-{celery.__version__}.json"
                    path.write_text(json.dumps(events, indent=1, sort_keys=True) + "\n")
                    written.append(path)
                    print(f"{path.name}: {len(events)} events", flush=True)
    return written


def main(argv: list[str]) -> int:
    # The file-backend recorder builds a second app with the same task names in this
    # process; Celery 5.7 warns about it. The client only sends by name: harmless.
    warnings.filterwarnings("ignore", message=r"Task name .* is already registered")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    args = parser.parse_args(argv)
    known = {s.name for s in SCENARIOS}
    unknown = set(args.scenarios) - known
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {sorted(known)}")
    record_all(set(args.scenarios) or None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
