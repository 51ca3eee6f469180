"""Beat runs in the store, on SQLite and PostgreSQL: entries (the skip scan), an entry's runs
newest first with keyset pages, counts over a window, the task list's ``beat`` filter, and the
overview the Beat page and the ``beat_missed`` rule read."""

from __future__ import annotations

from server_events import EventFactory

from stemtrace.server import attention, beat_runs
from stemtrace.server.store import SqlStore, TaskQuery

T0 = 1_790_000_000.0


def _fill(store: SqlStore) -> EventFactory:
    f = EventFactory(t0=T0)
    events = []
    # every-10s ran at 0..40 and 80..100 (a stop of 40 s); hourly twice; one task not beat's
    for i, at in enumerate([0, 10, 20, 30, 40, 80, 90, 100]):
        events += f.run(f"e{i}", "proj.tick", float(at), fail=(at == 100), beat="every-10s")
    events += f.run("h0", "proj.report", 5.0, beat="hourly")
    events += f.run("h1", "proj.report", 3605.0, beat="hourly")
    events += f.run("other", "proj.tick", 50.0)
    store.apply(events, {}, T0 + 4000)
    return f


def test_entries_runs_counts_and_filter(store: SqlStore) -> None:
    _fill(store)
    assert store.beat_entries() == [("every-10s", ""), ("hourly", "")]
    runs, cursor = store.beat_runs("every-10s", 3)
    assert [r.task_id for r in runs] == ["e7", "e6", "e5"]
    assert (
        runs[0].state == "FAILURE" and runs[0].exception_type == "ValueError" and runs[0].sent_at == T0 + 100
    )
    assert runs[1].state == "SUCCESS" and runs[1].name == "proj.tick"
    rest, end = store.beat_runs("every-10s", 10, cursor)
    assert [r.task_id for r in rest] == ["e4", "e3", "e2", "e1", "e0"] and end is None
    assert store.beat_runs("nothing", 10) == ([], None)
    assert store.beat_count("every-10s", T0 + 35) == 4
    listed = store.list_tasks(TaskQuery(beat="hourly"))
    assert [t.id for t in listed.items] == ["h1", "h0"]
    assert store.list_tasks(TaskQuery(beat="nothing")).items == []


def test_the_overview_and_the_missed_incidents(store: SqlStore) -> None:
    _fill(store)
    now = T0 + 105
    views = {v.entry: v for v in beat_runs.overview(store, now, T0)}
    tick = views["every-10s"]
    assert tick.interval == 10.0 and tick.task_name == "proj.tick" and tick.runs == 8
    assert tick.last is not None and tick.last.task_id == "e7" and tick.last.state == "FAILURE"
    assert [(m.after, m.before, m.missed) for m in tick.missed] == [(T0 + 40, T0 + 80, 3)]
    assert views["hourly"].interval is None and views["hourly"].missed == []  # two runs: not judged
    incidents = attention.beat_missed(store, now, T0)
    assert [i.key for i in incidents] == [f"beat_missed:every-10s:{T0 + 40:.3f}"]
    assert incidents[0].path == "/beat?entry=every-10s" and incidents[0].count == 3
    # beat down since the last run: an open gap, one more incident, the closed one unchanged
    later = attention.beat_missed(store, T0 + 130, T0)
    assert [i.extra["open"] for i in later] == [False, True]
    assert later[0].key == incidents[0].key


def test_an_entry_is_a_name_within_one_source(store: SqlStore) -> None:
    """Two apps' beats both run ``celery.backend_cleanup``: two schedules, never merged."""
    a, b = EventFactory(t0=T0), EventFactory(t0=T0)
    store.apply(
        [e for i in range(6) for e in a.run(f"a{i}", "celery.backend_cleanup", 60.0 * i, beat="cleanup")],
        {}, T0 + 400, "prod",
    )  # fmt: skip
    # staging's beat ran every 10 s, then stopped for 50 s
    at = [0, 10, 20, 30, 80]
    name = "celery.backend_cleanup"
    staging = [e for i, t in enumerate(at) for e in b.run(f"b{i}", name, t, beat="cleanup")]
    store.apply(staging, {}, T0 + 400, "staging")
    assert store.beat_entries() == [("cleanup", "prod"), ("cleanup", "staging")]
    assert store.beat_entries("staging") == [("cleanup", "staging")]
    assert store.beat_entries("nowhere") == []
    runs, _ = store.beat_runs("cleanup", 10, source="staging")
    assert [r.task_id for r in runs] == ["b4", "b3", "b2", "b1", "b0"]
    assert store.beat_count("cleanup", T0, source="prod") == 6
    assert store.beat_runs("cleanup", 10) == ([], None)  # the unlabelled source has none
    views = {(v.entry, v.source): v for v in beat_runs.overview(store, T0 + 85, T0)}
    assert views[("cleanup", "prod")].interval == 60.0 and views[("cleanup", "prod")].missed == []
    assert views[("cleanup", "staging")].interval == 10.0
    assert [m.missed for m in views[("cleanup", "staging")].missed] == [4]
    incidents = attention.beat_missed(store, T0 + 85, T0, "staging")
    assert [i.key for i in incidents] == [f"beat_missed:staging:cleanup:{T0 + 30:.3f}"]
    assert incidents[0].path == "/beat?entry=cleanup&source=staging"
    assert attention.beat_missed(store, T0 + 85, T0, "prod") == []
    # The task list's beat filter: every source's runs unless one is named.
    assert len(store.list_tasks(TaskQuery(beat="cleanup", limit=100)).items) == 11
    assert [t.id for t in store.list_tasks(TaskQuery(beat="cleanup", source="staging")).items][:2] == [
        "b4",
        "b3",
    ]
