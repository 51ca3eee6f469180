"""A small read-only client of a running stemtrace server's HTTP API, for the terminal commands.

Standard library only (``urllib``), so ``stemtrace tasks``/``show``/``workflow``/``tail`` work from
a library-only install on any machine that can reach the server, with the same authentication
the UI uses (a bearer token or HTTP basic).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:7373"


class ApiError(RuntimeError):
    """The server could not be reached or answered with an error; the message says which."""


@dataclass(frozen=True, slots=True)
class ApiClient:
    base_url: str = DEFAULT_SERVER
    token: str | None = None
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "stemtrace-cli"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.user is not None:
            raw = f"{self.user}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        return headers

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = urllib.parse.urlencode(_flatten(params or {}), doseq=True)
        return self.base_url.rstrip("/") + path + (f"?{query}" if query else "")

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and parse its JSON; errors become :class:`ApiError` with the server's message."""
        request = urllib.request.Request(self.url(path, params), headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{exc.code} from {self.base_url}{path}: {_error_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the stemtrace server at {self.base_url} ({reason})") from None

    def stream(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Server-Sent Events of ``path``: each ``data:`` message, parsed; heartbeats are skipped."""
        headers = {**self._headers(), "Accept": "text/event-stream"}
        request = urllib.request.Request(self.url(path, params), headers=headers)
        try:
            resp = urllib.request.urlopen(request, timeout=None)
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{exc.code} from {self.base_url}{path}: {_error_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the stemtrace server at {self.base_url} ({reason})") from None
        with resp:
            data: list[str] = []
            for raw in resp:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []


def _flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs without the ``None`` values; a sequence repeats its key, as the API expects."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values: Sequence[Any] = value if isinstance(value, (list, tuple)) else (value,)
        pairs.extend((key, str(v)) for v in values)
    return pairs


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(exc.reason)
