"""``create_app``: the ASGI application, standalone or mounted inside another app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from stemtrace import __version__
from stemtrace.server import api_docs, metrics, web
from stemtrace.server.api import beat, errors, export, meta, tasks
from stemtrace.server.api.schemas import ErrorBody
from stemtrace.server.compression import CompressionMiddleware
from stemtrace.server.context import ServerContext
from stemtrace.server.live import close_streams_on_signals
from stemtrace.server.security import Cors, SecurityMiddleware
from stemtrace.server.settings import ServerSettings
from stemtrace.server.store import Store
from stemtrace.transport import TransportConfig

DESCRIPTION = (
    "Read-only API of a stemtrace server: Celery tasks, attempts, workflows (graphs), workers, "
    "health and a live change stream. Timestamps are ISO-8601 UTC. Errors are "
    '`{"error": {"status", "message", "detail"}}`.'
)

# Answers any route may give before its own code runs (see errors.InputGuard and security).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a NUL byte in the path or a query parameter"},
    401: {"model": ErrorBody, "description": "authentication is on and no valid credentials were sent"},
    414: {"model": ErrorBody, "description": "the path, the query string or one parameter is too long"},
    429: {
        "model": ErrorBody,
        "description": "too many failed authentication attempts from this address (see Retry-After)",
    },
    503: {
        "model": ErrorBody,
        "description": "the store cannot answer now (locked, unreachable, its file or schema gone); "
        "retry after Retry-After seconds. /api/health says why",
    },
}


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
        restore = close_streams_on_signals(ctx.hub) if ctx.hub is not None else None
        try:
            yield
        finally:
            if restore is not None:
                restore()
            ctx.stop()

    app = FastAPI(
        title="stemtrace",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by api_docs: no CDN, no inline script
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
    )
    app.state.stemtrace = ctx
    errors.install(app)
    app.include_router(tasks.router)
    app.include_router(export.router)
    app.include_router(beat.router)
    app.include_router(meta.router)
    app.include_router(metrics.router)
    app.include_router(api_docs.make_router(static_dir or web.STATIC_DIR))
    app.include_router(web.make_router(static_dir or web.STATIC_DIR))
    # Each is added outside the ones before, so a request passes PrefixedPaths, HeadAsGet,
    # CompressionMiddleware, Cors, SecurityMiddleware and InputGuard, in that order, before a route.
    app.add_middleware(errors.InputGuard)  # hostile URLs get a 4xx before any route sees them
    app.add_middleware(SecurityMiddleware, settings=settings)
    if settings.cors_origins:
        # Outside authentication: browsers send preflights without credentials.
        app.add_middleware(
            Cors,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD"],
            allow_headers=["*"],
        )
    # Inside HeadAsGet: a HEAD gets the headers (Content-Encoding, Content-Length) of its GET.
    app.add_middleware(CompressionMiddleware)
    app.add_middleware(web.HeadAsGet)
    app.add_middleware(web.PrefixedPaths)  # outermost: every layer sees the normalised path
    return app
