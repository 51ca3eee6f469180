"""``stemtrace.init`` lives here: connect the handlers once, symmetric with ``uninstall``.

Handlers are connected with ``weak=False`` and a ``dispatch_uid``, so a second
``init`` (a module imported twice, a Django autoreload) connects nothing new.
Safe before or after a worker forks: the emitter is per process and lazy.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from stemtrace.capture import state as _state
from stemtrace.capture.config import CaptureConfig, load
from stemtrace.capture.signals import TASK_HANDLERS
from stemtrace.capture.worker import WORKER_HANDLERS
from stemtrace.transport import TransportConfig, config_from_app, mask_url

logger = logging.getLogger("stemtrace.capture")
_UID = "stemtrace.capture"
_atexit_registered = False


def transport_config(app: Any, config: CaptureConfig) -> TransportConfig:
    """Where this process sends: the app's broker (with its options), unless ``url`` says otherwise."""
    limits: dict[str, Any] = {
        "name": config.name,
        "retention_s": config.events_retention,
        "max_length": config.max_length,
        "connect_timeout_s": config.connect_timeout,
    }
    if config.url:
        # An explicit URL is another broker: the app's SSL and transport options don't apply.
        return TransportConfig(url=config.url, **limits)
    return config_from_app(app, **limits)


def _signals() -> dict[str, Any]:
    from celery import signals

    names = {**TASK_HANDLERS, **WORKER_HANDLERS}
    return {name: (getattr(signals, name), handler) for name, handler in names.items()}


# Sent for every task. Celery's ``Signal`` can cache its receivers per sender, but the option is
# off for all of its signals, so each send takes a lock and matches every receiver again: a
# third of the dispatch's cost (docs/benchmarks-library.md).
PER_TASK_SIGNALS = ("after_task_publish", "task_received", "task_prerun", "task_postrun")
MAX_CACHED_SENDERS = 1024


class SenderCache(dict[Any, Any]):
    """A signal's live receivers by sender, as Celery's ``Signal`` caches them, but bounded.

    Celery clears it whenever a receiver connects or disconnects and bypasses it while a weak
    receiver has died, so what it answers is what a fresh lookup would. Senders are tasks,
    task names and the worker's consumer; the bound keeps an app that sends ever new names
    from growing it without end.
    """

    def __setitem__(self, key: Any, value: Any) -> None:
        if len(self) >= MAX_CACHED_SENDERS:
            self.clear()
        super().__setitem__(key, value)


def cache_receivers(signal: Any) -> None:
    """Turn on ``signal``'s receiver cache, unless someone configured it already."""
    if signal.use_caching or type(signal.sender_receivers_cache) is not dict:
        return
    signal.sender_receivers_cache = SenderCache()
    signal.use_caching = True


def uncache_receivers(signal: Any) -> None:
    """Undo :func:`cache_receivers`: Celery's default again."""
    if isinstance(signal.sender_receivers_cache, SenderCache):
        signal.use_caching = False
        signal.sender_receivers_cache = {}


def _flush_at_exit() -> None:
    st = _state.current()
    if st is not None and st.has_emitter:
        try:
            st.emitter().flush(final=True)
        except Exception:
            pass


def install(app: Any, **options: Any) -> None:
    """Instrument ``app`` in this process (and processes it forks). Idempotent."""
    global _atexit_registered
    config = load(options)  # never raises: a bad value is logged and falls back, or turns capture off
    if config.enabled is False:
        logger.debug("stemtrace is off (enabled=false)")
        return
    existing = _state.current()
    if existing is not None:
        if existing.app is not app:
            logger.warning("stemtrace.init called for a second app; events keep going to the first")
        return
    try:
        state = _state.State(config, lambda: transport_config(app, config), app)
    except Exception as exc:  # a value load() let through that the capture code cannot use
        logger.warning("stemtrace: capture is off, its configuration cannot be used: %r", exc)
        return
    _state.set_current(state)
    for name, (signal, handler) in _signals().items():
        signal.connect(handler, weak=False, dispatch_uid=f"{_UID}.{name}")
        if config.signal_cache and name in PER_TASK_SIGNALS:
            cache_receivers(signal)
    if not _atexit_registered:
        atexit.register(_flush_at_exit)
        _atexit_registered = True
    logger.debug(
        "stemtrace installed (events to %s)", mask_url(config.url) if config.url else "the app's broker"
    )


def uninstall(flush_timeout_s: float = 2.0) -> None:
    """Disconnect every handler, flush and forget the process state (tests use it)."""
    st = _state.current()
    for name, (signal, _handler) in _signals().items():
        signal.disconnect(dispatch_uid=f"{_UID}.{name}")
        uncache_receivers(signal)
    if st is not None and st.has_emitter:
        emitter = st.emitter()
        emitter.flush(flush_timeout_s, final=True)
        emitter.close()
    _state.set_current(None)


def flush(timeout_s: float = 2.0) -> bool:
    """Send what this process has buffered, waiting at most ``timeout_s``."""
    st = _state.current()
    if st is None or not st.has_emitter:
        return True
    return st.emitter().flush(timeout_s)
