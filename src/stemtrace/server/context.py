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
from stemtrace.server.source import subscription_group, transport_config
from stemtrace.server.store import Store, open_store
from stemtrace.transport import TransportConfig, mask_url, resolve

logger = logging.getLogger("stemtrace.server")


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
        self.ingestor: Ingestor | IngestProcess | None = None
        self.maintenance: Maintenance | None = None
        self.losses: LossTracker | None = None  # sequence gaps into loss records, while ingesting
        self.subscription: str | None = None  # this store's name on the broker, once ingesting
        self.hub: Hub | None = None
        self.alerter: Any = None  # an alerts.Alerter when --alerts is set (imported only then)
        self.graphs = GraphCache()
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
        if self._events is None and self.settings.ingest:
            self._events = transport_config(self.settings)
        return self._events

    @property
    def source_description(self) -> str | None:
        cfg = self._events
        return mask_url(cfg.url) if cfg is not None else None

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
                cfg = self.events_config
                consumer_name = self.settings.consumer_name or f"{socket.gethostname()}-{self.settings.port}"
                if cfg is not None and self.settings.ingest_process == "separate":
                    # ``stemtrace server`` resolved ``auto`` to this (ingest_process.separate);
                    # the child tracks losses too, beside the ingest loop that observes them.
                    group = subscription_group(self.settings, store)
                    self.subscription = resolve(cfg).subscription_name(group)
                    logger.info(
                        "consuming %s through subscription %s in an ingest process",
                        mask_url(cfg.url),
                        self.subscription,
                    )
                    self.ingestor = IngestProcess(
                        self.settings,
                        cfg,
                        group=group,
                        consumer_name=consumer_name,
                        on_commit=self.hub.publish,
                    )
                    self.ingestor.start()
                elif cfg is not None:
                    self.losses = LossTracker(store)
                    self.losses.start()
                    group = subscription_group(self.settings, store)
                    self.subscription = resolve(cfg).subscription_name(group)
                    logger.info("consuming %s through subscription %s", mask_url(cfg.url), self.subscription)
                    self.ingestor = Ingestor(
                        store,
                        cfg,
                        group=group,
                        batch_size=self.settings.write_batch_size,
                        consumer_name=consumer_name,
                        on_commit=self.hub.publish,
                        on_applied=self.losses.observe,
                    )
                    self.ingestor.start()
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
                )
                self.alerter.start()
            self._running = True

    def stop(self) -> None:
        with self._lock:
            if not self._running:
                return
            for part in (self.alerter, self.ingestor, self.maintenance, self.losses, self.hub):
                if part is not None:
                    part.stop()
            if self._store is not None and self._given_store is None:
                self._store.close()
                self._store = None
            self._running = False

    def ensure(self) -> ServerContext:
        if not self._running:
            self.start()
        return self

    def describe(self) -> dict[str, Any]:
        return {"store": getattr(self._store, "description", None), "events": self.source_description}
