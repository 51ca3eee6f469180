"""Serving the UI's built files, with an SPA fallback, or a page saying it is not built.

The UI uses relative asset paths and learns its API base from a
``<meta name="stemtrace-root">`` tag, so one build works under any ``--root-path``.
Client-side routes (``/tasks/abc``) get ``index.html``; a URL that names a file (under
``assets/``, or ending in an extension such as ``.js``) and does not exist is a 404, so a
stale or mistyped asset URL never receives HTML that the browser would run as a script.
"""

from __future__ import annotations

import html
import mimetypes
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stemtrace.server.api.errors import error_response
from stemtrace.server.compression import negotiate

STATIC_DIR = Path(__file__).parent / "static"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stemtrace</title>{meta}</head>
<body><h1>stemtrace</h1>
<p>The stemtrace UI is not built. The API is running: see <a href="{root}/api/docs">{root}/api/docs</a>
and <a href="{root}/api/health">{root}/api/health</a>.</p>
<p>To build the UI: <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>.</p>
</body></html>
"""


# The SPA's own routes: anything below them is a route even when it looks like a file name
# (a task id such as ``report.csv`` is still a task page).
_ROUTES = ("tasks/", "workflows/")
_FILE_NAME = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def _names_a_file(path: str) -> bool:
    """True for a URL path (below the root) that asks for a file rather than a page."""
    if path.startswith(_ROUTES):
        return False
    return path == "assets" or path.startswith("assets/") or bool(_FILE_NAME.search(path))


def _static_file(static_dir: Path, path: str) -> Path | None:
    """The file under ``static_dir`` that ``path`` names, or ``None``.

    A URL is no file name the OS must accept: a NUL byte, an over-long component or a
    lone surrogate makes ``resolve``/``is_file`` raise, and that is a missing file, not a 500.
    """
    try:
        base = static_dir.resolve()
        target = (static_dir / path).resolve()
        return target if target.is_file() and base in target.parents else None
    except (OSError, ValueError):
        return None


# Precompressed copies the UI build writes next to each file (frontend/scripts/compress-assets.mjs).
_VARIANTS = {"br": ".br", "gzip": ".gz"}
IMMUTABLE = "public, max-age=31536000, immutable"


def _is_variant(target: Path) -> bool:
    """``x.js.br`` beside ``x.js`` is a coding of it, not a file of its own: served as itself it
    would be compressed bytes labelled as a script."""
    return target.suffix in {".br", ".gz"} and target.with_suffix("").is_file()


def _file_response(target: Path, hashed: bool, accept_encoding: str) -> FileResponse:
    """A built file, as its precompressed copy when the client accepts one.

    Vite names every file under ``assets/`` by its content hash (``hashed``), so those never
    change and are cached for a year; the rest (Swagger UI's copies) are revalidated by ETag.
    """
    media = mimetypes.guess_type(str(target))[0] or "application/octet-stream"
    headers = {"Cache-Control": IMMUTABLE if hashed else "no-cache"}
    available = [c for c, suffix in _VARIANTS.items() if target.with_name(target.name + suffix).is_file()]
    if not available:
        return FileResponse(target, media_type=media, headers=headers)
    headers["Vary"] = "Accept-Encoding"
    coding = negotiate(accept_encoding, available)
    if coding is None:
        return FileResponse(target, media_type=media, headers=headers)
    headers["Content-Encoding"] = coding
    variant = target.with_name(target.name + _VARIANTS[coding])
    return FileResponse(variant, media_type=media, headers=headers)


def _meta(root: str) -> str:
    # <base> makes the build's relative asset paths resolve from the app root on deep links.
    safe = html.escape(root, quote=True)
    return f'<base href="{safe}/"><meta name="stemtrace-root" content="{safe}">'


class PrefixedPaths:
    """Serve requests whose path still carries the ``--root-path`` prefix.

    uvicorn puts ``root_path`` in front of every request path, which is right when the proxy
    strips the prefix (``/stemtrace/tasks`` arrives as ``/tasks``). A proxy that forwards the
    path unchanged makes it ``/stemtrace/stemtrace/tasks``, which no route matches: drop the
    repeated prefix, so both kinds of proxy (and direct requests) work.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "") if scope["type"] in {"http", "websocket"} else ""
        path = scope.get("path", "")
        if root and (path == root + root or path.startswith(root + root + "/")):
            scope = dict(scope)
            scope["path"] = path[len(root) :]
            raw = scope.get("raw_path")
            prefix = root.encode()
            if isinstance(raw, bytes) and raw.startswith(prefix + prefix):
                scope["raw_path"] = raw[len(prefix) :]
        await self.app(scope, receive, send)


class HeadAsGet:
    """``HEAD`` wherever ``GET`` works: the request is served as a ``GET`` without its body.

    FastAPI's ``@router.get`` routes answer ``HEAD`` with 405, yet monitors and link
    checkers probe with ``HEAD``. The headers (``content-length`` included) are the ``GET``'s.
    A streamed response (``/api/stream``) ends after its headers: the first body message is
    sent empty and final, the rest dropped, and the server then reports the client gone, which
    stops the stream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["method"] = "GET"
        finished = False

        async def headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished:
                    return
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def receive_until_done() -> Message:
            if finished:  # the response is complete: a streaming body must stop
                return {"type": "http.disconnect"}
            return await receive()

        await self.app(scope, receive_until_done, headers_only)


def make_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    index_cache: dict[str, str] = {}

    def index(root: str) -> HTMLResponse:
        page = static_dir / "index.html"
        if not page.is_file():
            return HTMLResponse(NOT_BUILT.format(meta=_meta(root), root=html.escape(root)))
        if root not in index_cache:
            text = page.read_text(encoding="utf-8")
            index_cache[root] = text.replace("<head>", "<head>" + _meta(root), 1)
        return HTMLResponse(index_cache[root], headers={"Cache-Control": "no-cache"})

    @router.get("/{path:path}")
    def ui(request: Request, path: str) -> Response:
        root = request.scope.get("root_path", "") or ""
        if path == "api" or path.startswith("api/"):
            return error_response(404, "no such API route")
        if path and (static_dir / "index.html").is_file():
            target = _static_file(static_dir, path)
            if target is not None and not _is_variant(target):
                hashed = target.relative_to(static_dir.resolve()).parts[0] == "assets"
                return _file_response(target, hashed, request.headers.get("accept-encoding", ""))
        if _names_a_file(path):
            return error_response(404, "no such file")
        return index(root)

    return router
