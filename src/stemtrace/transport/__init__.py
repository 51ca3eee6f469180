"""Event transports, chosen by URL scheme.

Both the library (publishing) and the server (consuming) go through
:func:`resolve`, so the two halves of a broker family always live in one module
and cannot drift. Built-in schemes come first; third parties add more through the
``stemtrace.transports`` entry-point group. A scheme nobody claims falls back to
the generic kombu transport, so every broker kombu speaks works out of the box.

This package imports neither ``stemtrace.capture`` nor any broker client at
import time: the server calls :func:`config_from_app` without loading capture.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from stemtrace.transport.base import Consumer, Delivery, Publisher, Transport, TransportConfig

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "Consumer",
    "Delivery",
    "Publisher",
    "Transport",
    "TransportConfig",
    "config_from_app",
    "mask_url",
    "resolve",
    "scheme_of",
]

logger = logging.getLogger("stemtrace.transport")

# Built-ins by scheme: module path and class name, imported only when chosen.
_BUILTINS: dict[str, str] = {
    "redis": "stemtrace.transport.redis:RedisStreamTransport",
    "rediss": "stemtrace.transport.redis:RedisStreamTransport",
    "sentinel": "stemtrace.transport.redis:RedisStreamTransport",
    "redis+socket": "stemtrace.transport.redis:RedisStreamTransport",
    "amqp": "stemtrace.transport.amqp:AmqpTransport",
    "amqps": "stemtrace.transport.amqp:AmqpTransport",
    "pyamqp": "stemtrace.transport.amqp:AmqpTransport",
    "inproc": "stemtrace.transport.inproc:InProcTransport",
}
_FALLBACK = "stemtrace.transport.kombu:KombuTransport"


def scheme_of(url: str) -> str:
    """The URL scheme, lower-cased (``sentinel://a;sentinel://b`` gives ``sentinel``)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else url.lower()


def _load(target: str) -> type[Transport]:
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise TypeError(f"{target} is not a stemtrace Transport")
    return cls


def _plugin_target(scheme: str) -> str | None:
    """An entry point for ``scheme`` that is not one of ours (ours are in ``_BUILTINS``)."""
    try:
        found = entry_points(group="stemtrace.transports")
    except Exception:  # broken metadata must not break the host app
        return None
    for ep in found:
        if ep.name.lower() == scheme:
            return str(ep.value)
    return None


def transport_class(url: str) -> type[Transport]:
    """The transport class that handles ``url``: built-in, plugin, or generic kombu."""
    scheme = scheme_of(url)
    target = _BUILTINS.get(scheme) or _plugin_target(scheme) or _FALLBACK
    return _load(target)


def resolve(config: TransportConfig) -> Transport:
    """Build the transport for ``config.url``."""
    return transport_class(config.url)(config)


def mask_url(url: str) -> str:
    """``url`` with any password replaced, safe to log."""
    out = []
    for part in url.split(";"):
        head, sep, rest = part.partition("://")
        if sep and "@" in rest:
            creds, _, host = rest.rpartition("@")
            user = creds.split(":", 1)[0]
            if ":" in creds:
                out.append(f"{head}://{user}:**@{host}")
                continue
        out.append(part)
    return ";".join(out)


def config_from_app(app: Celery, **overrides: Any) -> TransportConfig:
    """A :class:`TransportConfig` pointing at ``app``'s own broker.

    Takes the write URL (``broker_write_url`` or ``broker_url``, failover lists
    joined by ``;`` as kombu expects), ``broker_transport_options`` (sentinel
    ``master_name``, ``global_keyprefix``, …) and ``broker_use_ssl``. Any field
    of :class:`TransportConfig` can be overridden by keyword; ``url=None`` means
    "keep the app's".
    """
    conf = app.conf
    url: Any = conf.broker_write_url or conf.broker_url or "amqp://guest:guest@localhost:5672//"
    if isinstance(url, (list, tuple)):
        url = ";".join(str(u) for u in url)
    fields: dict[str, Any] = {
        "url": str(url),
        "transport_options": dict(conf.broker_transport_options or {}),
        "ssl": conf.broker_use_ssl or None,
    }
    for key, value in overrides.items():
        if value is None and key == "url":
            continue
        fields[key] = value
    return TransportConfig(**fields)
