"""One JSON error shape for every 4xx/5xx: ``{"error": {"status", "message", "detail"}}``.

Bad input must say what is wrong and never become a 5xx, so validation errors,
unknown routes and wrong methods under ``/api`` all pass through here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stemtrace.server.store import StoreError
from stemtrace.server.store.faults import unavailable
from stemtrace.transport import mask_url

logger = logging.getLogger("stemtrace.server.api")

# Longest path and query string served: a task id, a cursor or a search text fits easily; a
# 65,000-character ``q`` is no search, and SQLite refuses LIKE patterns past 50,000 bytes.
MAX_PATH_CHARS = 4096
MAX_QUERY_CHARS = 16_384
MAX_VALUE_CHARS = 4096

# A store outage fails every request until it ends: say so in the log once per this many
# seconds per kind of fault, not once per request.
UNAVAILABLE_LOG_EVERY_S = 30.0
RETRY_AFTER_S = 5


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def error_response(
    status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message, "detail": detail}},
        status_code=status,
        headers=headers,
    )


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return error_response(422, _describe(errors), errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        if exc.status_code == 405:
            message = "the API is read-only: only GET (and HEAD) are allowed"
        return error_response(exc.status_code, message, None, headers=getattr(exc, "headers", None))

    # Registered by class, so they answer inside the app (``Exception``'s handler answers from
    # the outermost middleware and re-raises to the ASGI server, which logs a traceback).
    for kind in _store_error_classes():
        app.add_exception_handler(kind, _store_failure)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error in API handler")
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


def _store_error_classes() -> list[type[Exception]]:
    kinds: list[type[Exception]] = [StoreError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is part of the server extra
        return kinds
    return [*kinds, psycopg.Error]


class _OncePer:
    """Whether to log now: once per ``every`` seconds for each key."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                return False
            self._last[key] = now
            return True


_log_unavailable = _OncePer(UNAVAILABLE_LOG_EVERY_S)


async def _store_failure(_: Request, exc: Exception) -> JSONResponse:
    """503 with ``Retry-After`` while the store cannot answer (locked, unreachable, its schema
    or file gone); 500, logged with its traceback, for an error of stemtrace's own."""
    if not unavailable(exc):
        logger.exception("unhandled error in API handler", exc_info=exc)
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    why = mask_url(first)[:300]
    if _log_unavailable(type(exc).__name__):
        logger.warning(
            "the store cannot answer; API requests get 503 until it can (%s: %s)", type(exc).__name__, why
        )
    return error_response(
        503,
        f"the store is unavailable, retry later: {why}",
        {"reason": "store_unavailable", "error": type(exc).__name__},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(
    send: Send, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """The one error shape, written straight to ASGI (for middleware, before any route runs)."""
    body = json.dumps(
        {"error": {"status": status, "message": message, "detail": None}}, separators=(",", ":")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def hostile_input(scope: Scope) -> tuple[int, str] | None:
    """What is wrong with a request's path or query string that no route should ever see.

    NUL bytes cannot be stored or passed to the OS (PostgreSQL text and file paths refuse
    them), and outsized values only cost the database: both are refused here, once, with a
    4xx, so no handler has to remember to.
    """
    path: str = scope.get("path", "")
    if len(path) > MAX_PATH_CHARS:
        return 414, f"the path is longer than {MAX_PATH_CHARS} characters"
    if "\x00" in path:
        return 400, "the path contains a NUL byte"
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    if len(raw) > MAX_QUERY_CHARS * 3:  # every character percent-encoded at worst
        return 414, f"the query string is longer than {MAX_QUERY_CHARS} characters"
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" "))
        decoded = unquote_to_bytes(value.replace(b"+", b" "))
        label = key[:40].decode("utf-8", "replace").replace("\x00", "\\0")
        if b"\x00" in decoded or b"\x00" in key:
            return 400, f"query parameter {label!r} contains a NUL byte"
        # Bytes first (cheap); a long value of multi-byte characters is then counted in characters.
        if len(decoded) > MAX_VALUE_CHARS and len(decoded.decode("utf-8", "replace")) > MAX_VALUE_CHARS:
            return 414, f"query parameter {label!r} is longer than {MAX_VALUE_CHARS} characters"
    return None


class InputGuard:
    """Answers requests with a NUL byte or outsized values in the URL before routing (4xx)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = hostile_input(scope)
            if problem is not None:
                await send_error(send, *problem)
                return
        await self.app(scope, receive, send)
