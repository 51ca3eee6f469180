"""Complete search (``q``) on SQLite and PostgreSQL: old and new tasks, every part of the syntax.

One store of 5,500+ tasks per engine: the tasks searched for sit both *behind* more than 5,000
newer ones (the old text-scan window missed those) and at the top. Expected answers are
derived from how the store was filled, never from the store's own search.
"""

from __future__ import annotations

import random
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from server_events import EventFactory

from stemtrace.core.events import Event
from stemtrace.core.states import TaskState
from stemtrace.server.store import SqlStore, TaskQuery, search_plan

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = 1_790_100_000.0
FILLERS = 5_500
OLD_INV = "c0ffee11-2222-4333-8444-555566667777"
OLD_FAIL = "c0ffab00-0000-4000-8000-000000000001"
DECOY = "dec0y000-0000-4000-8000-000000000002"
NEW_INV = "beef0000-0000-4000-8000-000000000003"
SPECIAL = "proj.special"


def _fill(store: SqlStore) -> tuple[EventFactory, list[str]]:
    """Old specials at t=0..3, fillers at t=10.., new specials after them. Filler documents hold
    no word a test searches for and no hex-only word, so id prefixes match only by id."""
    f = EventFactory()
    events: list[Event] = []
    events += f.run(
        OLD_INV,
        SPECIAL,
        0,
        args=["invoice", "inv7781"],
        kwargs={"customer": "acme corp", "n": 42, "flag": True, "note": "line one\nline two"},
    )
    events[-1] = f.event(
        "task.succeeded", OLD_INV, SPECIAL, 0.5, runtime=0.3, result={"status": "shipped to Lisbon"}
    )
    events += [
        f.event("task.published", OLD_FAIL, SPECIAL, 1, root_id=OLD_FAIL, queue="db", args=["sync"]),
        f.event("task.started", OLD_FAIL, SPECIAL, 1.2),
        f.event(
            "task.failed",
            OLD_FAIL,
            SPECIAL,
            1.5,
            exception_type="ConnectionError",
            exception="host db-primary unreachable (NEAR timeout)",
            runtime=0.3,
        ),
    ]
    # Its arguments spell "customer globex" but its kwargs do not hold customer=globex.
    events += f.run(DECOY, SPECIAL, 2, args=["customer", "globex"], kwargs={})
    rnd = random.Random(21)
    fillers = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(FILLERS)]
    for i, tid in enumerate(fillers):
        events.append(
            f.event(
                "task.published",
                tid,
                "proj.fill",
                10 + i * 0.01,
                root_id=tid,
                queue="celery",
                args=["filler", f"row{i}"],
                kwargs={"shard": f"s{i % 7}"},
            )
        )
    events += f.run(NEW_INV, SPECIAL, 100, args=["invoice", "inv9000"], kwargs={"customer": "globex"})
    for start in range(0, len(events), 2000):
        store.apply(events[start : start + 2000], {}, NOW)
    return f, fillers


@pytest.fixture
def filled(store: SqlStore) -> Iterator[tuple[SqlStore, EventFactory, list[str]]]:
    f, fillers = _fill(store)
    yield store, f, fillers


def _all(store: SqlStore, limit: int = 50, **kw: Any) -> list[str]:
    """Every page of the query; asserts pages are full or final (never a short page with a cursor)."""
    got: list[str] = []
    cursor = None
    for _ in range(10_000):
        page = store.list_tasks(TaskQuery(limit=limit, cursor=cursor, **kw))
        got += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return got
        assert len(page.items) == limit, "a page with a next cursor must be full"
    raise AssertionError("did not end")


def _q(store: SqlStore, q: str, **kw: Any) -> list[str]:
    return _all(store, q=q, **kw)


def test_words_in_args_kwargs_result_and_exception_old_and_new(
    filled: tuple[SqlStore, EventFactory, list[str]],
) -> None:
    store, _, _ = filled
    assert _q(store, "invoice") == [NEW_INV, OLD_INV]
    assert _q(store, "INVOICE") == [NEW_INV, OLD_INV]
    assert _q(store, "lisbon") == [OLD_INV]  # result
    assert _q(store, "shipped lisbon") == [OLD_INV]  # every word, any order
    assert _q(store, "unreachable") == [OLD_FAIL]  # exception message
    assert _q(store, "ConnectionError") == [OLD_FAIL]  # exception type
    assert _q(store, "acme") == [OLD_INV]  # kwargs value
    assert _q(store, "two") == [OLD_INV]  # "line one\nline two": a newline splits words
    assert _q(store, "inv7781") == [OLD_INV]
    assert _q(store, "invoice nowhere") == []
    assert _q(store, "lisb") == []  # words, not substrings


def test_phrases(filled: tuple[SqlStore, EventFactory, list[str]]) -> None:
    store, _, _ = filled
    assert _q(store, '"acme corp"') == [OLD_INV]
    assert _q(store, '"corp acme"') == []
    assert _q(store, '"shipped to lisbon" invoice') == [OLD_INV]
    assert _q(store, '"db-primary unreachable"') == [OLD_FAIL]
    assert _q(store, '"acme corp') == [OLD_INV]  # an unbalanced quote runs to the end


def test_key_value_on_kwargs(filled: tuple[SqlStore, EventFactory, list[str]]) -> None:
    store, _, _ = filled
    assert _q(store, "customer=globex") == [NEW_INV]  # not DECOY, whose args spell the words
    assert _q(store, 'customer="acme corp"') == [OLD_INV]
    assert _q(store, "customer=acme") == []  # the whole value
    assert _q(store, "n=42") == [OLD_INV]
    assert _q(store, "n=42.0") == [OLD_INV]
    assert _q(store, "n=4.2e1") == [OLD_INV]
    assert _q(store, "n=43") == []
    assert _q(store, "flag=true") == [OLD_INV]
    assert _q(store, "flag=1") == []
    assert _q(store, "customer=globex invoice") == [NEW_INV]
    shard3 = _q(store, "s3", name="proj.fill", limit=1000)
    assert _q(store, "shard=s3", name="proj.fill", limit=1000) == shard3
    assert len(_q(store, "shard=s3", limit=1000)) == len(range(3, FILLERS, 7))


def test_exclusion(filled: tuple[SqlStore, EventFactory, list[str]]) -> None:
    store, _, _ = filled
    assert _q(store, "invoice -globex") == [OLD_INV]
    assert _q(store, 'invoice -"shipped to lisbon"') == [NEW_INV]
    assert _q(store, "-filler", name=SPECIAL) == [NEW_INV, DECOY, OLD_FAIL, OLD_INV]
    assert _q(store, "-filler -invoice", name=SPECIAL) == [DECOY, OLD_FAIL]
    assert _q(store, "-invoice", states=(TaskState.SUCCESS,)) == [DECOY]


def test_id_prefixes_of_every_length_reach_old_tasks(
    filled: tuple[SqlStore, EventFactory, list[str]],
) -> None:
    store, _, fillers = filled
    everything = _all(store, limit=1000)
    assert len(everything) == FILLERS + 4
    for prefix in ("c", "c0", "c0f", "c0ff", "c0ffee", "c0ffee11", "c0ffee11-2222", OLD_INV, "8", "80"):
        expected = [t for t in everything if t.startswith(prefix)]
        assert expected, prefix
        assert _q(store, prefix, limit=50) == expected, prefix
    assert _q(store, OLD_INV.upper()) == []  # ids are exact; words are not
    assert _q(store, "dec0y") == [DECOY]
    # An id prefix with other filters, and an exclusion applied to the id matches too.
    assert _q(store, "c0ff", states=(TaskState.FAILURE,)) == [OLD_FAIL]
    assert _q(store, "c0ff", queue="db") == [OLD_FAIL]
    assert fillers[0] in _q(store, fillers[0][:6], name="proj.fill")


def test_cursors_and_combined_filters(
    filled: tuple[SqlStore, EventFactory, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, f, fillers = filled
    newest_first = fillers[::-1]
    # A dense word (every filler): pages of 50 continue exactly, from any depth.
    assert _q(store, "filler", limit=500) == newest_first
    deep = store.list_tasks(TaskQuery(name="proj.fill", limit=5_200)).next_cursor
    page = store.list_tasks(TaskQuery(q="filler", limit=50, cursor=deep))
    assert [t.id for t in page.items] == newest_first[5_200:5_250]
    # The same answers whichever plan SQLite picks (FTS-driven or a walk newest first).
    for sparse_max in (1, 1_000_000):
        monkeypatch.setattr(search_plan, "SPARSE_MAX", sparse_max)
        assert _q(store, "invoice", limit=1) == [NEW_INV, OLD_INV]
        assert _q(store, "s5 filler", limit=97) == [t for i, t in enumerate(fillers) if i % 7 == 5][::-1]
    monkeypatch.undo()
    # Time range, name, state, worker, queue and workflow, each with q.
    assert _q(store, "invoice", until=f.t0 + 5) == [OLD_INV]
    assert _q(store, "invoice", since=f.t0 + 5) == [NEW_INV]
    assert _q(store, "invoice", name="proj.fill") == []
    assert _q(store, "invoice", states=(TaskState.SUCCESS,), worker="w1@h1") == [NEW_INV, OLD_INV]
    assert _q(store, "filler", queue="celery", since=f.t0 + 10, until=f.t0 + 10.05) == newest_first[-5:]
    assert _q(store, "invoice", workflow=OLD_INV) == [OLD_INV]
    assert _q(store, "unreachable", exception_types=("ConnectionError",)) == [OLD_FAIL]


def test_retention_and_rewrites_keep_the_index_in_step(store: SqlStore) -> None:
    f = EventFactory()
    store.apply(f.run("a1", "proj.t", 0, args=["alpha"]), {}, NOW)
    store.apply([f.event("task.published", "b1", "proj.t", 1, root_id="b1", args=["beta"])], {}, NOW)
    assert _q(store, "beta") == ["b1"]
    store.apply([f.event("task.succeeded", "b1", "proj.t", 2, runtime=1.0, result="gamma")], {}, NOW)
    assert _q(store, "beta gamma") == ["b1"]
    assert _q(store, "alpha") == ["a1"]
    assert store.expire(NOW + 10, retention=5, failure_retention=5) == 2
    assert _q(store, "alpha") == [] and _q(store, "beta") == []
    store.apply(f.run("c1", "proj.t", 3, args=["alpha"]), {}, NOW + 20)
    assert _q(store, "alpha") == ["c1"]
    if store.dialect.name == "sqlite":  # FTS5 compares its index with the tasks' documents
        with store.writers.connection() as conn:
            conn.execute("INSERT INTO task_search (task_search) VALUES ('integrity-check')")


HOSTILE = [
    "x" * 4096,
    "a\x00b",
    "\x00",
    '"unbalanced',
    'a "b',
    '"',
    '""',
    "*",
    "invoice*",
    "NEAR(invoice acme)",
    "invoice NEAR acme",
    "args_text:invoice",
    "^invoice",
    "invoice AND OR NOT",
    "-",
    "--",
    "-*",
    "=",
    "a=",
    "=b",
    'k="',
    "(",
    ")",
    "{}",
    "'",
    "\\",
    "!!",
    "&|<->",
    "a:* & !b",
    "%_",
    "\U0010ffff",
    "ünïcode",
    " ".join(f"w{i}" for i in range(200)),
    " ".join(f"-w{i}" for i in range(200)),
]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_q_answers_never_fails(store: SqlStore, q: str) -> None:
    f = EventFactory()
    store.apply(f.run("a1", "proj.t", 0, args=["invoice", "acme"]), {}, NOW)
    page = store.list_tasks(TaskQuery(q=q))
    assert all(t.id == "a1" for t in page.items)


def test_hostile_q_over_http_is_never_a_5xx(store: SqlStore) -> None:
    from stemtrace.server import create_app

    f = EventFactory()
    store.apply(f.run("a1", "proj.t", 0, args=["invoice", "acme"]), {}, NOW)
    with TestClient(create_app(store=store, ingest=False)) as client:
        for q in HOSTILE:
            response = client.get("/api/tasks", params={"q": q})
            assert response.status_code < 500, (q, response.text)
        found = client.get("/api/tasks", params={"q": '"invoice acme" -nothing'}).json()
        assert [t["id"] for t in found["items"]] == ["a1"] and found["next_cursor"] is None
