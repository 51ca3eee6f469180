"""The demo's workload, run for real: the Workflows list and every workflow page agree.

``stemtrace demo`` runs its embedded Celery worker, the library and the server on a store
given here, with every kind of workflow it promises (chains, groups, chords, nested
canvases, retries, failures, revokes, time limits...). Once it stopped, every workflow's
list row (rolled up at ingest) and its page (the graph built from the stored tasks)
must say the same state, name, task count and counts, and Celery's plumbing must never
be a workflow's name.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from stemtrace.core.rollup import PLUMBING_NAMES
from stemtrace.core.workflow import build_workflow
from stemtrace.server.store import WorkflowQuery, open_store

CLI = "from stemtrace.cli import main; main()"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def test_demo_workflows_agree_between_list_and_page(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_")}
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "demo", "--no-open", "--port", str(_free_port()),
         "--rate", "40", "--duration", "25", "--store", url],
        capture_output=True, text=True, env={**env, "PYTHONUNBUFFERED": "1"}, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    store = open_store(url)
    try:
        rows = store.list_workflows(WorkflowQuery(limit=1000)).items
        assert len(rows) >= 20, len(rows)
        states = {row.state for row in rows}
        assert {"SUCCESS", "FAILURE"} <= states, states
        wrong = []
        for row in rows:
            page = build_workflow(row.id, store.workflow_skeletons(row.id))
            listed = (row.state, row.name, row.task_count, _nonzero(row.counts))
            shown = (page.state.value, page.name, page.task_count, _nonzero(page.counts))
            if listed != shown:
                wrong.append(f"{row.id}: list {listed} != page {shown}")
            if row.name in PLUMBING_NAMES:
                wrong.append(f"{row.id}: named {row.name}")
        assert wrong == []
    finally:
        store.close()
