"""The alert loop: every ``interval``, each rule's incidents are claimed in the store and sent.

What counts as an incident is :mod:`stemtrace.server.attention`'s, the same as the UI's. Sending is
exactly-once across replicas because a key is claimed before it is sent (``store.claim_alerts``),
and throttled because a throttled rule's key includes its window. What happened before this server
started is not news: incidents that ended before then are left alone.

With several event sources (``--source``), a rule is evaluated per source, the ones its
``source`` names or else every one, so a failure group of one app never hides in another's and
every message says which app it is about.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from stemtrace.server import attention
from stemtrace.server.alerts.channels import ChannelError, Message, send
from stemtrace.server.alerts.config import RULE_KINDS, UNSCOPED_KINDS, AlertsConfig, Channel, Rule
from stemtrace.server.attention import Incident
from stemtrace.server.store import Store

logger = logging.getLogger("stemtrace.server.alerts")
LOOKBACK_S = 86_400.0  # incidents older than a day are never news
KEEP_KEYS_S = 7 * 86_400.0  # a failure group quiet for a week is "new" again
DIGEST_LINES = 50


class Alerter:
    def __init__(
        self,
        store: Store,
        config: AlertsConfig,
        *,
        public_url: str | None = None,
        heartbeat_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
        sender: Callable[[Channel, Message], None] = send,
        sources: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.sources = tuple(sources)  # the server's --source names (empty: one unlabelled source)
        self.config = config
        self.public_url = public_url.rstrip("/") if public_url else None
        self.heartbeat_interval = heartbeat_interval
        self.clock = clock
        self.sender = sender
        self.armed_at = clock()
        self.sent: Counter[tuple[str, str]] = Counter()  # (rule, channel) -> messages delivered
        self.failed: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stemtrace-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval):
            try:
                self.evaluate()
            except Exception:  # a bad evaluation must not end alerting; the next one may work
                logger.exception("alert evaluation failed")

    # -- one evaluation -----------------------------------------------------------------------

    def evaluate(self) -> list[Message]:
        """Find, claim and send every rule's new incidents; return the messages delivered."""
        now = self.clock()
        delivered: list[Message] = []
        of_kind: Counter[str] = Counter()
        for rule in self.config.rules:
            # Each rule claims its own keys: a second rule of a kind (another source, another
            # team's channel) is told of the same incident too.
            of_kind[rule.kind] += 1
            tag = rule.kind if of_kind[rule.kind] == 1 else f"{rule.kind}#{of_kind[rule.kind]}"
            found = [i for scope in self.scopes(rule) for i in self.incidents(rule, now, scope)]
            incidents = [i for i in found if rule.matches(i.name)]
            keyed = {self.key(rule, i, now, tag): i for i in incidents}
            if not keyed:
                continue
            claimed = set(self.store.claim_alerts(rule.kind, list(keyed), now))
            chosen = [(k, i) for k, i in keyed.items() if k in claimed]
            for keys, message in self.messages(rule, chosen):
                if self._deliver(rule, message):
                    delivered.append(message)
                else:  # no channel took it: unclaim, so the next evaluation tries again
                    self.store.release_alerts(keys)
        self.store.expire_alerts(now - KEEP_KEYS_S)
        return delivered

    def scopes(self, rule: Rule) -> tuple[str | None, ...]:
        """The sources a rule is evaluated in, one at a time (None: all together)."""
        if rule.kind in UNSCOPED_KINDS:
            return (None,)
        if rule.sources:
            return rule.sources
        return self.sources if len(self.sources) > 1 else (None,)

    def incidents(self, rule: Rule, now: float, source: str | None = None) -> list[Incident]:
        store, beat = self.store, self.heartbeat_interval
        since = max(now - LOOKBACK_S, self.armed_at - self.config.interval)
        if rule.kind == "failure_group_new":
            recent = attention.failure_groups(
                store, now - max(rule.window, 2 * self.config.interval), now, source
            )
            known = {
                i.key for i in attention.failure_groups(store, now - KEEP_KEYS_S, now - rule.window, source)
            }
            return [i for i in recent if i.key not in known and _after(i, since)]
        if rule.kind == "failure_group_spike":
            current = attention.failure_groups(store, now - rule.window, now, source)
            before = {
                i.key: i.count
                for i in attention.failure_groups(store, now - 2 * rule.window, now - rule.window, source)
            }
            return [
                i for i in current
                if i.count >= rule.threshold and i.count >= rule.factor * before.get(i.key, 0)
            ]  # fmt: skip
        if rule.kind == "workflow_failed":
            failed = attention.failed_workflows(store, now - LOOKBACK_S, source)
            return [i for i in failed if _after(i, since)]
        if rule.kind == "task_lost":
            return [i for i in attention.lost_tasks(store, now - LOOKBACK_S, source) if _after(i, since)]
        if rule.kind == "task_stuck":
            return attention.stuck_incidents(store, now, beat, source)
        if rule.kind == "worker_offline":
            return attention.offline_workers(store, now, beat, since, source)
        if rule.kind == "events_lost":
            return attention.event_losses(store, since)
        if rule.kind == "beat_missed":
            return attention.beat_missed(store, now, since, source)
        raise ValueError(f"unknown rule kind {rule.kind!r}; known: {', '.join(RULE_KINDS)}")

    @staticmethod
    def key(rule: Rule, incident: Incident, now: float, tag: str | None = None) -> str:
        """Once per incident and rule (``tag``: the rule's kind, numbered from its second rule);
        per window for the rules about groups that keep recurring."""
        tag = tag or rule.kind
        if rule.kind in ("failure_group_spike", "events_lost"):
            return f"{tag}:{incident.key}:{int(now // rule.window)}"
        return f"{tag}:{incident.key}"

    def link(self, incident: Incident) -> str:
        return f"{self.public_url}{incident.path}" if self.public_url else incident.path

    def messages(self, rule: Rule, chosen: Sequence[tuple[str, Incident]]) -> list[tuple[list[str], Message]]:
        """One message per incident, or one digest when there are more than ``digest_after``."""
        if not chosen:
            return []
        if len(chosen) <= rule.digest_after:
            return [([k], self._message(rule, _titled(i), [i])) for k, i in chosen]
        incidents = [i for _, i in chosen]
        title = f"{len(incidents)} new: {RULE_KINDS[rule.kind]}"
        return [([k for k, _ in chosen], self._message(rule, title, incidents, digest=True))]

    def _message(
        self, rule: Rule, title: str, incidents: Sequence[Incident], digest: bool = False
    ) -> Message:
        shown = list(incidents[:DIGEST_LINES]) if digest else list(incidents)
        lines = [f"{_titled(i)}: {i.detail}" if i.detail else _titled(i) for i in shown]
        links = [self.link(i) for i in shown]
        if len(incidents) > len(shown):
            lines.append(f"… and {len(incidents) - len(shown)} more")
            links.append(self.public_url or "")
        payload = tuple(_payload(i, self.link(i)) for i in incidents)
        return Message(rule=rule.kind, title=title, lines=tuple(lines), links=tuple(links), incidents=payload)

    def _deliver(self, rule: Rule, message: Message) -> bool:
        """Send to every channel of the rule; True when at least one took it (never sent twice)."""
        ok = False
        for name in rule.channels:
            channel = self.config.channels[name]
            try:
                self.sender(channel, message)
            except ChannelError as exc:
                self.failed[(rule.kind, name)] += 1
                logger.warning("alert %r not delivered: %s", message.title, exc)
            else:
                ok = True
                self.sent[(rule.kind, name)] += 1
        return ok


def _payload(incident: Incident, url: str) -> dict[str, object]:
    """An incident as the webhook sends it (its ``extra`` fields flattened in, task lists left out)."""
    extra = {k: v for k, v in incident.extra.items() if k != "tasks"}
    return {
        "kind": incident.kind, "key": incident.key, "title": incident.title, "detail": incident.detail,
        "url": url, "at": incident.at, "count": incident.count, "name": incident.name,
        "source": incident.source, **extra,
    }  # fmt: skip


def _titled(incident: Incident) -> str:
    """The title, after the source it is about when scoped to one: "[orders] proj.x failed …"."""
    return f"[{incident.source}] {incident.title}" if incident.source else incident.title


def _after(incident: Incident, since: float) -> bool:
    return incident.at is None or incident.at >= since
