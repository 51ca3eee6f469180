"""Where events come from: ``--events-url``, else ``--broker``, else the ``--app``'s broker; or
several labelled sources (``--source NAME=URL``, ``--source NAME=MODULE:APP``), each consumed by
its own ingest loop, every task stored with its source's NAME."""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from typing import Any

from stemtrace.server.settings import ServerSettings
from stemtrace.server.store import Store
from stemtrace.transport import TransportConfig, config_from_app


class SourceError(ValueError):
    """The event source cannot be determined; the message says what to pass."""


# A label is short, printable and safe in a URL query, a file name and a Prometheus label value.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class EventSource:
    """One labelled source: ``label`` is what its tasks carry (empty for the single, unlabelled
    source of ``--app``/``--broker``/``--events-url``)."""

    label: str
    config: TransportConfig


def parse_sources(items: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """``NAME=URL`` / ``NAME=MODULE:APP`` items as (name, target); raises :class:`SourceError`
    (a ``ValueError``: the settings table reports it against the flag or variable)."""
    out: list[tuple[str, str]] = []
    for item in items:
        name, sep, target = item.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not target:
            raise SourceError(f"{item.split('://')[0]!r}: expected NAME=URL or NAME=MODULE:APP")
        if not _LABEL.match(name):
            raise SourceError(
                f"source name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if any(name == seen for seen, _ in out):
            raise SourceError(f"source name {name!r} is given twice: each source needs its own name")
        out.append((name, target))
    return out


def event_sources(settings: ServerSettings) -> list[EventSource]:
    """Every source to consume: the labelled ``--source`` items, else the one unlabelled source
    (empty when none is configured)."""
    if settings.sources:
        if settings.app or settings.broker or settings.events_url:
            raise SourceError("--source replaces --app, --broker and --events-url: pass one or the other")
        found = []
        for name, item in parse_sources(settings.sources):
            # ``…#EVENTS_NAME``: this source's own stream key or queue name (two apps with
            # different key prefixes on one Redis); else --events-name.
            target, _, events_name = item.partition("#")
            events_name = events_name or settings.events_name
            if "://" in target:
                config = TransportConfig(url=target, name=events_name)
            else:
                config = config_from_app(load_celery_app(target), name=events_name)
            found.append(EventSource(name, config))
        return found
    single = transport_config(settings)
    return [EventSource("", single)] if single is not None else []


def load_celery_app(spec: str) -> Any:
    """Import ``MODULE:APP`` (or ``MODULE``, finding its ``app``/``celery`` attribute)."""
    module_name, _, attr = spec.partition(":")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `celery -A`, find modules in the working directory
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SourceError(f"cannot import --app {spec!r}: {exc}; check the module is on PYTHONPATH") from exc
    candidates = [attr] if attr else ["app", "celery"]
    for name in candidates:
        obj = module
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj() if callable(obj) and not hasattr(obj, "conf") else obj
    raise SourceError(f"--app {spec!r}: no attribute {' or '.join(candidates)!r} in module {module_name!r}")


def transport_config(settings: ServerSettings) -> TransportConfig | None:
    """The transport to consume, or None when no source is configured."""
    if settings.app:
        app = load_celery_app(settings.app)
        return config_from_app(app, url=settings.events_url or settings.broker, name=settings.events_name)
    url = settings.events_url or settings.broker
    if not url:
        return None
    return TransportConfig(url=url, name=settings.events_name)


def subscription_group(settings: ServerSettings, store: Store) -> str:
    """The subscription this server consumes through: ``--consumer-group`` when given, else
    ``stemtrace:<store id>`` (its first 12 hex digits).

    Derived from the store, not the host: every replica of one store (same database)
    shares it and splits the load, and any other store (a second team, a laptop pointed at
    production's broker) gets its own and sees every event too.
    """
    return settings.consumer_group or f"stemtrace:{store.store_id()[:12]}"
