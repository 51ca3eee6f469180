"""The request's view of the running server (shared by every router)."""

from __future__ import annotations

from fastapi import Request

from stemtrace.server.context import ServerContext


def server(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.stemtrace
    return ctx.ensure()
