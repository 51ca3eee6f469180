"""The library's settings: one table drives option parsing, env vars and the docs.

Every option of ``stemtrace.init(app, **options)`` is a row of :data:`SETTINGS`.
``STEMTRACE_<NAME>`` overrides the code's value (operators change behaviour
without a deploy); ``docs/configuration-library.md`` lists every row, which a
test checks.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "authorization",
    "cookie",
    "session",
    "private_key",
    "credential",
    "signature",
    "ssn",
    "card_number",
    "cvv",
)


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    kind: str  # bool | int | float | str | list | json | duration | callable
    default: Any
    doc: str

    @property
    def env(self) -> str | None:
        return None if self.kind == "callable" else f"STEMTRACE_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "url",
        "str",
        None,
        "Where events go. Default: the app's own broker, with its SSL, sentinel and transport options.",
    ),
    Setting("enabled", "bool", True, "Turn the whole library off: handlers are not even connected."),
    Setting(
        "name",
        "str",
        "stemtrace.events",
        "Stream key (after the broker's `global_keyprefix`) or queue name. The server must use the same.",
    ),
    Setting("capture_args", "bool", True, "Send task arguments and keyword arguments."),
    Setting("capture_result", "bool", True, "Send task return values."),
    Setting("capture_traceback", "bool", True, "Send tracebacks of failures and retries."),
    Setting(
        "max_field_bytes",
        "int",
        4096,
        "Cap per captured value (args, kwargs, result, "
        "exception message); larger values keep a preview and a truncation marker.",
    ),
    Setting(
        "max_traceback_bytes",
        "int",
        16384,
        "Cap per traceback; a longer one keeps its head and its tail (the innermost frames).",
    ),
    Setting(
        "max_event_bytes",
        "int",
        32768,
        "Cap per event; values shrink first (largest first), then the message, the traceback last.",
    ),
    Setting(
        "redact_keys",
        "list",
        (),
        "Key names redacted at any depth, added to the default list "
        "(password, secret, token, api_key, authorization, cookie, session, private_key, …).",
    ),
    Setting(
        "redact_args",
        "json",
        {},
        'Positional arguments to redact per task name, e.g. `{"proj.tasks.login": [1]}`.',
    ),
    Setting(
        "redact_patterns",
        "list",
        (),
        "Regular expressions; matching text in any captured "
        "string or exception message is replaced by `[redacted]`.",
    ),
    Setting(
        "redactor",
        "callable",
        None,
        "`f(task_name, field, value) -> value`, applied last to "
        "each captured value, for anything the rules above cannot express.",
    ),
    Setting(
        "retention",
        "duration",
        7 * 24 * 3600.0,
        "How long the broker keeps undelivered events (seconds, or `30m`, `12h`, `7d`).",
    ),
    Setting("max_length", "int", 100_000, "Cap on stored batches in the stream or queue."),
    Setting(
        "buffer_size",
        "int",
        10_000,
        "Events buffered per process; beyond it new events are dropped and counted.",
    ),
    Setting("batch_size", "int", 200, "Events per transport message."),
    Setting("flush_interval", "duration", 0.2, "Longest wait before buffered events are sent."),
    Setting("flush_timeout", "duration", 2.0, "Deadline for the final flush at process exit."),
    Setting(
        "connect_timeout",
        "duration",
        2.0,
        "Connect and socket timeout of the publisher's own broker connection.",
    ),
    Setting(
        "signal_cache",
        "bool",
        True,
        "Turn on the receiver cache of the four signals sent for every task "
        "(Celery's `Signal(use_caching=True)`); off leaves Celery's default.",
    ),
    Setting("heartbeat_interval", "duration", 10.0, "Seconds between `worker.heartbeat` events."),
    Setting("health_interval", "duration", 30.0, "Seconds between `library.health` events."),
)

SETTINGS_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_env(setting: Setting, raw: str) -> Any:
    """Turn an environment string into the setting's type."""
    kind = setting.kind
    if kind == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{setting.env}: not a boolean: {raw!r}")
    if kind == "int":
        return int(raw)
    if kind in ("float", "duration"):
        return parse_duration(raw)
    if kind == "list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "json":
        return json.loads(raw)
    return raw


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Resolved options for one process (code values, then the environment)."""

    url: str | None = None
    enabled: bool = True
    name: str = "stemtrace.events"
    capture_args: bool = True
    capture_result: bool = True
    capture_traceback: bool = True
    max_field_bytes: int = 4096
    max_traceback_bytes: int = 16384
    max_event_bytes: int = 32768
    redact_keys: tuple[str, ...] = ()
    redact_args: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    redact_patterns: tuple[str, ...] = ()
    redactor: Callable[[str | None, str, Any], Any] | None = None
    retention: float = 7 * 24 * 3600.0
    max_length: int = 100_000
    buffer_size: int = 10_000
    batch_size: int = 200
    flush_interval: float = 0.2
    flush_timeout: float = 2.0
    connect_timeout: float = 2.0
    signal_cache: bool = True
    heartbeat_interval: float = 10.0
    health_interval: float = 30.0

    @property
    def all_redact_keys(self) -> tuple[str, ...]:
        return DEFAULT_REDACT_KEYS + tuple(k.lower() for k in self.redact_keys)


def _coerce(setting: Setting, value: Any) -> Any:
    if value is None:
        return None if setting.default is None else setting.default
    kind = setting.kind
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind in ("float", "duration"):
        return parse_duration(value) if isinstance(value, str) else float(value)
    if kind == "list":
        return (value,) if isinstance(value, str) else tuple(value)
    if setting.name == "redact_args":
        return {str(k): tuple(int(i) for i in v) for k, v in dict(value).items()}
    return value


def load(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> CaptureConfig:
    """Merge ``init`` options with ``STEMTRACE_*`` variables (the environment wins)."""
    unknown = set(options) - set(SETTINGS_BY_NAME)
    if unknown:
        raise TypeError(f"unknown stemtrace option(s): {', '.join(sorted(unknown))}")
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = options.get(setting.name)
        if setting.env and setting.env in env:
            value = parse_env(setting, env[setting.env])
        if value is not None or setting.name in options:
            values[setting.name] = _coerce(setting, value)
    return CaptureConfig(**values)
