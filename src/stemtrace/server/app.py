"""``create_app``: the ASGI application, standalone or mounted inside another app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from stemtrace import __version__
from stemtrace.server import api_docs, metrics, web
from stemtrace.server.api import errors, meta, tasks
from stemtrace.server.context import ServerContext
from stemtrace.server.security import SecurityMiddleware
from stemtrace.server.settings import ServerSettings
from stemtrace.server.store import Store
from stemtrace.transport import TransportConfig

DESCRIPTION = (
    "Read-only API of a stemtrace server: Celery tasks, attempts, workflows (graphs), workers, "
    "health and a live change stream. Timestamps are ISO-8601 UTC. Errors are "
    '`{"error": {"status", "message", "detail"}}`.'
)


def create_app(
    settings: ServerSettings | None = None,
    *,
    store_url: str | None = None,
    events_url: str | None = None,
    ingest: bool | None = None,
    store: Store | None = None,
    events: TransportConfig | None = None,
    static_dir: Path | None = None,
    **options: Any,
) -> FastAPI:
    """Build the stemtrace ASGI app.

    Pass a :class:`ServerSettings`, or keyword options named like the settings
    (``store_url``/``events_url`` are shorthands for ``store``/``events_url``).
    ``ingest=False`` serves a read-only replica. When mounted inside another app
    (whose lifespan does not reach mounted apps) everything starts on the first request.
    """
    given: dict[str, Any] = dict(options)
    if store_url is not None:
        given["store"] = store_url
    if events_url is not None:
        given["events_url"] = events_url
    if ingest is not None:
        given["ingest"] = ingest
    settings = settings.with_(**given) if settings is not None else ServerSettings.build(env={}, **given)
    ctx = ServerContext(settings, store=store, events=events)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.start()
        try:
            yield
        finally:
            ctx.stop()

    app = FastAPI(
        title="stemtrace",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by api_docs: no CDN, no inline script
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.stemtrace = ctx
    errors.install(app)
    app.include_router(tasks.router)
    app.include_router(meta.router)
    app.include_router(metrics.router)
    app.include_router(api_docs.make_router(static_dir or web.STATIC_DIR))
    app.include_router(web.make_router(static_dir or web.STATIC_DIR))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=["*"],
        )
    app.add_middleware(SecurityMiddleware, settings=settings)
    app.add_middleware(web.PrefixedPaths)  # outermost: every layer sees the normalised path
    return app
