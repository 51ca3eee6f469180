"""Summarise the canvas Celery embeds in a task message.

The first message of a workflow carries its designed future (``embed``: the
remaining chain *reversed*, the chord callback, link and errback signatures,
all with ids already assigned except link callbacks). The server draws planned
steps from it, so we keep ids, names and shape and never any argument value,
within ``max_nodes`` signatures. See docs/events.md, "canvas".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_NODES = 500


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.left = nodes
        self.truncated = False

    def take(self) -> bool:
        if self.left <= 0:
            self.truncated = True
            return False
        self.left -= 1
        return True


def _opts(sig: Mapping[str, Any]) -> Mapping[str, Any]:
    options = sig.get("options")
    return options if isinstance(options, Mapping) else {}


def _members(value: Any) -> list[Any]:
    """Sigs inside a chain/group/chord header, whatever shape they arrive in."""
    if isinstance(value, Mapping):  # a chord header given as a group signature
        value = (value.get("kwargs") or {}).get("tasks", value.get("tasks"))
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def _summary(sig: Any, budget: _Budget) -> dict[str, Any] | None:
    if not isinstance(sig, Mapping) or not budget.take():
        return None
    options = _opts(sig)
    raw_kwargs = sig.get("kwargs")
    kwargs: Mapping[str, Any] = raw_kwargs if isinstance(raw_kwargs, Mapping) else {}
    kind = sig.get("subtask_type") or "task"
    node: dict[str, Any] = {
        "type": kind,
        "id": options.get("task_id"),
        "name": sig.get("task"),
        "group_id": options.get("group_id"),
        "group_index": options.get("group_index"),
    }
    if kind in ("chain", "group"):
        node["tasks"] = _list(_members(kwargs.get("tasks")), budget)
    elif kind == "chord":
        header = kwargs.get("header")
        node["tasks"] = _list(_members(header), budget)
        if node["id"] is None and isinstance(header, Mapping):
            node["id"] = _opts(header).get("task_id")
        node["body"] = _summary(kwargs.get("body"), budget)
    chord = options.get("chord")
    if chord is not None:
        node["chord"] = _summary(chord, budget)
    for key, out in (("link", "callbacks"), ("link_error", "errbacks")):
        linked = options.get(key)
        if linked:
            node[out] = _list(list(linked) if isinstance(linked, (list, tuple)) else [linked], budget)
    return node


def _list(sigs: list[Any], budget: _Budget) -> list[dict[str, Any]]:
    out = []
    for sig in sigs:
        node = _summary(sig, budget)
        if node is not None:
            out.append(node)
    return out


# The key ``signals`` adds to the embed of a task protocol 1 message (see :func:`_linked_chain`).
PROTOCOL_1 = "protocol_1"


def _chain_step(sig: Any) -> bool:
    """A signature a chain froze before linking it: it has an id and a reply-to queue, which
    ``Signature.freeze`` sets and a user's ``link=`` signature lacks until it is applied."""
    options = _opts(sig) if isinstance(sig, Mapping) else {}
    return bool(options.get("task_id")) and bool(options.get("reply_to"))


def _linked_chain(callbacks: list[Any]) -> tuple[list[Any], list[Any]]:
    """A task protocol 1 message's callbacks as ``(chain, callbacks)``.

    Under protocol 1 Celery sends a chain's next steps as link callbacks, each step linking the
    one after it (``celery.canvas._chain.prepare_steps`` with ``use_link``), where protocol 2
    lists them in the message's ``chain``. Each link that is the one frozen step among a task's
    links is unrolled into the forward chain; the others stay callbacks of their task.
    """
    chain: list[Any] = []
    own = callbacks
    links = callbacks
    for _ in range(MAX_NODES):
        steps = [sig for sig in links if _chain_step(sig)]
        if len(steps) != 1:
            break
        step = steps[0]
        others = [sig for sig in links if sig is not step]
        if chain:  # the previous step keeps its other links
            chain[-1] = {**chain[-1], "options": {**_opts(chain[-1]), "link": others}}
        else:
            own = others
        chain.append(step)
        nxt = _opts(step).get("link") or []
        links = list(nxt) if isinstance(nxt, (list, tuple)) else [nxt]
    if chain:
        chain[-1] = {**chain[-1], "options": {**_opts(chain[-1]), "link": links}}
    return chain, own


def summarize(embed: Any, max_nodes: int = MAX_NODES) -> dict[str, Any] | None:
    """The ``canvas`` field for an embed, or ``None`` when the message carries no structure."""
    if not isinstance(embed, Mapping):
        return None
    chain = embed.get("chain") or []
    chord = embed.get("chord")
    callbacks = embed.get("callbacks") or []
    errbacks = embed.get("errbacks") or []
    if embed.get(PROTOCOL_1) and not chain and isinstance(callbacks, (list, tuple)):
        forward_steps, callbacks = _linked_chain(list(callbacks))
        chain = list(reversed(forward_steps))  # as protocol 2 stores it: reversed
    if not (chain or chord or callbacks or errbacks):
        return None
    budget = _Budget(max_nodes)
    # Celery stores the remaining chain reversed so a worker can ``pop()`` the next
    # step; we send it in forward order, next step first.
    forward = list(reversed(chain)) if isinstance(chain, (list, tuple)) else []
    return {
        "chain": _list(forward, budget),
        "chord": _summary(chord, budget) if chord else None,
        "callbacks": _list(list(callbacks), budget),
        "errbacks": _list(list(errbacks), budget),
        "truncated": budget.truncated,
    }
