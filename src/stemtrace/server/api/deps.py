"""The request's view of the running server (shared by every router)."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from stemtrace.server.context import ServerContext


async def server(request: Request) -> ServerContext:
    """The running server. A coroutine, so a request does not take a worker-thread trip for it
    (``api/routing.py``); only the first request of a mounted app starts the server, in one."""
    ctx: ServerContext = request.app.state.stemtrace
    if ctx.running:
        return ctx
    return await run_in_threadpool(ctx.ensure)
