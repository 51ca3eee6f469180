"""How ``stemtrace server`` tunes its own process for ingest: shorter GIL switches, a quieter
garbage collector. Functions the CLI (and the benchmarks) call; an application that embeds the
server keeps its own settings.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.001  # see ``short_gil_switches``
GC_YOUNG_THRESHOLD = 10_000  # see ``quiet_gc``


def short_gil_switches() -> None:
    """Hand the GIL over after 1 ms instead of Python's 5.

    The commit thread takes the GIL back for a moment after each call into the database;
    while the ingest thread plans the next batch, every such moment waits out a switch
    interval. The API's threads answer sooner under ingest load too. ``stemtrace server``
    calls this for its own process; an application that embeds the server keeps its own.
    """
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


def quiet_gc() -> None:
    """Collect garbage less often, and never walk what startup built again.

    A batch's events stay alive until it commits, so with Python's defaults (a young
    collection every 700 allocations, a full one whenever a quarter of the old heap is new)
    each one is scanned several times, and every full collection also walks the tens of
    thousands of objects the imports and the app built. Freezing those and collecting the
    young generation every 10,000 allocations: ingest +9-11% (docs/benchmarks-server.md).
    ``stemtrace server`` calls this once its app is built; an embedding application keeps its own.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:  # 0: the application turned collection off
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
