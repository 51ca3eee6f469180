"""The main process's record of what each prefork child returned: one append per task, trimmed
by the publisher thread to the window before each child's latest outcome."""

from __future__ import annotations

from types import SimpleNamespace

from stemtrace.capture.children import ChildResults


def test_a_live_childs_outcomes_are_trimmed_to_the_window_before_its_latest() -> None:
    results = ChildResults(pool=None, flush_interval_s=0.2)  # a 2 s window
    request = SimpleNamespace(
        worker_pid=7, id="a", name="t.add", _request_dict={"retries": 1}, time_start=1.5
    )
    results.note(request, (0, "1", 0.1))
    notes = results.notes[7]
    assert notes[-1][1:] == ("a", "t.add", 1, 0, 1.5, 7, (0, "1", 0.1))
    second = 1_000_000_000
    latest = notes[-1][0]
    notes.clear()
    notes.extend((latest + t * second, "a", "t.add", 0, 0, None, 7, (0, str(t), 0.1)) for t in range(4))
    results._trim(notes)
    assert [n[-1][1] for n in notes] == ["1", "2", "3"]  # 2 s before the latest, inclusive


def test_a_request_no_child_accepted_is_not_noted() -> None:
    results = ChildResults(pool=None, flush_interval_s=0.2)
    results.note(SimpleNamespace(worker_pid=None), (0, "1", 0.1))
    assert results.notes == {}


def test_the_window_grows_with_a_long_flush_interval() -> None:
    assert ChildResults(pool=None, flush_interval_s=1.0).window_ns == 10 * 1_000_000_000
