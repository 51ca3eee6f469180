"""The library's settings: one table drives ``stemtrace.init`` options, ``STEMTRACE_*`` and the docs.

Every option of ``stemtrace.init(app, **options)`` is a row of :data:`SETTINGS`, read by the
mechanism the server shares (:mod:`stemtrace.core.settings`). ``STEMTRACE_<NAME>`` overrides the
code's value, so operators change behaviour without a deploy. ``docs/configuration-library.md`` is
generated from the table (``docs/hooks/settings_reference.py``; a test fails when it is stale).

Configuration never breaks the host: :func:`load` never raises. A bad value is logged once, naming
the variable or option and what it accepts, and the next source (the code's value, then the
default) is used, except for the rows marked ``privacy``: guessing there could send what the user
meant to hide, so a bad value (or an unknown option, perhaps a misspelt one of them) turns capture
off instead.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stemtrace.core.settings import Setting, format_duration, resolve

logger = logging.getLogger("stemtrace.capture")

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


def _redact_args(value: Any) -> dict[str, tuple[int, ...]]:
    if not isinstance(value, Mapping):
        raise TypeError('not an object of task name to argument positions, e.g. {"proj.tasks.login": [1]}')
    return {str(name): tuple(int(i) for i in positions) for name, positions in value.items()}


def _names(value: tuple[object, ...]) -> tuple[str, ...]:
    if not all(isinstance(name, str) and name for name in value):
        raise TypeError("names must be non-empty strings")
    return value  # type: ignore[return-value]


def _patterns(value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
    return value


# Privacy rows: a bad value turns capture off rather than guess (see the module's docstring).
PRIVACY = frozenset(
    {"enabled", "capture_args", "capture_result", "capture_traceback", "redact_keys", "redact_args"}
    | {"redact_patterns", "redactor"}
)

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "url",
        "str",
        None,
        "Where events go. Default: the app's own broker, with its SSL, sentinel and transport options.",
        secret=True,
    ),
    Setting(
        "enabled",
        "bool",
        None,
        "`false` turns the library off (handlers are not even connected). Unset, capture is on, "
        "except while the app runs tasks eagerly (`task_always_eager`); `true` captures then too.",
    ),
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
        minimum=0,
    ),
    Setting(
        "max_traceback_bytes",
        "int",
        16384,
        "Cap per traceback; a longer one keeps its head and its tail (the innermost frames).",
        minimum=0,
    ),
    Setting(
        "max_event_bytes",
        "int",
        32768,
        "Cap per event; values shrink first (largest first), then the message, the traceback last.",
        minimum=0,
    ),
    Setting(
        "redact_keys",
        "list",
        (),
        "Key names redacted at any depth, added to the default list "
        "(password, secret, token, api_key, authorization, cookie, session, private_key, …).",
        normalize=_names,
    ),
    Setting(
        "redact_args",
        "json",
        {},
        'Positional arguments to redact per task name, e.g. `{"proj.tasks.login": [1]}`.',
        normalize=_redact_args,
    ),
    Setting(
        "redact_patterns",
        "list",
        (),
        "Regular expressions; matching text in any captured "
        "string or exception message is replaced by `[redacted]`.",
        normalize=_patterns,
    ),
    Setting(
        "redactor",
        "callable",
        None,
        "`f(task_name, field, value) -> value`, applied last to "
        "each captured value, for anything the rules above cannot express.",
    ),
    Setting(
        "events_retention",
        "duration",
        "7d",
        "How long the broker keeps events no server has consumed yet.",
        renamed_from=("retention",),
        minimum=1,
    ),
    Setting("max_length", "int", 100_000, "Cap on stored batches in the stream or queue.", minimum=1),
    Setting(
        "buffer_size",
        "int",
        50_000,
        "Events buffered per process, waiting to be sent or re-sent while the broker is away; "
        "beyond it the oldest are dropped and counted (`buffer overflow`).",
        minimum=1,
    ),
    Setting(
        "buffer_bytes",
        "int",
        8 * 1024 * 1024,
        "Cap on the bytes of finished events held per process while the broker is away "
        "(compressed); "
        "beyond it the oldest are dropped and counted (`buffer overflow`).",
        minimum=1024,
    ),
    Setting("batch_size", "int", 200, "Events per transport message.", minimum=1),
    Setting(
        "flush_interval", "duration", "200ms", "Longest wait before buffered events are sent.", minimum=0.01
    ),
    Setting("flush_timeout", "duration", "2s", "Deadline for the final flush at process exit.", minimum=0),
    Setting(
        "connect_timeout",
        "duration",
        "2s",
        "Connect and socket timeout of the publisher's own broker connection.",
        minimum=0.001,
    ),
    Setting(
        "retry_backoff_max",
        "duration",
        "5s",
        "Longest wait between reconnection attempts to an unreachable broker "
        "(the wait doubles from 0.5 s, with jitter).",
        minimum=0.5,
    ),
    Setting(
        "signal_cache",
        "bool",
        True,
        "Turn on the receiver cache of the four signals sent for every task "
        "(Celery's `Signal(use_caching=True)`); off leaves Celery's default.",
    ),
    Setting("heartbeat_interval", "duration", "10s", "Time between `worker.heartbeat` events.", minimum=0.1),
    Setting("health_interval", "duration", "30s", "Time between `library.health` events.", minimum=0.1),
)

SETTINGS_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Resolved options for one process (the environment, then code values, then the table's defaults).

    ``enabled`` is None when nobody said: capture is on unless the app runs tasks eagerly.
    """

    url: str | None = None
    enabled: bool | None = None
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
    events_retention: float = 7 * 24 * 3600.0
    max_length: int = 100_000
    buffer_size: int = 50_000
    buffer_bytes: int = 8 * 1024 * 1024
    batch_size: int = 200
    flush_interval: float = 0.2
    flush_timeout: float = 2.0
    connect_timeout: float = 2.0
    retry_backoff_max: float = 5.0
    signal_cache: bool = True
    heartbeat_interval: float = 10.0
    health_interval: float = 30.0

    @property
    def all_redact_keys(self) -> tuple[str, ...]:
        return DEFAULT_REDACT_KEYS + tuple(k.lower() for k in self.redact_keys)


def _label(name: str) -> str:
    return f"stemtrace.init option {name!r}"


def _shown(setting: Setting, value: Any) -> str:
    if value is None or value == ():
        return "none"
    if setting.kind == "duration":
        return format_duration(value)
    return repr(value)


def load(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> CaptureConfig:
    """Merge ``init`` options with ``STEMTRACE_*`` variables (the environment wins). Never raises.

    Every problem is one warning on ``stemtrace.capture`` naming its source; a deprecated name is
    one warning naming the old and the new.
    """
    env = os.environ if environ is None else environ
    found = resolve(SETTINGS, options, env, environment_wins=True, given_label=_label)
    for message in found.deprecations:
        logger.warning("stemtrace: %s", message)
    values = found.values
    off_because: list[str] = []
    for error in found.errors:
        setting = error.setting
        if setting is None:
            close = difflib.get_close_matches(error.name or "", list(SETTINGS_BY_NAME), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            logger.warning("stemtrace: %s%s; capture is off until it is fixed", error, hint)
            off_because.append(error.source)
        elif setting.name in PRIVACY:
            logger.warning("stemtrace: %s; capture is off until it is fixed", error)
            off_because.append(error.source)
        else:
            fallback = values[setting.name]
            logger.warning("stemtrace: %s; using %s instead", error, _shown(setting, fallback))
    if off_because:
        values["enabled"] = False
    return CaptureConfig(**values)
