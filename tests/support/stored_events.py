"""The events a store keeps, read from its task rows (each row's ``detail`` holds its task's
events, ``store/body.py``): for tests that count what was stored, on any connection."""

from __future__ import annotations

from typing import Any

from stemtrace.server.store.body import load_events
from stemtrace.server.store.task_row import IDS


def event_keys(conn: Any) -> list[tuple[str, int]]:
    """The ``(inst, seq)`` of every stored event, one per event kept (duplicates included)."""
    return [
        (e["src"]["inst"], int(e["src"]["seq"]))
        for *ids, detail in conn.execute(f"SELECT {IDS}, detail FROM tasks").fetchall()
        for e in load_events(ids, bytes(detail))
    ]
