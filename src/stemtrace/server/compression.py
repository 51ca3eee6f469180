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

import hashlib
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, cast

import anyio.to_thread
import brotli
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Preferred first: on this server's JSON brotli is smaller than gzip (2-3x on big graphs) and faster.
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


class _Memo:
    """Compressed copies of recent big bodies, by the digest of their identity bytes.

    A cached workflow graph is megabytes that every viewer and every poll asks for again
    unchanged; compressing it costs 10-30 ms a time, hashing it 1-2 ms. Bounded by the
    compressed size kept, least recently used first out.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, bytes]) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, bytes], value: bytes) -> None:
        if len(value) > self.max_bytes // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


class CompressionMiddleware:
    """Compress text responses with brotli or gzip as negotiated (see the module docstring).

    Settings measured on this server's JSON (docs/benchmarks-server.md): brotli quality 2
    compresses a 2.5 MB workflow graph 60-fold in ~10 ms, where quality 4 takes three times as
    long for a bigger result and 11 takes seconds; bodies under ``large_size`` use quality 4: a
    32 KB task page in 0.5 ms where 5 took 1.1 ms for 1% fewer bytes, on every list request
    (docs/benchmarks-server.md, "Read and ingest isolated"). gzip (what browsers ask for over
    plain HTTP, where they never offer brotli) uses zlib's default level 6. Whole bodies of at
    least ``memo_minimum_size`` (64 KB: ``/metrics`` of a few hundred task names and library
    processes is 200 KB, the same text for a second) are compressed once per content (see
    ``_Memo``). Static files are compressed at the highest settings at build time and served as
    they are.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 1024,
        gzip_level: int = 6,
        brotli_quality: int = 4,
        brotli_quality_large: int = 2,
        large_size: int = 64 * 1024,
        memo_minimum_size: int = 64 * 1024,
        memo_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.gzip_level = gzip_level
        self.brotli_quality = brotli_quality
        self.brotli_quality_large = brotli_quality_large
        self.large_size = large_size
        self.memo_minimum_size = memo_minimum_size
        self.memo = _Memo(memo_bytes)

    def encoder(self, coding: str, first_size: int) -> _Encoder:
        large = first_size >= self.large_size
        quality = self.brotli_quality_large if large else self.brotli_quality
        return _Encoder(coding, self.gzip_level, quality)

    def compress_whole(self, coding: str, body: bytes) -> bytes:
        """A complete body, compressed (from the memo when it is big and was seen before)."""
        if len(body) < self.memo_minimum_size:
            return self.encoder(coding, len(body)).feed(body, final=True)
        key = (coding, hashlib.sha256(body).digest())
        found = self.memo.get(key)
        if found is None:
            found = self.encoder(coding, len(body)).feed(body, final=True)
            self.memo.put(key, found)
        return found

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
            if more:
                self.encoder = self.config.encoder(self.coding, len(body))
                body = await self._compress(self.encoder, body, final=False)
            else:
                body = await self._off_loop(len(body), self.config.compress_whole, self.coding, body)
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
        return await self._off_loop(len(body), encoder.feed, body, final)

    async def _off_loop(self, size: int, fn: Callable[..., bytes], *args: Any) -> bytes:
        """``fn(*args)``, in a worker thread when the body is big: compressing megabytes takes
        milliseconds the event loop should spend serving other requests."""
        if size < self.config.large_size:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args)
