"""The events a store keeps, read from its task rows (each row's ``detail`` holds its task's
events, ``store/body.py``): for tests that count what was stored, on any connection."""

from __future__ import annotations

from typing import Any

from stemtrace.server.store.body import load_events


def event_keys(conn: Any) -> list[tuple[str, int]]:
    """The ``(inst, seq)`` of every stored event, one per event kept (duplicates included)."""
    return [
        (e["src"]["inst"], int(e["src"]["seq"]))
        for task_id, detail in conn.execute("SELECT id, detail FROM tasks").fetchall()
        for e in load_events(task_id, bytes(detail))
    ]
