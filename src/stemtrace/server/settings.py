"""Server settings: one table drives the CLI flags, the environment variables and the docs.

Keeping every option in :data:`SETTINGS` means a new option cannot be added to the
CLI without also reaching ``STEMTRACE_<NAME>`` and ``docs/configuration-server.md``
(a test compares the table with the docs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_PORT = 7373
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float | int) -> float:
    """``7d``/``12h``/``30m``/``90s`` (or a bare number of seconds) to seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}; use a number with s, m, h, d or w (e.g. 7d, 12h, 90s)")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def default_store_url() -> str:
    """``sqlite:///<user data dir>/stemtrace.db``: a file that survives restarts."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('stemtrace')) / 'stemtrace.db'}"


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table."""

    name: str  # attribute on ServerSettings; the flag is --name-with-dashes
    type: str  # str | int | float | bool | duration | list
    default: Any
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return "STEMTRACE_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("app", "str", None, "Celery app to read the broker URL and transport options from (MODULE:APP)."),
    Setting("broker", "str", None, "Broker URL, when no --app is given.", secret=True),
    Setting(
        "events_url",
        "str",
        None,
        "Where events come from, if not the broker (the library's STEMTRACE_URL).",
        secret=True,
    ),
    Setting(
        "events_name", "str", "stemtrace.events", "Redis stream key or queue name the library publishes to."
    ),
    Setting(
        "store",
        "str",
        None,
        "sqlite:///PATH or postgresql://… (default: a SQLite file in the user data dir).",
        secret=True,
    ),
    Setting("host", "str", "127.0.0.1", "Address to listen on; anything but loopback needs auth."),
    Setting("port", "int", DEFAULT_PORT, "Port to listen on."),
    Setting("root_path", "str", "", "URL prefix when served behind a reverse proxy (e.g. /stemtrace)."),
    Setting("retention", "duration", "7d", "Keep workflows this long after their last event."),
    Setting("failure_retention", "duration", "30d", "Keep workflows with a failure this long."),
    Setting("auth_user", "str", None, "HTTP basic auth user name."),
    Setting(
        "auth_password_hash",
        "str",
        None,
        "HTTP basic password as a hash from `stemtrace hash-password` (or set STEMTRACE_AUTH_PASSWORD).",
        secret=True,
    ),
    Setting(
        "auth_password",
        "str",
        None,
        "HTTP basic password in clear (environment only; prefer the hash).",
        secret=True,
    ),
    Setting(
        "auth_tokens",
        "list",
        (),
        "Bearer tokens accepted by the API (comma-separated in the environment).",
        secret=True,
    ),
    Setting(
        "insecure_no_auth", "bool", False, "Allow a non-loopback --host without auth (prints a warning)."
    ),
    Setting("cors_origins", "list", (), "Origins allowed by CORS (off by default)."),
    Setting("ingest", "bool", True, "Consume events; --no-ingest runs a read-only replica."),
    Setting(
        "consumer_group", "str", "stemtrace-server", "Consumer group shared by replicas of one deployment."
    ),
    Setting(
        "consumer_name",
        "str",
        None,
        "This replica's name in the group (default HOST-PORT: stable, so a restart resumes its pending events).",  # noqa: E501
    ),
    Setting("batch_size", "int", 5000, "Most events applied in one database transaction."),
    Setting(
        "heartbeat_interval",
        "duration",
        "30s",
        "Expected worker heartbeat interval; a worker is offline after 3x without one.",
    ),
    Setting("log_level", "str", "info", "Log level: debug, info, warning or error."),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any) -> Any:
    if value is None:
        return None
    if setting.type == "int":
        return int(value)
    if setting.type == "duration":
        return parse_duration(value)
    if setting.type == "bool":
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if setting.type == "list":
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Resolved settings (durations in seconds)."""

    app: str | None = None
    broker: str | None = None
    events_url: str | None = None
    events_name: str = "stemtrace.events"
    store: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    root_path: str = ""
    retention: float = 7 * 86400.0
    failure_retention: float = 30 * 86400.0
    auth_user: str | None = None
    auth_password_hash: str | None = None
    auth_password: str | None = None
    auth_tokens: tuple[str, ...] = ()
    insecure_no_auth: bool = False
    cors_origins: tuple[str, ...] = ()
    ingest: bool = True
    consumer_group: str = "stemtrace-server"
    consumer_name: str | None = None
    batch_size: int = 5000
    heartbeat_interval: float = 30.0
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, env: dict[str, str] | None = None, **given: Any) -> ServerSettings:
        """Explicit values win, then ``STEMTRACE_<NAME>``, then the table's defaults."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = given.get(setting.name)
            if raw is None and setting.env in env:
                raw = env[setting.env]
            if raw is None:
                raw = setting.default
            values[setting.name] = _coerce(setting, raw)
        return cls(**{k: v for k, v in values.items() if v is not None or k in _NULLABLE})

    def with_(self, **changes: Any) -> ServerSettings:
        return replace(
            self, **{k: _coerce(_BY_NAME[k], v) if k in _BY_NAME else v for k, v in changes.items()}
        )

    @property
    def store_url(self) -> str:
        return self.store or default_store_url()

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_tokens) or bool(
            self.auth_user and (self.auth_password_hash or self.auth_password)
        )

    @property
    def root(self) -> str:
        """``root_path`` normalised to ``/prefix`` or the empty string."""
        return "/" + self.root_path.strip("/") if self.root_path.strip("/") else ""


_NULLABLE = {f.name for f in fields(ServerSettings) if f.default is None}


def is_loopback(host: str) -> bool:
    return host in {"127.0.0.1", "::1", "localhost"} or host.startswith("127.")


def markdown_table() -> str:
    """The settings as the Markdown table in ``docs/configuration-server.md``."""
    lines = ["| Option | Environment | Type | Default | Meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "" if s.default in (None, ()) else f"`{s.default}`"
        if s.name == "store":
            default = "`sqlite:///<user data dir>/stemtrace.db`"
        flag = "(environment only)" if s.name == "auth_password" else f"`{s.flag}`"
        lines.append(f"| {flag} | `{s.env}` | {s.type} | {default} | {s.help.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
