"""Parse the canvas summary a message carries (``data.canvas``, see docs/events.md).

The library summarises Celery's ``embed`` (chain/chord/callbacks/errbacks) into
small JSON ``Sig`` objects. Parsing is tolerant: a summary from a newer or buggy
sender never raises, unknown keys are ignored and malformed parts are dropped, so
one bad message cannot take a workflow page down.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SIG_TYPES = frozenset({"task", "chain", "group", "chord"})
_MAX_DEPTH = 64  # Celery itself recurses; a deeper summary is garbage, not a canvas


@dataclass(frozen=True, slots=True)
class Sig:
    """One signature of a canvas, as summarised by the library.

    ``type`` is ``task``, ``chain`` (``tasks`` in forward order), ``group`` (``id``
    is the group id, ``tasks`` the members) or ``chord`` (``id`` is the header
    group id, ``tasks`` the header, ``body`` the callback). A ``task`` may carry
    ``chord`` (the callback of the chord it is a header member of) and link
    ``callbacks``/``errbacks``.
    """

    type: str
    id: str | None = None
    name: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    tasks: tuple[Sig, ...] = ()
    body: Sig | None = None
    chord: Sig | None = None
    callbacks: tuple[Sig, ...] = ()
    errbacks: tuple[Sig, ...] = ()


@dataclass(frozen=True, slots=True)
class Canvas:
    """The designed future one message carries."""

    chain: tuple[Sig, ...] = ()  # the remaining chain steps, next step first
    chord: Sig | None = None  # the callback of the chord this task is a header member of
    callbacks: tuple[Sig, ...] = ()
    errbacks: tuple[Sig, ...] = ()
    truncated: bool = False

    @property
    def empty(self) -> bool:
        return not (self.chain or self.chord or self.callbacks or self.errbacks)


EMPTY_CANVAS = Canvas()


def _opt_str(value: Any) -> str | None:
    return value if value and type(value) is str else None


def _opt_int(value: Any) -> int | None:
    return value if type(value) is int else None  # bool is not an index


def parse_sig(raw: Any, _depth: int = 0) -> Sig | None:
    """One ``Sig`` from its JSON form, or ``None`` when it is not one."""
    if raw is None:
        return None  # the common case, checked first: this runs per message on a 10k graph
    if not isinstance(raw, (dict, Mapping)) or _depth > _MAX_DEPTH:
        return None
    kind = raw.get("type")
    if kind not in SIG_TYPES:
        # Tolerate a summary without "type": a bare {"id", "name"} is a task.
        if kind is None and ("id" in raw or "name" in raw):
            kind = "task"
        else:
            return None
    get = raw.get
    nested = _depth + 1
    # Only recurse into keys that are present: most Sigs are plain tasks.
    body, chord, tasks = get("body"), get("chord"), get("tasks")
    callbacks, errbacks = get("callbacks"), get("errbacks")
    return Sig(
        type=str(kind),
        id=_opt_str(get("id")),
        name=_opt_str(get("name")),
        group_id=_opt_str(get("group_id")),
        group_index=_opt_int(get("group_index")),
        tasks=_parse_list(tasks, nested) if tasks else (),
        body=parse_sig(body, nested) if body else None,
        chord=parse_sig(chord, nested) if chord else None,
        callbacks=_parse_list(callbacks, nested) if callbacks else (),
        errbacks=_parse_list(errbacks, nested) if errbacks else (),
    )


def _parse_list(raw: Any, depth: int) -> tuple[Sig, ...]:
    if not raw or not isinstance(raw, (list, tuple)):
        return ()
    out = []
    for item in raw:
        sig = parse_sig(item, depth)
        if sig is not None:
            out.append(sig)
    return tuple(out)


def parse_canvas(raw: Any) -> Canvas:
    """A message's canvas summary; an absent or malformed one is empty."""
    if not raw or not isinstance(raw, (dict, Mapping)):
        return EMPTY_CANVAS
    return Canvas(
        chain=_parse_list(raw.get("chain"), 0),
        chord=parse_sig(raw.get("chord")),
        callbacks=_parse_list(raw.get("callbacks"), 0),
        errbacks=_parse_list(raw.get("errbacks"), 0),
        truncated=bool(raw.get("truncated", False)),
    )


def iter_sigs(sig: Sig) -> Iterator[Sig]:
    """Every signature inside ``sig`` (itself included), depth first."""
    stack = [sig]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.tasks)
        for child in (current.body, current.chord):
            if child is not None:
                stack.append(child)
        stack.extend(current.callbacks)
        stack.extend(current.errbacks)


def canvas_sigs(canvas: Canvas) -> Iterator[Sig]:
    """Every signature a canvas mentions."""
    roots: list[Sig] = [*canvas.chain, *canvas.callbacks, *canvas.errbacks]
    if canvas.chord is not None:
        roots.append(canvas.chord)
    for root in roots:
        yield from iter_sigs(root)


def canvas_ids(canvas: Canvas) -> set[str]:
    """Every task and group id a canvas mentions (for workflow identity)."""
    ids: set[str] = set()
    for sig in canvas_sigs(canvas):
        if sig.id:
            ids.add(sig.id)
        if sig.group_id:
            ids.add(sig.group_id)
    return ids


def entry_ids(sig: Sig) -> list[str]:
    """The task ids that run first when ``sig`` is applied (they receive its input)."""
    if sig.type == "task":
        return [sig.id] if sig.id else []
    if sig.type == "chain":
        return entry_ids(sig.tasks[0]) if sig.tasks else []
    # group, and a chord's header: every member starts at once.
    out: list[str] = []
    for member in sig.tasks:
        out.extend(entry_ids(member))
    if sig.type == "chord" and not sig.tasks and sig.body is not None:
        return entry_ids(sig.body)  # an empty header calls the body straight away
    return out
