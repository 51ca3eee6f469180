"""Where events come from: ``--events-url``, else ``--broker``, else the ``--app``'s broker."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from stemtrace.server.settings import ServerSettings
from stemtrace.server.store import Store
from stemtrace.transport import TransportConfig, config_from_app


class SourceError(RuntimeError):
    """The event source cannot be determined; the message says what to pass."""


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
