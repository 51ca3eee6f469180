"""Authentication (HTTP basic with a hashed password, bearer tokens) and security headers.

A pure ASGI middleware, so it wraps the streaming SSE responses without buffering them.
Passwords are compared as PBKDF2 hashes and tokens in constant time; neither is logged.

PBKDF2 is slow on purpose, which makes it a lever against the server itself: a wrong
password costs a fifth of a second of CPU. So (see :class:`Authenticator`) the hash runs in
a small thread pool off the event loop, with a bounded number waiting; credentials once
verified are remembered (by a keyed digest, for a few minutes) so a logged-in browser pays
once; each client address gets a few failures a minute before it is answered 429; and an
unknown user name costs the same hash as a known one, so timing tells no names.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from stemtrace.server.api.errors import error_response, send_error
from stemtrace.server.settings import ServerSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'"
)
# The API explorer (Swagger UI, served from the package) sets inline styles; scripts stay 'self'.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)
PUBLIC_PATHS = frozenset({"/api/health"})  # probes must work without credentials; it holds no secret
_ITERATIONS = 200_000


def hash_password(password: str, *, iterations: int = _ITERATIONS, salt: str | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hex digest>``, for ``--auth-password-hash``."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` hashes to ``encoded``. Blocking (PBKDF2): call it off the event loop."""
    try:
        algo, iterations, salt, digest = encoded.split("$", 3)
        if algo != "pbkdf2_sha256":
            return False
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations)).hex()
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, digest)


# Verified credentials are remembered this long, and this many at most.
CACHE_TTL_S = 300.0
CACHE_SIZE = 1024
# Failed attempts allowed per client address within the window, before 429 answers.
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
TRACKED_ADDRESSES = 10_000
# Password hashes running or waiting at once (the pool has VERIFY_THREADS of them), and per address.
VERIFY_THREADS = 2
MAX_PENDING = 8
MAX_PENDING_PER_ADDRESS = 2


class CredentialCache:
    """Headers already verified, stored only as a keyed BLAKE2b digest, expiring, bounded.

    The digest's key is random per process, so the cache holds nothing that could be
    checked against a guess offline, and it is fast enough to run on the event loop.
    """

    def __init__(self, ttl: float = CACHE_TTL_S, size: int = CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def _digest(self, header: bytes) -> bytes:
        return hashlib.blake2b(header, key=self._key, digest_size=16).digest()

    def hit(self, header: bytes, now: float) -> bool:
        digest = self._digest(header)
        expires = self._entries.get(digest)
        if expires is None:
            return False
        if expires <= now:
            del self._entries[digest]
            return False
        return True

    def add(self, header: bytes, now: float) -> None:
        digest = self._digest(header)
        self._entries[digest] = now + self.ttl
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class FailureLimiter:
    """Failed attempts per client address in a sliding window, for a bounded set of addresses."""

    def __init__(
        self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_S, size: int = TRACKED_ADDRESSES
    ) -> None:
        self.limit = limit
        self.window = window
        self.size = size
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        times = self._failures.get(address)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def fail(self, address: str, now: float) -> None:
        times = self._failures.get(address)
        if times is None:
            times = self._failures[address] = deque(maxlen=self.limit)
            while len(self._failures) > self.size:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        times.append(now)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    retry_after: float = 0.0  # > 0: refused without checking, try again after this many seconds
    busy: bool = False  # refused because too many checks are already waiting


DENIED = Verdict(ok=False)
ALLOWED = Verdict(ok=True)


class Authenticator:
    """Checks an ``Authorization`` header without letting anyone spend the event loop's time.

    Order of the checks: a cached header passes at once (a logged-in client never waits behind
    an attacker, even from the same address); then an address over its failure budget is
    refused (429) before any hashing; then the hash runs in the pool, at most ``MAX_PENDING``
    at once (and ``MAX_PENDING_PER_ADDRESS`` per address), others refused with 429.
    """

    def __init__(self, settings: ServerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.user = settings.auth_user
        self.password_hash = settings.auth_password_hash or (
            hash_password(settings.auth_password, iterations=10_000) if settings.auth_password else None
        )
        self.tokens = tuple(t.encode() for t in settings.auth_tokens)
        self.enabled = settings.auth_enabled
        self.clock = clock
        self.cache = CredentialCache()
        self.limiter = FailureLimiter()
        self._dummy_hash = _dummy_like(self.password_hash)
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._pending_by_address: dict[str, int] = {}

    async def check(self, header: bytes | None, address: str) -> Verdict:
        if not self.enabled:
            return ALLOWED
        if not header:
            return DENIED
        now = self.clock()
        if self.cache.hit(header, now):
            return ALLOWED
        wait = self.limiter.retry_after(address, now)
        if wait > 0:
            return Verdict(ok=False, retry_after=wait)
        scheme, _, value = header.partition(b" ")
        scheme = scheme.lower()
        if scheme == b"bearer":
            token = value.strip()
            # Every token compared, so the time does not say which one was close.
            ok = False
            for known in self.tokens:
                ok |= hmac.compare_digest(token, known)
        elif scheme == b"basic" and self.user and self.password_hash:
            if (
                self._pending >= MAX_PENDING
                or self._pending_by_address.get(address, 0) >= MAX_PENDING_PER_ADDRESS
            ):
                return Verdict(ok=False, retry_after=1.0, busy=True)
            ok = await self._verify_basic(value.strip(), address)
        else:
            ok = False
        if ok:
            self.cache.add(header, self.clock())
            return ALLOWED
        self.limiter.fail(address, self.clock())
        return DENIED

    async def _verify_basic(self, value: bytes, address: str) -> bool:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        assert self.user is not None and self.password_hash is not None
        known_user = hmac.compare_digest(user.encode(), self.user.encode())
        # An unknown user is hashed too (against a hash that never matches) at the same cost.
        encoded = self.password_hash if known_user else self._dummy_hash
        if self._pool is None:
            self._pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="stemtrace-auth")
        self._pending += 1
        self._pending_by_address[address] = self._pending_by_address.get(address, 0) + 1
        try:
            loop = asyncio.get_running_loop()
            matches = await loop.run_in_executor(self._pool, verify_password, password, encoded)
        finally:
            self._pending -= 1
            left = self._pending_by_address[address] - 1
            if left:
                self._pending_by_address[address] = left
            else:
                del self._pending_by_address[address]
        return known_user and matches

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _dummy_like(encoded: str | None) -> str:
    """A hash in ``encoded``'s format and iteration count that no password matches."""
    iterations = _ITERATIONS
    if encoded:
        try:
            iterations = int(encoded.split("$")[1])
        except (IndexError, ValueError):
            pass
    return f"pbkdf2_sha256${iterations}${secrets.token_hex(16)}${secrets.token_hex(32)}"


class Cors(CORSMiddleware):
    """Starlette's CORS, answering a preflight from an origin not allowed in the one error shape.

    It wraps :class:`SecurityMiddleware`, so preflights (which browsers send without
    credentials) are answered before authentication, and only allowed origins get a yes.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 400:
            return error_response(400, f"CORS preflight refused: {bytes(response.body).decode()}")
        return response


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class SecurityMiddleware:
    """Adds security headers to every response and rejects unauthenticated requests.

    Sets ``scope["state"]["authenticated"]``, so a public route (``/api/health``) can give
    details only to a client that sent valid credentials.
    """

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.auth = Authenticator(settings)
        self.basic = bool(settings.auth_user)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _closing(send, self.auth))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        local = path[len(root) :] if root and path.startswith(root) else path
        csp = DOCS_CSP if local.startswith("/api/docs") else CSP
        security_headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *security_headers]
            await send(message)

        state = scope.setdefault("state", {})
        if not self.auth.enabled:
            state["authenticated"] = True
            await self.app(scope, receive, send_with_headers)
            return
        header = Headers(scope=scope).get("authorization")
        raw = header.encode("latin-1") if header is not None else None
        public = local in PUBLIC_PATHS
        if public and raw is None:
            verdict = DENIED
        else:
            verdict = await self.auth.check(raw, client_address(scope))
        state["authenticated"] = verdict.ok
        if verdict.ok or public:
            await self.app(scope, receive, send_with_headers)
            return
        if verdict.retry_after > 0:
            seconds = str(max(1, math.ceil(verdict.retry_after))).encode()
            message = (
                "too many authentication checks in progress; try again shortly"
                if verdict.busy
                else "too many failed authentication attempts from this address; try again later"
            )
            await send_error(send_with_headers, 429, message, ((b"retry-after", seconds),))
            return
        challenge = b'Basic realm="stemtrace"' if self.basic else b"Bearer"
        await send_error(
            send_with_headers, 401, "authentication required", ((b"www-authenticate", challenge),)
        )


def _closing(send: Send, auth: Authenticator) -> Send:
    """``send`` for the lifespan scope that also stops the hashing pool when the app shuts down."""

    async def wrapped(message: Message) -> None:
        if message["type"] in {"lifespan.shutdown.complete", "lifespan.shutdown.failed"}:
            auth.close()
        await send(message)

    return wrapped
