"""Compressing responses: brotli or gzip, whichever the client's ``Accept-Encoding`` prefers.

JSON compresses five- to fifteenfold: a 10,000-task workflow graph is megabytes of JSON
and a few hundred kilobytes on the wire. Starlette's ``GZipMiddleware`` only speaks gzip and
picks it by a substring match (``gzip;q=0`` would still get gzip), so this layer negotiates
both codings properly and compresses with ``zlib`` and the ``brotli`` package.

What is left alone: bodies under ``minimum_size`` (the headers would outweigh the savings),
media types that are already compressed or must not be (``text/event-stream``: a live stream
must reach the client event by event, and a compressor buffers), responses that already carry
a ``Content-Encoding`` (the UI's precompressed files, see ``web``), partial content (a range
of the identity body) and bodiless statuses. A streamed body (the CSV export) stays streamed:
each chunk is compressed and flushed as it comes. Big bodies are compressed in a worker thread
so the event loop keeps serving other requests meanwhile.

``HEAD`` is served as a ``GET`` by ``web.HeadAsGet`` outside this layer, so a ``HEAD``'s
``Content-Length`` and ``Content-Encoding`` are those of the ``GET`` it stands for.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from typing import Any, cast

import anyio.to_thread
import brotli
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Preferred first: brotli is ~15-20% smaller than gzip on this server's JSON at a similar speed.
CODINGS = ("br", "gzip")

# Media types worth compressing: text in any form. Images, fonts and archives are compressed
# by their own format already.
_TEXT_TYPES = frozenset(
    {"application/json", "application/javascript", "application/xml", "image/svg+xml", "application/wasm"}
)
_NEVER = frozenset({"text/event-stream"})
_BODILESS = frozenset({204, 206, 304})


def negotiate(accept_encoding: str, available: Iterable[str] = CODINGS) -> str | None:
    """The coding of ``available`` (in preference order) the client accepts with the highest
    weight, or ``None`` for the identity body.

    ``br;q=0`` refuses brotli, ``*`` stands for every coding not named, an unreadable weight
    counts as a refusal; among equal weights the earlier of ``available`` wins, so a browser's
    ``gzip, deflate, br, zstd`` gets brotli.
    """
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.partition(";")
        coding = name.strip().lower()
        if not coding:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        weights[coding] = weight if math.isfinite(weight) else 0.0  # NaN and inf refuse
    if "x-gzip" in weights and "gzip" not in weights:
        weights["gzip"] = weights["x-gzip"]
    default = weights.get("*", 0.0)
    best: str | None = None
    best_weight = 0.0
    for coding in available:
        weight = weights.get(coding, default)
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


def compressible(content_type: str) -> bool:
    """Whether a response of this ``Content-Type`` is worth compressing."""
    media = content_type.partition(";")[0].strip().lower()
    if media in _NEVER:
        return False
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def add_vary(headers: MutableHeaders, name: str = "Accept-Encoding") -> None:
    """Add ``name`` to ``Vary`` once: a shared cache must key the response by it."""
    present = {v.strip().lower() for value in headers.getlist("vary") for v in value.split(",")}
    if name.lower() not in present and "*" not in present:
        headers.append("Vary", name)


class _Encoder:
    """One response's compressor: ``feed`` returns the bytes ready so far, flushed so that a
    streamed chunk reaches the client whole; ``final=True`` ends the compressed stream."""

    def __init__(self, coding: str, gzip_level: int, brotli_quality: int) -> None:
        self.coding = coding
        if coding == "br":
            self._br: Any = brotli.Compressor(mode=brotli.MODE_TEXT, quality=brotli_quality)
        else:
            self._gz = zlib.compressobj(gzip_level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def feed(self, data: bytes, final: bool) -> bytes:
        if self.coding == "br":
            out = cast(bytes, self._br.process(data))
            return out + cast(bytes, self._br.finish() if final else self._br.flush())
        out = self._gz.compress(data)
        return out + self._gz.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class CompressionMiddleware:
    """Compress text responses with brotli or gzip as negotiated (see the module docstring).

    ``brotli_quality`` 4 and ``gzip_level`` 6 compress a 4.5 MB graph in tens of milliseconds;
    the highest settings would take seconds for a few percent less. Static files are
    compressed at the highest settings once, at build time, and served as they are.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 1024,
        gzip_level: int = 6,
        brotli_quality: int = 4,
        thread_minimum_size: int = 64 * 1024,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.gzip_level = gzip_level
        self.brotli_quality = brotli_quality
        self.thread_minimum_size = thread_minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        coding = negotiate(Headers(scope=scope).get("accept-encoding", ""))
        await self.app(scope, receive, _Responder(self, coding, send).send)


class _Responder:
    """The ``send`` of one response: holds back its start until the first body message shows
    whether the body is big enough to compress."""

    def __init__(self, config: CompressionMiddleware, coding: str | None, send: Send) -> None:
        self.config = config
        self.coding = coding
        self.downstream = send
        self.start: Message | None = None
        self.passthrough = False
        self.encoder: _Encoder | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = Headers(raw=list(message.get("headers", [])))
            self.passthrough = (
                message.get("status") in _BODILESS
                or "content-encoding" in headers
                or not compressible(headers.get("content-type", ""))
            )
            if self.passthrough:
                await self.downstream(message)
            else:
                self.start = message
            return
        if self.start is not None and kind == "http.response.body":
            await self._first_body(self.start, message)
            self.start = None
            return
        if self.start is not None:  # e.g. ``pathsend``: a file the server sends as it is
            await self.downstream(self.start)
            self.start = None
        if self.encoder is not None and kind == "http.response.body":
            more = bool(message.get("more_body", False))
            body = await self._compress(self.encoder, message.get("body", b""), final=not more)
            message = {"type": kind, "body": body, "more_body": more}
        await self.downstream(message)

    async def _first_body(self, start: Message, message: Message) -> None:
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if not more and len(body) < self.config.minimum_size:
            await self.downstream(start)
            await self.downstream(message)
            return
        raw = list(start.get("headers", []))
        headers = MutableHeaders(raw=raw)
        add_vary(headers)
        if self.coding is not None:
            self.encoder = _Encoder(self.coding, self.config.gzip_level, self.config.brotli_quality)
            body = await self._compress(self.encoder, body, final=not more)
            headers["Content-Encoding"] = self.coding
            etag = headers.get("etag")
            if etag is not None and not etag.startswith("W/"):
                headers["ETag"] = "W/" + etag  # the bytes differ from the identity body's
            if more:
                del headers["content-length"]
            else:
                headers["Content-Length"] = str(len(body))
            message = {"type": "http.response.body", "body": body, "more_body": more}
        await self.downstream({**start, "headers": raw})
        await self.downstream(message)

    async def _compress(self, encoder: _Encoder, body: bytes, final: bool) -> bytes:
        if len(body) < self.config.thread_minimum_size:
            return encoder.feed(body, final)
        feed: Callable[[bytes, bool], bytes] = encoder.feed
        return await anyio.to_thread.run_sync(feed, body, final)
