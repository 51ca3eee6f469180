"""Trace and Sentry links, end to end with the real tools: OpenTelemetry's Celery
instrumentation (in this sending process and in the worker) and Sentry's SDK in the worker,
reporting to a local HTTP sink that stands in for Sentry. Events go through a real broker into a
real server, and everything is checked through its HTTP API against the ids the tools
themselves produced (the worker's finished spans, the events the sink received).
"""

from __future__ import annotations

import gzip
import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli  # the server extra's; Sentry compresses envelopes with it when it is installed
import pytest
from celery.exceptions import DuplicateTaskNameWarning
from server_events import TestClient
from server_harness import cleanup_source, wait_for
from tests.support import AppSettings, WorkerProcess, make_app
from tests.support.results import wait as wait_result

from stemtrace.server import create_app
from stemtrace.transport import TransportConfig

pytestmark = pytest.mark.integration

TRACE_URL = "https://tempo.example/trace/{trace_id}?span={span_id}"
SENTRY_URL = "https://sentry.example/organizations/acme/issues/?query={event_id}"


def _source(settings: AppSettings) -> TransportConfig:
    return TransportConfig(url=settings.broker_url, name=settings.prefix + "stemtrace.events")


def _worker(settings: AppSettings, mode: str, **env: str) -> WorkerProcess:
    return WorkerProcess(
        settings,
        "prefork",
        concurrency=1,  # one pool process: its in-memory span exporter holds every span
        app="tests.support.traced_worker_app",
        env={"STEMTRACE_TEST_TRACING": mode, **env},
    )


def _task(c: Any, task_id: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def stored() -> bool:
        r = c.get(f"/api/tasks/{task_id}")
        found.update(r.json() if r.status_code == 200 else {})
        return found.get("state") == state

    wait_for(stored, timeout=60)
    return found


@pytest.fixture
def publisher_spans() -> Iterator[Any]:
    """OpenTelemetry's Celery instrumentation in this process (the sender), with its own provider."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


def test_opentelemetry_trace_ids_are_stored_per_attempt_and_linked(
    tmp_path: Path, redis_url: str, publisher_spans: Any
) -> None:
    import stemtrace.capture.install as capture

    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = _source(settings)
    capture.uninstall()
    t = make_app(settings)
    # The instrumentation finds the task a publish is for in the current app's registry, which
    # finalizes the app inside its signal handler, where an error (a duplicate name among the
    # shared tasks other tests defined in this process) would silently lose the span: finalize
    # here, where none of those tasks runs.
    t.app.set_current()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateTaskNameWarning)
        t.app.finalize()
    try:
        with _worker(settings, "otel"):
            ok, bad, flaky = t.add.delay(1, 2), t.fail.delay("boom"), t.flaky.delay(1)
            assert wait_result(ok, 30) == 3 and wait_result(flaky, 30) == "ok"
            with pytest.raises(ValueError, match="boom"):
                wait_result(bad, 30)
            worker_spans = t.app.send_task("t.spans").get(timeout=30)
        capture.flush(5.0)
        sent = {
            s.attributes["messaging.message.id"]: s
            for s in publisher_spans.get_finished_spans()
            if s.name.startswith("apply_async/")
        }
        runs: dict[str, list[dict[str, Any]]] = {}
        for span in worker_spans:
            if span["name"].startswith("run/"):
                runs.setdefault(span["task_id"], []).append(span)
        app = create_app(store_url=f"sqlite:///{tmp_path / 'otel.db'}", events=source, trace_url=TRACE_URL)
        with TestClient(app) as c:
            # A success: the trace the sender started (the worker's span continues it, under the
            # sender's span), so the attempt links to that trace at the sender's span.
            (attempt,) = _task(c, ok.id, "SUCCESS")["attempts"]
            trace = format(sent[ok.id].context.trace_id, "032x")
            (run,) = runs[ok.id]
            assert run["trace_id"] == trace  # OpenTelemetry's own propagation, for the record
            assert attempt["trace_id"] == trace
            assert attempt["span_id"] == format(sent[ok.id].context.span_id, "016x") == run["parent_span_id"]
            assert attempt["trace_url"] == f"https://tempo.example/trace/{trace}?span={attempt['span_id']}"
            assert attempt["sentry_url"] is None and attempt["sentry_event_id"] is None

            # A failure: the worker's own span, read while it was current.
            (attempt,) = _task(c, bad.id, "FAILURE")["attempts"]
            (run,) = runs[bad.id]
            assert (attempt["trace_id"], attempt["span_id"]) == (run["trace_id"], run["span_id"])

            # A retry: each attempt its own span, all in the sender's trace; the second attempt's
            # message was sent by the first run (OpenTelemetry's publish span inside the worker).
            first, second = _task(c, flaky.id, "SUCCESS")["attempts"]
            first_run, second_run = sorted(
                runs[flaky.id], key=lambda s: s["parent_span_id"] != attempt_parent(sent, flaky.id)
            )
            trace = format(sent[flaky.id].context.trace_id, "032x")
            assert (
                first["trace_id"]
                == second["trace_id"]
                == first_run["trace_id"]
                == second_run["trace_id"]
                == trace
            )
            assert first["span_id"] == first_run["span_id"]
            assert second["span_id"] == second_run["parent_span_id"] != first["span_id"]

            # The trace id in the search box finds the tasks of that trace.
            found = c.get("/api/tasks", params={"q": trace}).json()["items"]
            assert flaky.id in {f["id"] for f in found}
            for f in found:
                if f["name"] == "t.spans":
                    continue  # its result lists the spans: the id is in it as a value
                attempts = c.get(f"/api/tasks/{f['id']}").json()["attempts"]
                assert trace in {a["trace_id"] for a in attempts}, (f["name"], attempts)
    finally:
        capture.uninstall()
        cleanup_source(source)


def attempt_parent(sent: dict[str, Any], task_id: str) -> str:
    return format(sent[task_id].context.span_id, "016x")


class SentrySink:
    """A local HTTP server standing in for Sentry: it keeps every envelope item it is sent."""

    def __init__(self) -> None:
        self.items: list[tuple[dict[str, Any], Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    body = brotli.decompress(body)
                sink.items.extend(_envelope_items(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def errors(self) -> list[dict[str, Any]]:
        return [p for h, p in self.items if h.get("type") == "event"]

    def __enter__(self) -> SentrySink:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _envelope_items(body: bytes) -> list[tuple[dict[str, Any], Any]]:
    """An envelope's items: a header line, then per item a header line and its payload."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        try:
            items.append((header, json.loads(payload)))
        except ValueError:
            items.append((header, payload))
    return items


def test_sentry_event_and_trace_ids_are_stored_per_attempt_and_linked(tmp_path: Path, redis_url: str) -> None:
    import stemtrace.capture.install as capture

    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = _source(settings)
    capture.uninstall()
    t = make_app(settings)
    try:
        with SentrySink() as sink, _worker(settings, "sentry", STEMTRACE_TEST_DSN=sink.dsn):
            bad, spawner = t.fail.delay("boom"), t.spawner.delay(2)
            with pytest.raises(ValueError, match="boom"):
                wait_result(bad, 30)
            children = wait_result(spawner, 30)
            for child in children:
                assert wait_result(t.app.AsyncResult(child), 30) is not None

            def reported() -> bool:
                return any((e.get("tags") or {}).get("celery_task_id") == bad.id for e in sink.errors())

            wait_for(reported, timeout=30)
            capture.flush(5.0)
            (event,) = [e for e in sink.errors() if (e.get("tags") or {}).get("celery_task_id") == bad.id]
        app = create_app(
            store_url=f"sqlite:///{tmp_path / 'sentry.db'}", events=source, sentry_url=SENTRY_URL
        )
        with TestClient(app) as c:
            (attempt,) = _task(c, bad.id, "FAILURE")["attempts"]
            assert attempt["sentry_event_id"] == event["event_id"]
            assert attempt["sentry_trace_id"] == event["contexts"]["trace"]["trace_id"]
            assert attempt["sentry_url"] == SENTRY_URL.format(event_id=event["event_id"])
            # Tasks sent from inside a task carry Sentry's headers: its trace id is theirs.
            traces = {_task(c, child, "SUCCESS")["attempts"][0]["sentry_trace_id"] for child in children}
            assert len(traces) == 1 and None not in traces
            # No event to link to on a success; a template that needs one gives no link.
            assert _task(c, children[0], "SUCCESS")["attempts"][0]["sentry_url"] is None
            found = c.get("/api/tasks", params={"q": event["event_id"]}).json()["items"]
            assert [f["id"] for f in found] == [bad.id]
    finally:
        capture.uninstall()
        cleanup_source(source)
