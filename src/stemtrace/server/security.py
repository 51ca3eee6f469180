"""Authentication (HTTP basic with a hashed password, bearer tokens) and security headers.

A pure ASGI middleware, so it wraps the streaming SSE responses without buffering them.
Passwords are compared as PBKDF2 hashes and tokens in constant time; neither is logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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
    try:
        algo, iterations, salt, digest = encoded.split("$", 3)
        if algo != "pbkdf2_sha256":
            return False
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations)).hex()
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, digest)


class Authenticator:
    def __init__(self, settings: ServerSettings) -> None:
        self.user = settings.auth_user
        self.password_hash = settings.auth_password_hash or (
            hash_password(settings.auth_password, iterations=10_000) if settings.auth_password else None
        )
        self.tokens = tuple(t.encode() for t in settings.auth_tokens)
        self.enabled = settings.auth_enabled
        self._ok_cache: set[bytes] = set()  # header values already verified (PBKDF2 is slow on purpose)

    def check(self, header: bytes | None) -> bool:
        if not self.enabled:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(b" ")
        scheme = scheme.lower()
        if scheme == b"bearer":
            token = value.strip()
            return any(hmac.compare_digest(token, t) for t in self.tokens)
        if scheme == b"basic" and self.user and self.password_hash:
            if header in self._ok_cache:
                return True
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            ok = hmac.compare_digest(user.encode(), self.user.encode()) and verify_password(
                password, self.password_hash
            )
            if ok and len(self._ok_cache) < 64:
                self._ok_cache.add(header)
            return ok
        return False


class SecurityMiddleware:
    """Adds security headers to every response and rejects unauthenticated requests."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.auth = Authenticator(settings)
        self.basic = bool(settings.auth_user)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        local = path[len(root) :] if root and path.startswith(root) else path
        csp = DOCS_CSP if local.startswith("/api/docs") else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        if self.auth.enabled and local not in PUBLIC_PATHS:
            header = dict(scope.get("headers", [])).get(b"authorization")
            if not self.auth.check(header):
                body = json.dumps(
                    {"error": {"status": 401, "message": "authentication required", "detail": None}}
                ).encode()
                challenge = b'Basic realm="stemtrace"' if self.basic else b"Bearer"
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", challenge),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send_with_headers)
