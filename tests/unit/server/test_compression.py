"""Compressed responses over real HTTP: a uvicorn server in a thread, read with ``http.client``
(which, unlike httpx, never decodes a body, so the bytes on the wire are what is checked)."""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
import uvicorn
from server_events import EventFactory

from stemtrace.server import create_app
from stemtrace.server.compression import CompressionMiddleware, negotiate
from stemtrace.server.store import SqlStore

NOW = 1_790_100_000.0

ROOT = Path(__file__).resolve().parents[3]


class Served:
    """A running server, and raw requests to it."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self, path: str, accept: str | None = None, method: str = "GET"
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {} if accept is None else {"Accept-Encoding": accept}
        # http.client adds "Accept-Encoding: identity" unless told the request names one.
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response, body


@pytest.fixture
def static(tmp_path: Path) -> Path:
    """A built UI as the build leaves it: a hashed script with its .br and .gz copies."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(
        '<!doctype html><html><head><script type="module" src="./assets/index-AbC123xy.js"></script>'
        "</head><body></body></html>",
        encoding="utf-8",
    )
    script = "".join(
        f"export const value{i} = {{ name: 'task {i}', ready: {i % 2 == 0} }};\n" for i in range(400)
    )
    (root / "assets" / "index-AbC123xy.js").write_text(script, encoding="utf-8")
    raw = script.encode()
    (root / "assets" / "index-AbC123xy.js.br").write_bytes(brotli.compress(raw))
    (root / "assets" / "index-AbC123xy.js.gz").write_bytes(gzip.compress(raw))
    (root / "api-docs").mkdir()  # Swagger UI's copies keep their own, unhashed, names
    css = b"".join(b".swagger-rule-%d { margin: %dpx; }\n" % (i, i) for i in range(300))
    (root / "api-docs" / "swagger-ui.css").write_bytes(css)
    (root / "api-docs" / "swagger-ui.css.br").write_bytes(brotli.compress(css))
    return root


@pytest.fixture
def served(store: SqlStore, static: Path) -> Iterator[Served]:
    f = EventFactory()
    events = []
    for i in range(40):  # enough tasks that a page of them is well over the 1 KB threshold
        events += f.run(f"task-{i:03d}", "proj.ship_parcel", i, kwargs={"parcel": f"p-{i}"})
    store.apply(events, {}, NOW)
    app = create_app(store=store, ingest=False, static_dir=static)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(port)
    server.should_exit = True
    thread.join(timeout=20)


def decode(coding: str | None, body: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.decompress(body))
    if coding == "gzip":
        return gzip.decompress(body)
    assert coding is None
    return body


@pytest.mark.parametrize("path", ["/api/tasks?limit=40", "/api/openapi.json"])
@pytest.mark.parametrize(("accept", "coding"), [("gzip, deflate, br, zstd", "br"), ("gzip", "gzip")])
def test_api_json_is_compressed_as_negotiated(served: Served, path: str, accept: str, coding: str) -> None:
    plain, plain_body = served.request(path)
    assert plain.getheader("Content-Encoding") is None
    assert len(plain_body) > 1024
    response, body = served.request(path, accept)
    assert response.status == 200
    assert response.getheader("Content-Encoding") == coding
    assert "Accept-Encoding" in response.getheader("Vary", "")
    assert int(response.getheader("Content-Length", "-1")) == len(body)
    assert len(body) < len(plain_body) / 2
    assert json.loads(decode(coding, body)) == json.loads(plain_body)


@pytest.mark.parametrize("accept", [None, "identity", "br;q=0, gzip;q=0", "deflate", "*;q=0"])
def test_identity_when_no_coding_is_accepted(served: Served, accept: str | None) -> None:
    response, body = served.request("/api/tasks?limit=40", accept)
    assert response.getheader("Content-Encoding") is None
    assert "Accept-Encoding" in response.getheader("Vary", "")  # a cache must not share it with br clients
    assert len(json.loads(body)["items"]) == 40


def test_small_responses_are_left_alone(served: Served) -> None:
    response, body = served.request("/api/tasks/task-001/nope", "br, gzip")
    assert response.status == 404
    assert len(body) < 1024
    assert response.getheader("Content-Encoding") is None
    assert response.getheader("Vary") is None
    assert json.loads(body)["error"]["status"] == 404


def test_live_stream_is_never_compressed(served: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.putrequest("GET", "/api/stream", skip_accept_encoding=True)
    conn.putheader("Accept-Encoding", "br, gzip")
    conn.endheaders()
    response = conn.getresponse()
    try:
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.getheader("Content-Encoding") is None
        assert response.getheader("Vary") is None
        first = response.readline()  # the stream's first line arrives as plain text
        assert first.startswith((b":", b"event:", b"retry:", b"data:")), first
    finally:
        conn.close()


@pytest.mark.parametrize("accept", ["br", "gzip", None])
def test_head_has_the_headers_of_the_compressed_get(served: Served, accept: str | None) -> None:
    got, body = served.request("/api/openapi.json", accept)
    head, head_body = served.request("/api/openapi.json", accept, method="HEAD")
    assert head.status == 200
    assert head_body == b""
    assert head.getheader("Content-Encoding") == got.getheader("Content-Encoding")
    assert head.getheader("Content-Length") == str(len(body))


def test_csv_export_stays_streamed_when_compressed(served: Served) -> None:
    plain, plain_body = served.request("/api/tasks.csv")
    response, body = served.request("/api/tasks.csv", "gzip")
    assert plain.getheader("Content-Encoding") is None
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("Content-Length") is None
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert gzip.decompress(body) == plain_body
    assert plain_body.count(b"\r\n") == 41  # the header and 40 tasks


@pytest.mark.parametrize(("accept", "coding"), [("gzip, br", "br"), ("gzip", "gzip"), ("deflate", None)])
def test_static_assets_are_sent_precompressed(
    served: Served, static: Path, accept: str, coding: str | None
) -> None:
    original = (static / "assets" / "index-AbC123xy.js").read_bytes()
    response, body = served.request("/assets/index-AbC123xy.js", accept)
    assert response.status == 200
    assert response.getheader("Content-Encoding") == coding
    assert response.getheader("Content-Type", "").startswith("text/javascript")
    assert response.getheader("Vary") == "Accept-Encoding"
    assert response.getheader("Cache-Control") == "public, max-age=31536000, immutable"
    assert int(response.getheader("Content-Length", "-1")) == len(body)
    assert decode(coding, body) == original
    if coding is not None:
        suffix = {"br": ".br", "gzip": ".gz"}[coding]
        assert body == (static / "assets" / ("index-AbC123xy.js" + suffix)).read_bytes()


def test_unhashed_files_are_revalidated(served: Served, static: Path) -> None:
    response, body = served.request("/api-docs/swagger-ui.css", "br")
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("Content-Encoding") == "br"
    assert brotli.decompress(body) == (static / "api-docs" / "swagger-ui.css").read_bytes()


def test_a_missing_precompressed_copy_falls_back(served: Served, static: Path) -> None:
    (static / "assets" / "index-AbC123xy.js.br").unlink()
    response, body = served.request("/assets/index-AbC123xy.js", "br, gzip")
    assert response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == (static / "assets" / "index-AbC123xy.js").read_bytes()


def test_index_html_is_revalidated_and_copies_are_not_files(served: Served) -> None:
    response, body = served.request("/", "br, gzip")
    assert response.status == 200
    assert response.getheader("Cache-Control") == "no-cache"
    assert b'name="stemtrace-root"' in decode(response.getheader("Content-Encoding"), body)
    copy, _ = served.request("/assets/index-AbC123xy.js.br", "br")
    assert copy.status == 404  # compressed bytes must never be served labelled as a script


def test_big_bodies_are_compressed_off_the_loop_and_once(served: Served, store: SqlStore) -> None:
    f = EventFactory()
    events = []
    for i in range(600):
        events += f.run(
            f"bulk-{i:04d}",
            "proj.search.index_document_for_the_search_backend",
            100 + i,
            kwargs={"doc": f"d-{i}" * 12},
        )
    store.apply(events, {}, NOW)
    _, plain = served.request("/api/tasks?limit=500")
    assert len(plain) > 256 * 1024  # over the memo's threshold, and the worker thread's
    for coding in ("br", "gzip"):
        first, body = served.request("/api/tasks?limit=500", coding)
        again, body_again = served.request("/api/tasks?limit=500", coding)
        assert first.getheader("Content-Encoding") == again.getheader("Content-Encoding") == coding
        assert body_again == body
        assert json.loads(decode(coding, body)) == json.loads(plain)


def test_the_memo_returns_the_stored_copy_and_stays_bounded() -> None:
    middleware = CompressionMiddleware(lambda *_: None, memo_minimum_size=1024, memo_bytes=64 * 1024)  # type: ignore[arg-type]
    bodies = [(b'{"id": %d, "pad": "' % i) + bytes(range(32, 127)) * 3000 + b'"}' for i in range(80)]
    first = middleware.compress_whole("br", bodies[0])
    assert middleware.compress_whole("br", bodies[0]) is first  # not compressed again
    assert middleware.compress_whole("gzip", bodies[0]) is not first
    assert brotli.decompress(first) == bodies[0]
    for body in bodies[1:]:
        assert gzip.decompress(middleware.compress_whole("gzip", body)) == body
    assert middleware.memo._size <= 64 * 1024
    assert middleware.compress_whole("br", bodies[0]) is not first  # evicted, compressed anew


def test_negotiation_follows_the_weights() -> None:
    assert negotiate("gzip, deflate, br, zstd") == "br"
    assert negotiate("br;q=0.5, gzip") == "gzip"
    assert negotiate("br;q=0, gzip;q=0.1") == "gzip"
    assert negotiate("*") == "br"
    assert negotiate("*, br;q=0") == "gzip"
    assert negotiate("GZIP") == "gzip"
    assert negotiate("x-gzip") == "gzip"
    assert negotiate("br;q=nan, gzip;q=bogus") is None
    assert negotiate("") is None
    assert negotiate("br", available=["gzip"]) is None


@pytest.mark.skipif(shutil.which("node") is None, reason="the UI build step needs Node.js")
def test_build_step_writes_copies_that_decode_to_the_originals(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    script = b"".join(b"console.log('line %d of a bundle');\n" % i for i in range(300))
    (tmp_path / "assets" / "app-Zx9Yw8Vu.js").write_bytes(script)
    (tmp_path / "assets" / "tiny-Q1w2E3r4.js").write_bytes(b"export {};\n")
    (tmp_path / "assets" / "logo-Q1w2E3r4.png").write_bytes(b"\x89PNG" + bytes(4000))
    (tmp_path / "index.html").write_bytes(b"<!doctype html>" + b" " * 2000)
    subprocess.run(
        ["node", str(ROOT / "frontend" / "scripts" / "compress-assets.mjs"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    assert brotli.decompress((tmp_path / "assets" / "app-Zx9Yw8Vu.js.br").read_bytes()) == script
    assert gzip.decompress((tmp_path / "assets" / "app-Zx9Yw8Vu.js.gz").read_bytes()) == script
    made = sorted(p.name for p in tmp_path.rglob("*") if p.suffix in {".br", ".gz"})
    assert made == ["app-Zx9Yw8Vu.js.br", "app-Zx9Yw8Vu.js.gz"]  # not tiny, binary or index.html files
