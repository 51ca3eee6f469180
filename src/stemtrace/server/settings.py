"""Server settings: one table drives the CLI flags, the environment variables and the docs.

Every option of ``stemtrace server`` is a row of :data:`SETTINGS`, read by the mechanism the library
shares (:mod:`stemtrace.core.settings`: one duration grammar, one way to read ``STEMTRACE_*``). A
flag wins over the environment. Unlike the library, the server refuses to start on a bad value:
:meth:`ServerSettings.build` raises :class:`SettingsError` naming every bad variable or flag, which
the CLI prints before exiting with status 2. ``docs/configuration-server.md`` is generated from
the table (``docs/hooks/settings_reference.py``; a test fails when it is stale).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stemtrace.core.settings import Setting, SettingError, resolve
from stemtrace.core.tracing import template_fields

logger = logging.getLogger("stemtrace.server")
DEFAULT_PORT = 7373
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def default_store_url() -> str:
    """``sqlite:///<user data dir>/stemtrace.db``: a file that survives restarts."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('stemtrace')) / 'stemtrace.db'}"


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError("not a port (0-65535)")
    return value


def _log_level(value: str) -> str:
    if value.strip().lower() not in LOG_LEVELS:
        raise ValueError(f"not a log level; use one of {', '.join(LOG_LEVELS)}")
    return value.strip().lower()


INGEST_PROCESS_MODES = ("auto", "same", "separate")


def _ingest_process(value: str) -> str:
    if value.strip().lower() not in INGEST_PROCESS_MODES:
        raise ValueError(f"not an ingest process mode; use one of {', '.join(INGEST_PROCESS_MODES)}")
    return value.strip().lower()


def _alerts_file(value: str) -> str:
    """The path, once the file reads as a valid alerts configuration (every problem named)."""
    from stemtrace.server.alerts.config import load

    load(value)
    return value


def _link_template(value: str) -> str:
    """The template, once it reads as one (``core.tracing.template_fields`` says what is wrong)."""
    template_fields(value.strip())
    return value.strip()


def _sources(value: tuple[str, ...]) -> tuple[str, ...]:
    """Each item ``NAME=URL`` or ``NAME=MODULE:APP``, names unique (checked in one place:
    :func:`stemtrace.server.source.parse_sources`)."""
    from stemtrace.server.source import parse_sources

    parse_sources(value)
    return tuple(value)


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
        "sources",
        "list",
        (),
        "Several event sources in one server, each NAME=URL or NAME=MODULE:APP, with #EVENTS_NAME to give "
        "one its own stream key or queue name; every task carries its NAME (filter `source=NAME`). Repeat "
        "the flag; comma-separated in the environment. Replaces --app/--broker/--events-url.",
        secret=True,
        normalize=_sources,
    ),
    Setting(
        "store",
        "str",
        None,
        "sqlite:///PATH or postgresql://… (default: a SQLite file in the user data dir).",
        secret=True,
    ),
    Setting("host", "str", "127.0.0.1", "Address to listen on; anything but loopback needs auth."),
    Setting("port", "int", DEFAULT_PORT, "Port to listen on.", normalize=_port),
    Setting("root_path", "str", "", "URL prefix when served behind a reverse proxy (e.g. /stemtrace)."),
    Setting("retention", "duration", "7d", "Keep workflows this long after their last event."),
    Setting("failure_retention", "duration", "30d", "Keep workflows with a failure this long."),
    Setting(
        "max_tasks",
        "int",
        None,
        "Keep at most this many tasks: whole workflows go oldest first, successes before failures.",
    ),
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
        env_only=True,
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
        "ingest_process",
        "str",
        "auto",
        "Where ingest runs: `separate` (a child process of its own, restarted if it dies, so API "
        "requests and ingest never wait for each other's interpreter lock), `same` (a thread of the "
        "API's process) or `auto` (`separate` for `stemtrace server` on a machine with 2 or more "
        "CPUs, else `same`; an app that mounts the server keeps ingest in the app's process unless this "
        "says `separate`).",
        normalize=_ingest_process,
    ),
    Setting(
        "consumer_group",
        "str",
        None,
        "Subscription on the broker (Redis consumer group, RabbitMQ queue suffix); default "
        "`stemtrace:<store id>`, so each store sees every event and replicas of one store share them.",
    ),
    Setting(
        "consumer_name",
        "str",
        None,
        "This replica's name in the group (default HOST-PORT: stable, so a restart resumes its pending events).",  # noqa: E501
    ),
    Setting(
        "write_batch_size",
        "int",
        5000,
        "Most events applied in one database transaction.",
        renamed_from=("batch_size",),
        minimum=1,
    ),
    Setting(
        "expected_heartbeat_interval",
        "duration",
        "30s",
        "Heartbeat interval assumed for a worker that does not announce its own; "
        "a worker is offline after 3x its interval without one.",
        renamed_from=("heartbeat_interval",),
        minimum=0.1,
    ),
    Setting(
        "never_sent_after",
        "duration",
        "5m",
        "A workflow whose tasks are all final and that got nothing new this long is over: its steps "
        "still planned were never sent, and are shown SKIPPED (the workflow FAILURE).",
        minimum=1.0,
    ),
    Setting(
        "worker_retention",
        "duration",
        "1d",
        "A worker offline this long is expired: left off the Workers page unless asked for.",
        minimum=1.0,
    ),
    Setting(
        "alerts",
        "str",
        None,
        "A TOML file of alert channels and rules (docs: Alerts); checked at startup.",
        normalize=_alerts_file,
    ),
    Setting(
        "public_url",
        "str",
        None,
        "This server's URL as users open it (e.g. https://stemtrace.example.com), for links in alerts.",
    ),
    Setting(
        "trace_url",
        "str",
        None,
        "Link template for an attempt's trace (e.g. https://tempo.example/trace/{trace_id}); "
        "placeholders {trace_id}, {span_id}, {sentry_trace_id}, {event_id}, {task_id}.",
        normalize=_link_template,
    ),
    Setting(
        "sentry_url",
        "str",
        None,
        "Link template for an attempt in Sentry (e.g. https://sentry.example/organizations/acme/issues/"
        "?query={event_id}); the same placeholders as --trace-url.",
        normalize=_link_template,
    ),
    Setting("log_level", "str", "info", "Log level: debug, info, warning or error.", normalize=_log_level),
)
_BY_NAME = {s.name: s for s in SETTINGS}
_BY_OLD_NAME = {old: s for s in SETTINGS for old in s.renamed_from}


def _alert_sources(values: Mapping[str, Any]) -> list[SettingError]:
    """An alert rule's ``source`` must name one of ``--source``'s (a typo would silence the rule)."""
    path = values.get("alerts")
    if not path:
        return []
    from stemtrace.server.alerts.config import load
    from stemtrace.server.source import parse_sources

    problems = load(path).unknown_sources([n for n, _ in parse_sources(values.get("sources") or ())])
    return [SettingError("--alerts", path, _BY_NAME["alerts"], "; ".join(problems))] if problems else []


class SettingsError(ValueError):
    """One or more bad values; the message has one line per value, each naming its source."""

    def __init__(self, errors: list[SettingError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Resolved settings (durations in seconds)."""

    app: str | None = None
    broker: str | None = None
    events_url: str | None = None
    events_name: str = "stemtrace.events"
    sources: tuple[str, ...] = ()
    store: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    root_path: str = ""
    retention: float = 7 * 86400.0
    failure_retention: float = 30 * 86400.0
    max_tasks: int | None = None
    auth_user: str | None = None
    auth_password_hash: str | None = None
    auth_password: str | None = None
    auth_tokens: tuple[str, ...] = ()
    insecure_no_auth: bool = False
    cors_origins: tuple[str, ...] = ()
    ingest: bool = True
    ingest_process: str = "auto"
    consumer_group: str | None = None
    consumer_name: str | None = None
    write_batch_size: int = 5000
    expected_heartbeat_interval: float = 30.0
    never_sent_after: float = 300.0
    worker_retention: float = 86400.0
    alerts: str | None = None
    public_url: str | None = None
    trace_url: str | None = None
    sentry_url: str | None = None
    log_level: str = "info"
    deprecations: tuple[str, ...] = ()  # "old is deprecated: use new", one per old name used

    @classmethod
    def build(cls, env: Mapping[str, str] | None = None, **given: Any) -> ServerSettings:
        """Explicit values win, then ``STEMTRACE_<NAME>``, then the table's defaults.

        Raises :class:`SettingsError` naming every bad value; each deprecated name used is logged
        once (old and new name) and kept in ``deprecations``.
        """
        found = resolve(
            SETTINGS,
            given,
            os.environ if env is None else env,
            environment_wins=False,
            given_label=_flag,
            given_is_text=True,
        )
        if found.errors:
            raise SettingsError(found.errors)
        unknown = _alert_sources(found.values)
        if unknown:
            raise SettingsError(unknown)
        for message in found.deprecations:
            logger.warning("stemtrace: %s", message)
        return cls(**found.values, deprecations=tuple(found.deprecations))

    def with_(self, **changes: Any) -> ServerSettings:
        """A copy with ``changes`` (named as in the table, or by a renamed setting's old name)."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            setting = _BY_NAME.get(name) or _BY_OLD_NAME.get(name)
            if setting is None:
                raise SettingsError([SettingError(_flag(name), value, None, "unknown option", name)])
            try:
                values[setting.name] = (
                    setting.parse(value) if isinstance(value, str) else setting.coerce(value)
                )
            except (ValueError, TypeError) as exc:
                raise SettingsError([SettingError(_flag(name), value, setting, str(exc))]) from None
        return replace(self, **values)

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


def is_loopback(host: str) -> bool:
    return host in {"127.0.0.1", "::1", "localhost"} or host.startswith("127.")
