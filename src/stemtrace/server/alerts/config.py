"""The alerts file (``--alerts FILE``, ``STEMTRACE_ALERTS``): channels and rules, validated at startup.

TOML, because operators already write it (``pyproject.toml``) and it has comments. Every mistake
is reported with where it is (``rules[2].channels``) and what is accepted, all at once, so a bad
file stops the server before it runs instead of failing silently at the first incident.

```toml
[[channels]]
name = "ops"
type = "slack"                 # slack | webhook | email
url = "https://hooks.slack.com/services/…"

[[rules]]
kind = "failure_group_new"     # see RULE_KINDS
channels = ["ops"]
source = "orders"              # optional: one --source NAME, or a list; must name a source
```
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stemtrace.core.settings import SettingError, parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RULE_KINDS = {
    "failure_group_new": "a (task name, exception type) pair fails for the first time",
    "failure_group_spike": "a failure group fails `threshold`+ times in `window`, `factor`x the one before",
    "workflow_failed": "a workflow ends in FAILURE (`name` filters by its root task name, globs allowed)",
    "task_lost": "a task is LOST (its worker died under it)",
    "task_stuck": "a task looks stuck (the attention view's definitions)",
    "worker_offline": "a worker goes offline with tasks on it",
    "events_lost": "events were lost (sequence gaps, buffer overflow) or quarantined",
    "beat_missed": "a celery beat entry missed runs (a gap longer than its observed interval)",
}
CHANNEL_TYPES = ("webhook", "slack", "email")
# Kinds about the server's own intake, not about one app's tasks: ``source`` does not apply.
UNSCOPED_KINDS = frozenset({"events_lost"})


class AlertsConfigError(ValueError):
    """The alerts file is unusable; the message lists every problem with its place."""


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    type: str
    url: str | None = None  # webhook and slack
    secret: str | None = None  # webhook: HMAC-SHA256 of the body, sent as X-Stemtrace-Signature
    smtp: str | None = None  # email: smtp://user:password@host:port (smtps:// for TLS)
    starttls: bool = False
    sender: str | None = None
    to: tuple[str, ...] = ()
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    channels: tuple[str, ...]
    name: str | None = None  # a task (or root task) name or glob; None matches any
    window: float = 600.0  # throttle: one message per incident group per window
    threshold: int = 10  # failure_group_spike
    factor: float = 3.0  # failure_group_spike
    digest_after: int = 5  # more incidents than this in one evaluation become one digest
    sources: tuple[str, ...] = ()  # event sources (``--source NAME``) it watches; empty: all

    def matches(self, name: str | None) -> bool:
        return self.name is None or (name is not None and fnmatch.fnmatchcase(name, self.name))


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    channels: Mapping[str, Channel] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    interval: float = 30.0  # seconds between evaluations

    def unknown_sources(self, known: Sequence[str]) -> list[str]:
        """Each rule's ``source`` that names none of ``known`` (the server's ``--source`` names),
        as ``rules[i].source: …`` problems."""
        names = set(known)
        hint = f"the server's sources are {', '.join(sorted(names))}" if names else "it has no --source"
        return [
            f"rules[{i}].source: no source named {s!r} ({hint})"
            for i, rule in enumerate(self.rules)
            for s in rule.sources
            if s not in names
        ]


def load(path: str | Path) -> AlertsConfig:
    """Read and validate the alerts file; :class:`AlertsConfigError` names every problem."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertsConfigError(f"cannot read the alerts file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AlertsConfigError(f"the alerts file {path} is not valid TOML: {exc}") from None
    return parse(raw, str(path))


def parse(raw: Mapping[str, Any], where: str = "alerts") -> AlertsConfig:
    problems: list[str] = []
    unknown = set(raw) - {"channels", "rules", "interval"}
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}; use channels, rules, interval")
    interval = _duration(raw.get("interval", 30.0), "interval", problems)
    channels: dict[str, Channel] = {}
    for i, item in enumerate(_tables(raw.get("channels", []), "channels", problems)):
        channel = _channel(item, f"channels[{i}]", problems)
        if channel is not None:
            if channel.name in channels:
                problems.append(f"channels[{i}].name: {channel.name!r} is used twice")
            channels[channel.name] = channel
    rules = []
    for i, item in enumerate(_tables(raw.get("rules", []), "rules", problems)):
        rule = _rule(item, f"rules[{i}]", set(channels), problems)
        if rule is not None:
            rules.append(rule)
    if not rules and not problems:
        problems.append("no [[rules]]: an alerts file needs at least one rule")
    if problems:
        raise AlertsConfigError(f"{where}: " + "; ".join(problems))
    return AlertsConfig(channels=channels, rules=tuple(rules), interval=interval or 30.0)


def _tables(value: Any, where: str, problems: list[str]) -> Sequence[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"{where}: must be an array of tables ([[{where}]])")
        return []
    return value


def _duration(value: Any, where: str, problems: list[str]) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except (SettingError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            return None
        if seconds > 0:
            return seconds
    problems.append(f"{where}: a positive duration such as '30s', '10m' or '1h' (got {value!r})")
    return None


def _str(
    item: Mapping[str, Any], key: str, where: str, problems: list[str], required: bool = False
) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            problems.append(f"{where}.{key}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}.{key}: must be a non-empty string")
        return None
    return value


def _channel(item: Mapping[str, Any], where: str, problems: list[str]) -> Channel | None:
    before = len(problems)
    allowed = {"name", "type", "url", "secret", "smtp", "starttls", "from", "to", "timeout"}
    if set(item) - allowed:
        problems.append(f"{where}: unknown keys {sorted(set(item) - allowed)}")
    name = _str(item, "name", where, problems, required=True)
    kind = _str(item, "type", where, problems, required=True)
    if kind is not None and kind not in CHANNEL_TYPES:
        problems.append(f"{where}.type: {kind!r} is not one of {', '.join(CHANNEL_TYPES)}")
    url = _str(item, "url", where, problems, required=kind in ("webhook", "slack"))
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        problems.append(f"{where}.url: must be an http(s) URL")
    smtp = _str(item, "smtp", where, problems, required=kind == "email")
    if smtp is not None and urlsplit(smtp).scheme not in ("smtp", "smtps"):
        problems.append(f"{where}.smtp: must be smtp://[user:password@]host[:port] or smtps://…")
    sender = _str(item, "from", where, problems, required=kind == "email")
    to = item.get("to", [])
    if isinstance(to, str):
        to = [to]
    if kind == "email" and (not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to)):
        problems.append(f"{where}.to: one or more addresses")
        to = []
    timeout = _duration(item.get("timeout", 10.0), f"{where}.timeout", problems)
    if len(problems) > before or name is None or kind is None:
        return None
    return Channel(
        name=name, type=kind, url=url, secret=_str(item, "secret", where, problems), smtp=smtp,
        starttls=bool(item.get("starttls", False)), sender=sender, to=tuple(to), timeout=timeout or 10.0,
    )  # fmt: skip


def _rule(item: Mapping[str, Any], where: str, channels: set[str], problems: list[str]) -> Rule | None:
    before = len(problems)
    allowed = {"kind", "channels", "name", "window", "threshold", "factor", "digest_after", "source"}
    if set(item) - allowed:
        problems.append(f"{where}: unknown keys {sorted(set(item) - allowed)}")
    kind = _str(item, "kind", where, problems, required=True)
    if kind is not None and kind not in RULE_KINDS:
        problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(RULE_KINDS)}")
    names = item.get("channels")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.append(f"{where}.channels: the names of one or more [[channels]]")
        names = []
    for n in names:
        if n not in channels:
            problems.append(f"{where}.channels: no channel named {n!r}")
    window = _duration(item.get("window", 600.0), f"{where}.window", problems)
    threshold, factor, digest = (
        item.get("threshold", 10),
        item.get("factor", 3.0),
        item.get("digest_after", 5),
    )
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        problems.append(f"{where}.threshold: a whole number ≥ 1")
    if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor < 1:
        problems.append(f"{where}.factor: a number ≥ 1")
    if not isinstance(digest, int) or isinstance(digest, bool) or digest < 1:
        problems.append(f"{where}.digest_after: a whole number ≥ 1")
    sources = _sources(item.get("source"), kind, where, problems)
    if len(problems) > before or kind is None:
        return None
    return Rule(
        kind=kind, channels=tuple(names), name=_str(item, "name", where, problems), window=window or 600.0,
        threshold=threshold, factor=float(factor), digest_after=digest, sources=sources,
    )  # fmt: skip


def _sources(value: Any, kind: str | None, where: str, problems: list[str]) -> tuple[str, ...]:
    """``source``: one name or a list of names (checked against the server's in ``unknown_sources``)."""
    if value is None:
        return ()
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list) or not found or not all(isinstance(s, str) and s for s in found):
        problems.append(f"{where}.source: one --source NAME or a list of them")
        return ()
    if kind in UNSCOPED_KINDS:
        problems.append(f"{where}.source: {kind} is about the server's intake, not one source's tasks")
    return tuple(dict.fromkeys(found))
