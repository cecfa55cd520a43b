"""Apprise URLs: checked when saved, shown with their secrets masked, and sent to."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apprise

from integrations.notify import netguard
from integrations.webhooks.guard import IPNetwork, refusal

#: Severity of a notification → apprise's notification type (icons, colours per service).
NOTIFY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True, slots=True)
class Described:
    """What people may see of a channel URL: the service's name and the URL with secrets masked."""

    service: str
    masked: str


def describe(url: str) -> Described | None:
    """The service and masked URL, or None when apprise does not understand `url`."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return None
    name = getattr(plugin, "service_name", None) or str(getattr(plugin, "protocol", "")) or "?"
    return Described(str(name), str(plugin.url(privacy=True)))


@dataclass(frozen=True, slots=True)
class Sent:
    """What one try at sending came to; `refused` when the SSRF guard stopped a connection."""

    ok: bool
    error: str | None = None
    refused: bool = False


def hosts(plugin: Any) -> list[str]:
    """The hosts named in a channel URL that the service connects to (its `host` when the
    service's URL has one, an email service's SMTP server); empty for fixed public APIs whose
    URL carries only tokens (Telegram, Discord, …)."""
    found: list[str] = []
    host = getattr(plugin, "host", None)
    if isinstance(host, str) and host and "host" in getattr(plugin, "template_tokens", {}):
        found.append(host)
    smtp_host = getattr(plugin, "smtp_host", None)
    if isinstance(smtp_host, str) and smtp_host and smtp_host not in found:
        found.append(smtp_host)
    return found


def precheck(plugin: Any, allow: Sequence[IPNetwork]) -> str | None:
    """Resolve the URL's hosts now and refuse one with a refused address (a clear error before
    anything is dialled; the connections themselves are judged again by `netguard`). A name
    that does not resolve is left to the connection, which will fail or be judged."""
    port = getattr(plugin, "port", None) or 0
    for host in hosts(plugin):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for info in infos:
            reason = refusal(str(info[4][0]), allow, netguard.HINT)
            if reason is not None:
                return f"refused to connect to {host}: {reason}"
    return None


class _ThreadLog(logging.Handler):
    """Apprise's warnings and errors logged by one thread (other channels send meanwhile)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread == self.thread and message not in self.lines:
            self.lines.append(message)


def _send_blocking(
    url: str, title: str, body: str, severity: str, allow: Sequence[IPNetwork]
) -> Sent:
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return Sent(False, "apprise does not understand the channel URL")
    reason = precheck(plugin, allow)
    if reason is not None:
        return Sent(False, reason, refused=True)
    log = _ThreadLog()
    apprise_log = logging.getLogger("apprise")
    apprise_log.addHandler(log)
    try:
        # The plug-in's own notify() sends on this thread, so the guard sees its connections.
        with netguard.guarding(allow) as refused:
            ok = plugin.notify(
                body=body, title=title,
                notify_type=NOTIFY_TYPES.get(severity, apprise.NotifyType.INFO),
            )  # fmt: skip
    finally:
        apprise_log.removeHandler(log)
    if refused:
        return Sent(False, f"refused to connect: {refused[0]}", refused=True)
    if ok:
        return Sent(True)
    problems = "; ".join(log.lines)[:500]
    return Sent(False, problems or "the service did not accept the notification")


async def send(
    url: str, title: str, body: str, severity: str, allow: Sequence[IPNetwork] = ()
) -> Sent:
    """Deliver one notification on a worker thread, every connection it makes passing the SSRF
    guard (`allow`: the non-public networks it may reach)."""
    return await asyncio.to_thread(_send_blocking, url, title, body, severity, tuple(allow))
