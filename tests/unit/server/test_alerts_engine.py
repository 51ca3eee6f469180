"""The alert engine over a real SQLite store: what is news, throttling, digests, retries.

The channels are replaced by a recorder here (their delivery to a real HTTP receiver and a real
SMTP server is tested in tests/integration/server/test_alerts.py); the store, the claims and the
incidents are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from server_events import EventFactory

from stemtrace.server.alerts.channels import ChannelError, Message
from stemtrace.server.alerts.config import AlertsConfigError, Channel, parse
from stemtrace.server.alerts.engine import Alerter
from stemtrace.server.store import SqlStore, open_store

T0 = 1_790_000_400.0  # a multiple of 600: the 10-minute throttle windows start at T0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Message]] = []
        self.fail = False

    def __call__(self, channel: Channel, message: Message) -> None:
        if self.fail:
            raise ChannelError(f"channel {channel.name!r}: refused")
        self.messages.append((channel.name, message))


def config(rules: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(
        '[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n' + rules
    )


def failures(store: SqlStore, f: EventFactory, name: str, at: float, n: int) -> None:
    events = []
    for i in range(n):
        events += f.run(f"{name}-{at}-{i}", name, at + i * 0.01, fail=True)
    store.apply(events, {}, T0 + at + 1)


def make(store: SqlStore, rules: str, clock: Clock, recorder: Recorder) -> Alerter:
    return Alerter(store, parse(config(rules)), public_url="https://st.example", clock=clock, sender=recorder)


def test_a_spike_alerts_once_per_window_and_a_quiet_group_does_not(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    f = EventFactory(t0=T0)
    clock, recorder = Clock(T0), Recorder()
    alerter = make(store, '[[rules]]\nkind = "failure_group_spike"\nchannels = ["hook"]\nwindow = "10m"\n'
                   'threshold = 5\n', clock, recorder)  # fmt: skip
    failures(store, f, "proj.steady", 0, 2)  # the window before: 2
    failures(store, f, "proj.steady", 700, 4)  # now: 4, under the threshold
    failures(store, f, "proj.flaky", 0, 2)
    failures(store, f, "proj.flaky", 700, 9)  # 9 ≥ 5 and ≥ 3 x 2
    clock.now = T0 + 900
    sent = alerter.evaluate()
    assert [m.incidents[0]["name"] for m in sent] == ["proj.flaky"]
    assert sent[0].links == (
        "https://st.example/tasks?state=FAILURE&name=proj.flaky&exception_type=ValueError",
    )
    clock.now = T0 + 1100  # same 10-minute window: not again
    failures(store, f, "proj.flaky", 1000, 9)
    assert alerter.evaluate() == []
    clock.now = T0 + 1300  # the next window, still spiking: one more message, with the new count
    again = alerter.evaluate()
    assert [(m.incidents[0]["name"], m.incidents[0]["count"]) for m in again] == [("proj.flaky", 18)]
    assert alerter.evaluate() == []
    store.close()


def test_many_incidents_of_one_rule_become_one_digest_and_a_failed_send_is_retried(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    f = EventFactory(t0=T0)
    clock, recorder = Clock(T0 - 5), Recorder()
    rules = '[[rules]]\nkind = "workflow_failed"\nchannels = ["hook"]\ndigest_after = 5\n'
    alerter = make(store, rules, clock, recorder)
    failures(store, f, "proj.job", 0, 7)  # seven single-task workflows fail
    clock.now = T0 + 60
    recorder.fail = True
    assert alerter.evaluate() == []  # not delivered: the claims are released
    recorder.fail = False
    sent = alerter.evaluate()
    assert len(sent) == 1 and sent[0].title.startswith("7 new: a workflow ends in FAILURE")
    assert len(sent[0].incidents) == 7 and len(sent[0].lines) == 7
    assert alerter.evaluate() == []  # every one of the seven is claimed now
    assert alerter.failed[("workflow_failed", "hook")] == 1 and alerter.sent[("workflow_failed", "hook")] == 1
    store.close()


def test_incidents_from_before_the_server_started_are_not_news(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    f = EventFactory(t0=T0)
    failures(store, f, "proj.old", 0, 3)
    clock, recorder = Clock(T0 + 3600), Recorder()
    rules = '[[rules]]\nkind = "failure_group_new"\nchannels = ["hook"]\n[[rules]]\nkind = "workflow_failed"\nchannels = ["hook"]\n'  # noqa: E501
    alerter = make(store, rules, clock, recorder)
    assert alerter.evaluate() == []
    failures(store, f, "proj.new", 3700, 1)
    clock.now = T0 + 3710
    kinds = sorted(m.rule for m in alerter.evaluate())
    assert kinds == ["failure_group_new", "workflow_failed"]
    store.close()


def test_a_bad_file_names_every_problem() -> None:
    with pytest.raises(AlertsConfigError) as caught:
        parse({"channels": [{"name": "m", "type": "email", "smtp": "http://x"}], "rules": [{"kind": "x"}],
               "extra": 1})  # fmt: skip
    text = str(caught.value)
    expected = (
        "unknown top-level keys ['extra']",
        "channels[0].smtp: must be smtp://",
        "channels[0].from: required",
        "channels[0].to: one or more addresses",
        "rules[0].kind: 'x' is not one of",
        "rules[0].channels: the names of one or more",
    )
    for part in expected:
        assert part in text, text


def make_sourced(
    store: SqlStore, rules: str, clock: Clock, recorder: Recorder, sources: list[str]
) -> Alerter:
    return Alerter(
        store,
        parse(config(rules)),
        public_url="https://st.example",
        clock=clock,
        sender=recorder,
        sources=sources,
    )


def sourced_failures(store: SqlStore, f: EventFactory, name: str, at: float, n: int, *, source: str) -> None:
    events = []
    for i in range(n):
        events += f.run(f"{source}-{name}-{at}-{i}", name, at + i * 0.01, fail=True)
    store.apply(events, {}, T0 + at + 1, source)


def test_a_rule_scoped_to_a_source_hears_of_that_source_alone(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    f = EventFactory(t0=T0)
    clock, recorder = Clock(T0), Recorder()
    alerter = make_sourced(
        store, '[[rules]]\nkind = "failure_group_new"\nchannels = ["hook"]\nsource = "billing"\n',
        clock, recorder, ["orders", "billing"],
    )  # fmt: skip
    sourced_failures(store, f, "shop.charge", 10, 2, source="orders")
    sourced_failures(store, f, "shop.charge", 20, 1, source="billing")
    clock.now = T0 + 60
    [message] = alerter.evaluate()
    assert message.title == "[billing] shop.charge failed with ValueError"
    [incident] = message.incidents
    assert (incident["source"], incident["count"]) == ("billing", 1)
    assert incident["url"] == (
        "https://st.example/tasks?state=FAILURE&name=shop.charge&exception_type=ValueError&source=billing"
    )
    assert alerter.evaluate() == []


def test_with_several_sources_an_unscoped_rule_names_each_source(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    f = EventFactory(t0=T0)
    clock, recorder = Clock(T0), Recorder()
    alerter = make_sourced(
        store,
        '[[rules]]\nkind = "failure_group_new"\nchannels = ["hook"]\n',
        clock,
        recorder,
        ["orders", "billing"],
    )
    sourced_failures(store, f, "shop.charge", 10, 2, source="orders")
    sourced_failures(store, f, "shop.charge", 20, 1, source="billing")
    clock.now = T0 + 60
    sent = sorted(m.title for m in alerter.evaluate())
    assert sent == [
        "[billing] shop.charge failed with ValueError",
        "[orders] shop.charge failed with ValueError",
    ]
    # A single-source server's messages are as they were: no source in them.
    single = make_sourced(store, '[[rules]]\nkind = "task_lost"\nchannels = ["hook"]\n', clock, recorder, [])
    assert single.scopes(single.config.rules[0]) == (None,)


def test_a_rule_source_must_name_a_server_source(tmp_path: Path) -> None:
    from stemtrace.server.settings import ServerSettings, SettingsError

    path = tmp_path / "alerts.toml"
    path.write_text(
        '[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
        '[[rules]]\nkind = "task_lost"\nchannels = ["hook"]\nsource = ["orders", "biling"]\n'
    )
    with pytest.raises(
        SettingsError, match=r"rules\[0\]\.source: no source named 'biling' \(the server's sources are"
    ):
        ServerSettings.build(env={}, sources=["orders=redis://127.0.0.1:6379/0"], alerts=str(path))
    with pytest.raises(SettingsError, match="it has no --source"):
        ServerSettings.build(env={}, broker="redis://127.0.0.1:6379/0", alerts=str(path))
    ok = ServerSettings.build(
        env={},
        sources=["orders=redis://127.0.0.1:6379/0", "biling=redis://127.0.0.1:6379/0"],
        alerts=str(path),
    )
    assert ok.alerts == str(path)
    with pytest.raises(AlertsConfigError, match=r"rules\[0\]\.source: events_lost is about the server"):
        parse(config('[[rules]]\nkind = "events_lost"\nchannels = ["hook"]\nsource = "orders"\n'))
    beat = parse(config('[[rules]]\nkind = "beat_missed"\nchannels = ["hook"]\nsource = "orders"\n'))
    assert beat.rules[0].sources == ("orders",)  # an entry is one source's schedule
    with pytest.raises(AlertsConfigError, match=r"rules\[0\]\.source: one --source NAME or a list"):
        parse(config('[[rules]]\nkind = "task_lost"\nchannels = ["hook"]\nsource = 3\n'))
