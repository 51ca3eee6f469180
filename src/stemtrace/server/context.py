"""Everything one server instance owns: settings, store, ingest, maintenance, live hub.

Started by the app's lifespan, or lazily on the first request when the app is mounted
inside another ASGI app (Starlette does not run a mounted app's lifespan).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from stemtrace.server.graph_cache import GraphCache
from stemtrace.server.ingest import Ingestor
from stemtrace.server.ingest_process import IngestProcess
from stemtrace.server.live import Hub
from stemtrace.server.losses import LossTracker
from stemtrace.server.maintenance import Maintenance
from stemtrace.server.settings import ServerSettings
from stemtrace.server.source import EventSource, event_sources, parse_sources, subscription_group
from stemtrace.server.store import Store, open_store
from stemtrace.server.ttl_cache import Recent
from stemtrace.transport import TransportConfig, mask_url, resolve

logger = logging.getLogger("stemtrace.server")
METRICS_TTL_S = 1.0  # scrapes within a second of each other share one rendering of /metrics


class ServerContext:
    def __init__(
        self,
        settings: ServerSettings,
        *,
        store: Store | None = None,
        events: TransportConfig | None = None,
    ) -> None:
        self.settings = settings
        self._given_store = store
        self._store: Store | None = store
        self._events = events
        self._sources: list[EventSource] | None = None
        self.ingestor: Ingestor | IngestProcess | None = None  # the first of ``ingestors``
        self.ingestors: list[Ingestor | IngestProcess] = []  # one per event source (``--source``)
        self.maintenance: Maintenance | None = None
        self.losses: LossTracker | None = None  # sequence gaps into loss records, while ingesting
        self.subscription: str | None = None  # this store's name on the broker, once ingesting
        self.hub: Hub | None = None
        self.alerter: Any = None  # an alerts.Alerter when --alerts is set (imported only then)
        self.graphs = GraphCache()
        self.recent_metrics: Recent[str] = Recent(METRICS_TTL_S)  # /metrics' text (metrics.py)
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._running = False

    @property
    def store(self) -> Store:
        if self._store is None:
            self.start()
        assert self._store is not None
        return self._store

    @property
    def events_config(self) -> TransportConfig | None:
        sources = self.event_sources
        return sources[0].config if sources else None

    @property
    def event_sources(self) -> list[EventSource]:
        """The sources consumed: ``events`` given to the constructor, else the settings'."""
        if self._sources is None:
            if self._events is not None:
                self._sources = [EventSource("", self._events)]
            else:
                self._sources = event_sources(self.settings) if self.settings.ingest else []
        return self._sources

    @property
    def labelled_ingestors(self) -> list[Ingestor]:
        """The ingest loops of labelled sources (always in this process)."""
        return [i for i in self.ingestors if isinstance(i, Ingestor) and i.source]

    @property
    def source_labels(self) -> list[str]:
        """The labels of the sources, when there are labelled ones (empty otherwise)."""
        return [s.label for s in self._sources or () if s.label]

    @property
    def source_description(self) -> str | None:
        sources = self._sources or ()
        if not sources:
            return None
        return ", ".join(
            f"{s.label}={mask_url(s.config.url)}" if s.label else mask_url(s.config.url) for s in sources
        )

    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            if self._store is None:
                self._store = open_store(self.settings.store_url)
            store = self._store
            self.hub = Hub(store)
            self.hub.start()
            if self.settings.ingest:
                sources = self.event_sources
                cfg = sources[0].config if len(sources) == 1 and not sources[0].label else None
                consumer_name = self.settings.consumer_name or f"{socket.gethostname()}-{self.settings.port}"
                if cfg is not None and self.settings.ingest_process == "separate":
                    # ``stemtrace server`` resolved ``auto`` to this (ingest_process.separate);
                    # the child tracks losses too, beside the ingest loop that observes them.
                    # Several labelled sources always ingest in this process.
                    group = subscription_group(self.settings, store)
                    self.subscription = resolve(cfg).subscription_name(group)
                    logger.info(
                        "consuming %s through subscription %s in an ingest process",
                        mask_url(cfg.url),
                        self.subscription,
                    )
                    process = IngestProcess(
                        self.settings,
                        cfg,
                        group=group,
                        consumer_name=consumer_name,
                        on_commit=self.hub.publish,
                    )
                    process.start()
                    self.ingestors.append(process)
                    sources = []
                if sources:
                    self.losses = LossTracker(store)
                    self.losses.start()
                    group = subscription_group(self.settings, store)
                for source in sources:
                    assert self.losses is not None
                    cfg = source.config
                    subscription = resolve(cfg).subscription_name(group)
                    self.subscription = self.subscription or subscription
                    named = f" (source {source.label})" if source.label else ""
                    logger.info(
                        "consuming %s%s through subscription %s", mask_url(cfg.url), named, subscription
                    )
                    ingestor = Ingestor(
                        store,
                        cfg,
                        group=group,
                        batch_size=self.settings.write_batch_size,
                        consumer_name=consumer_name,
                        on_commit=self.hub.publish,
                        on_applied=self.losses.observe,
                        source=source.label,
                    )
                    ingestor.start()
                    self.ingestors.append(ingestor)
                self.ingestor = self.ingestors[0] if self.ingestors else None
                self.maintenance = Maintenance(
                    store,
                    retention=self.settings.retention,
                    failure_retention=self.settings.failure_retention,
                    heartbeat_interval=self.settings.expected_heartbeat_interval,
                    max_tasks=self.settings.max_tasks,
                    never_sent_after=self.settings.never_sent_after,
                )
                self.maintenance.start()
            if self.settings.alerts:
                from stemtrace.server.alerts import Alerter, load

                self.alerter = Alerter(
                    store,
                    load(self.settings.alerts),
                    public_url=self.settings.public_url,
                    heartbeat_interval=self.settings.expected_heartbeat_interval,
                    sources=[name for name, _ in parse_sources(self.settings.sources)],
                )
                self.alerter.start()
            self._running = True

    def stop(self) -> None:
        with self._lock:
            if not self._running:
                return
            for part in (self.alerter, *self.ingestors, self.maintenance, self.losses, self.hub):
                if part is not None:
                    part.stop()
            self.ingestors = []
            if self._store is not None and self._given_store is None:
                self._store.close()
                self._store = None
            self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def ensure(self) -> ServerContext:
        if not self._running:
            self.start()
        return self

    def describe(self) -> dict[str, Any]:
        return {"store": getattr(self._store, "description", None), "events": self.source_description}
