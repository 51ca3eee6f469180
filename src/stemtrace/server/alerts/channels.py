"""Where alert messages go: a generic JSON webhook, a Slack incoming webhook, e-mail over SMTP.

Outbound only: stemtrace stays read-only towards Celery. Standard library clients (``urllib``,
``smtplib``) with a timeout each, called from the alert thread, never from a request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from stemtrace.server.alerts.config import Channel

SIGNATURE_HEADER = "X-Stemtrace-Signature"
TIMESTAMP_HEADER = "X-Stemtrace-Timestamp"


@dataclass(frozen=True, slots=True)
class Message:
    """One alert or one digest: what every channel renders in its own way."""

    rule: str
    title: str
    lines: tuple[str, ...]  # one per incident: "title: detail"
    links: tuple[str, ...]  # one per incident, absolute when --public-url is set
    incidents: tuple[dict[str, Any], ...]  # the webhook's machine-readable payload

    @property
    def text(self) -> str:
        body = [
            f"{line}\n  {link}" if link else line for line, link in zip(self.lines, self.links, strict=True)
        ]
        return self.title + "\n\n" + "\n".join(body)


class ChannelError(RuntimeError):
    """A message could not be delivered; the message says where and why (never a secret)."""


def send(channel: Channel, message: Message) -> None:
    try:
        if channel.type == "webhook":
            _webhook(channel, message)
        elif channel.type == "slack":
            _slack(channel, message)
        else:
            _email(channel, message)
    except ChannelError:
        raise
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        raise ChannelError(
            f"channel {channel.name!r} ({channel.type}): {type(exc).__name__}: {exc}"
        ) from None


def _post(channel: Channel, body: bytes, headers: dict[str, str]) -> None:
    assert channel.url is not None
    request = urllib.request.Request(channel.url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=channel.timeout) as resp:
        if resp.status >= 300:
            raise ChannelError(f"channel {channel.name!r}: HTTP {resp.status}")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of ``timestamp.body``: the receiver recomputes it to trust the message and its age."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _webhook(channel: Channel, message: Message) -> None:
    payload = {
        "source": "stemtrace",
        "rule": message.rule,
        "title": message.title,
        "incidents": list(message.incidents),
    }
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "stemtrace-alerts"}
    if channel.secret:
        stamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = signature(channel.secret, stamp, body)
    _post(channel, body, headers)


def _slack(channel: Channel, message: Message) -> None:
    items = [
        f"• <{link}|{_escape(line)}>" if link else f"• {_escape(line)}"
        for line, link in zip(message.lines, message.links, strict=True)
    ]
    text = f"*{_escape(message.title)}*\n" + "\n".join(items)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]
    body = json.dumps({"text": message.title, "blocks": blocks}).encode()
    _post(channel, body, {"Content-Type": "application/json", "User-Agent": "stemtrace-alerts"})


def _escape(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _email(channel: Channel, message: Message) -> None:
    assert channel.smtp is not None and channel.sender is not None
    url = urlsplit(channel.smtp)
    host = url.hostname or "localhost"
    mail = EmailMessage()
    mail["Subject"] = f"[stemtrace] {message.title}"
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail.set_content(message.text)
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, url.port or 465, timeout=channel.timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=channel.timeout)
    with client:
        if channel.starttls:
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(mail)


def describe(channels: Sequence[Channel]) -> str:
    return ", ".join(f"{c.name} ({c.type})" for c in channels)
