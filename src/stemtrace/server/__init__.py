"""The stemtrace server: ingest, storage, HTTP API and UI (``pip install "stemtrace[server]"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """Build the ASGI app; see :func:`stemtrace.server.app.create_app`."""
    from stemtrace.server.app import create_app as build

    return build(*args, **kwargs)
