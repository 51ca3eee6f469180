"""Auth that cannot be turned against the server: pooled hashing, a cache, rate limits, CORS.

The brute-force test runs the app in a real uvicorn server and sends real HTTP: four
clients hammer wrong passwords (each a 200,000-iteration PBKDF2) while a logged-in client
keeps asking; every one of its requests is answered, and the attackers are soon answered
429 without any hashing.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn
from server_events import TestClient

from stemtrace.server import create_app, security
from stemtrace.server.security import (
    MAX_FAILURES,
    Authenticator,
    CredentialCache,
    FailureLimiter,
    hash_password,
)
from stemtrace.server.settings import ServerSettings
from stemtrace.server.store import SqlStore

PASSWORD_HASH = hash_password("correct horse")  # the real iteration count, on purpose


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _auth_app(store: SqlStore, **extra: Any) -> Any:
    return create_app(store=store, ingest=False, auth_user="ops", auth_password_hash=PASSWORD_HASH, **extra)


class _Server:
    """The app in a real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def test_wrong_passwords_from_four_clients_do_not_block_a_logged_in_client(filled: SqlStore) -> None:
    with _Server(_auth_app(filled)) as base:
        good = httpx.Client(base_url=base, headers=basic("ops", "correct horse"), timeout=30)
        assert good.get("/api/tasks").status_code == 200  # logs in: verified once, then cached
        stop = threading.Event()
        statuses: list[int] = []
        lock = threading.Lock()

        def attacker(n: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    r = c.get("/api/tasks", headers=basic("ops" if n % 2 else f"nobody{n}", f"guess-{n}-{i}"))
                    with lock:
                        statuses.append(r.status_code)
                    i += 1

        threads = [threading.Thread(target=attacker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        answered = []
        try:
            time.sleep(0.3)
            for _ in range(40):
                answered.append(good.get("/api/tasks").status_code)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            good.close()
    assert answered == [200] * 40
    # The attackers were answered too, first 401 (hashed), then 429 (refused before hashing).
    assert 401 in statuses and 429 in statuses
    assert statuses.count(401) <= MAX_FAILURES + security.MAX_PENDING
    assert statuses.count(429) > statuses.count(401)


def test_a_password_check_in_progress_holds_no_other_request(
    filled: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While hashes are running, the event loop still answers: the hash is made to wait here until
    the logged-in client's request has been answered, which could never happen on the loop."""
    release = threading.Event()
    real = security.verify_password

    def held(password: str, encoded: str) -> bool:
        release.wait(30)
        return real(password, encoded)

    with _Server(_auth_app(filled)) as base:
        good = httpx.Client(base_url=base, headers=basic("ops", "correct horse"), timeout=30)
        assert good.get("/api/tasks").status_code == 200
        monkeypatch.setattr(security, "verify_password", held)
        results: list[int] = []
        threads = [
            threading.Thread(
                target=lambda n=n: results.append(
                    httpx.get(base + "/api/tasks", headers=basic("ops", f"bad{n}"), timeout=30).status_code
                )
            )
            for n in range(3)
        ]
        for t in threads:
            t.start()
        try:
            # Two bad attempts are now hashing (held); the third was refused at once.
            deadline = time.monotonic() + 10
            while not results and time.monotonic() < deadline:
                time.sleep(0.02)
            assert results == [429]
            answered = good.get("/api/tasks", timeout=10)
            assert answered.status_code == 200
            assert good.get("/api/health").json()["status"] == "ok"
            assert results == [429]  # still hashing: the answers above did not wait for them
        finally:
            release.set()
            for t in threads:
                t.join(30)
            good.close()
    # Two per address may hash at once; the third was refused without waiting.
    assert sorted(results) == [401, 401, 429]


def test_rate_limit_answers_429_with_retry_after_and_spares_cached_credentials(filled: SqlStore) -> None:
    with TestClient(_auth_app(filled)) as c:
        assert c.get("/api/tasks", headers=basic("ops", "correct horse")).status_code == 200
        for i in range(MAX_FAILURES):
            assert c.get("/api/tasks", headers=basic("ops", f"wrong{i}")).status_code == 401
        limited = c.get("/api/tasks", headers=basic("ops", "one more"))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["status"] == 429
        assert "too many failed" in limited.json()["error"]["message"]
        assert limited.headers["x-frame-options"] == "DENY"  # security headers on refusals too
        # A wrong bearer token from the same address is refused the same way.
        assert c.get("/api/tasks", headers={"Authorization": "Bearer x"}).status_code == 429
        # Already-verified credentials still pass from the limited address.
        assert c.get("/api/tasks", headers=basic("ops", "correct horse")).status_code == 200


def test_failure_window_slides_and_the_table_is_bounded() -> None:
    limiter = FailureLimiter(limit=3, window=10.0, size=2)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("a", t) == 0.0
        limiter.fail("a", t)
    assert limiter.retry_after("a", 3.0) == pytest.approx(7.0)
    assert limiter.retry_after("a", 10.5) == 0.0  # the first failure left the window
    limiter.fail("b", 11.0)
    limiter.fail("c", 11.0)  # a third address evicts the least recently failing one
    assert limiter.retry_after("a", 11.0) == 0.0
    assert len(limiter._failures) == 2


def test_credential_cache_expires_and_is_bounded() -> None:
    cache = CredentialCache(ttl=5.0, size=2)
    cache.add(b"Basic one", 0.0)
    assert cache.hit(b"Basic one", 4.9)
    assert not cache.hit(b"Basic one", 5.0)
    cache.add(b"Basic a", 0.0)
    cache.add(b"Basic b", 0.0)
    cache.add(b"Basic c", 0.0)
    assert not cache.hit(b"Basic a", 1.0) and cache.hit(b"Basic c", 1.0)
    assert all(b"Basic" not in key for key in cache._entries)  # digests only, never the header


def test_an_unknown_user_costs_the_same_hash_as_a_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = security.verify_password

    def counting(password: str, encoded: str) -> bool:
        hashed.append(encoded)
        return real(password, encoded)

    monkeypatch.setattr(security, "verify_password", counting)
    settings = ServerSettings.build(env={}, auth_user="ops", auth_password_hash=PASSWORD_HASH)
    auth = Authenticator(settings)

    async def attempt(user: str, password: str, address: str) -> bool:
        header = basic(user, password)["Authorization"].encode()
        return (await auth.check(header, address)).ok

    assert not asyncio.run(attempt("nobody", "correct horse", "10.0.0.1"))
    assert not asyncio.run(attempt("ops", "wrong", "10.0.0.2"))
    assert asyncio.run(attempt("ops", "correct horse", "10.0.0.3"))
    auth.close()
    assert len(hashed) == 3  # each attempt hashed exactly once, the unknown user's too
    iterations = {encoded.split("$")[1] for encoded in hashed}
    assert iterations == {"200000"}
    assert hashed[0] != PASSWORD_HASH and hashed[1] == PASSWORD_HASH


def test_health_shows_status_only_without_credentials(filled: SqlStore) -> None:
    with TestClient(_auth_app(filled)) as c:
        public = c.get("/api/health")
        assert public.status_code == 200
        assert public.json() == {"status": "ok"}
        full = c.get("/api/health", headers=basic("ops", "correct horse"))
        assert full.json()["status"] == "ok" and "store" in full.json() and "ingest" in full.json()
        wrong = c.get("/api/health", headers=basic("ops", "nope"))
        assert wrong.status_code == 200 and wrong.json() == {"status": "ok"}
    with TestClient(create_app(store=filled, ingest=False)) as c:  # no auth: everyone sees details
        assert "store" in c.get("/api/health").json()


def test_cors_preflight_is_answered_before_auth_for_allowed_origins_only(filled: SqlStore) -> None:
    app = _auth_app(filled, cors_origins="https://ops.example")
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    with TestClient(app) as c:
        ok = c.options("/api/tasks", headers={"Origin": "https://ops.example", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://ops.example"
        assert "GET" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        evil = c.options("/api/tasks", headers={"Origin": "https://evil.example", **preflight})
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
        assert evil.json()["error"]["status"] == 400
        # The real request still needs credentials, and carries CORS headers either way.
        denied = c.get("/api/tasks", headers={"Origin": "https://ops.example"})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == "https://ops.example"
        allowed = c.get(
            "/api/tasks", headers={"Origin": "https://ops.example", **basic("ops", "correct horse")}
        )
        assert allowed.status_code == 200
        # An OPTIONS that is no preflight is no way around auth.
        assert c.options("/api/tasks").status_code == 401


def test_head_needs_auth_like_get(filled: SqlStore) -> None:
    with TestClient(_auth_app(filled)) as c:
        assert c.head("/api/tasks").status_code == 401
        head = c.head("/api/tasks", headers=basic("ops", "correct horse"))
        assert head.status_code == 200 and head.content == b""
