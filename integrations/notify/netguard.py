"""SSRF guard for notification channels, at connect time: apprise dials for itself (requests for
HTTP services, smtplib for email, paho, slixmpp, plain sockets), so the webhooks' guarded HTTP
session cannot be used. Instead every Python socket's `connect`, `connect_ex` and `sendto` is
judged, on the thread sending a channel message only, against the webhooks' rules
(`integrations.webhooks.guard.refusal`) with the address actually dialled — after name
resolution, for every redirect an HTTP service follows (each is a new connection), for every
address a name resolves to. Other threads and the event loop are not affected: the check is off
unless the calling thread is inside `guarding()`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from integrations.webhooks.guard import AddressRefused, IPNetwork, refusal

HINT = "list its network in [notify] allow_networks to allow it"

_local = threading.local()
_install_lock = threading.Lock()
_installed: dict[str, Any] = {}


def _reason(sock: socket.socket, address: Any) -> str | None:
    allow: tuple[IPNetwork, ...] | None = getattr(_local, "allow", None)
    if allow is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None  # not guarding on this thread, or a Unix socket (this machine only)
    if not isinstance(address, tuple) or not address:
        return None
    host, port = str(address[0]), address[1] if len(address) > 1 else 0
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        addresses = [host]
    except ValueError:
        # A name given to connect() itself: judge every address it resolves to.
        infos = socket.getaddrinfo(host, port, sock.family, sock.type)
        addresses = [str(info[4][0]) for info in infos]
    for candidate in addresses:
        reason = refusal(candidate, allow, HINT)
        if reason is not None:
            return reason
    return None


def _check(sock: socket.socket, address: Any) -> None:
    reason = _reason(sock, address)
    if reason is not None:
        refused: list[str] = _local.refused
        refused.append(reason)
        raise AddressRefused(f"refused to connect: {reason}")


def install() -> None:
    """Wrap the socket methods that reach another host (once per process)."""
    with _install_lock:
        if _installed:
            return
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        original_sendto = socket.socket.sendto

        def connect(self: socket.socket, address: Any) -> None:
            _check(self, address)
            original_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            _check(self, address)
            return original_connect_ex(self, address)

        def sendto(self: socket.socket, data: Any, *args: Any) -> int:
            _check(self, args[-1] if args else None)
            return original_sendto(self, data, *args)

        _installed.update(connect=original_connect, connect_ex=original_connect_ex)
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]


@contextmanager
def guarding(allow: Sequence[IPNetwork]) -> Iterator[list[str]]:
    """Judge every connection this thread makes until the block ends; yields the list of
    refusals made meanwhile (their reasons)."""
    install()
    refused: list[str] = []
    previous = getattr(_local, "allow", None), getattr(_local, "refused", None)
    _local.allow, _local.refused = tuple(allow), refused
    try:
        yield refused
    finally:
        _local.allow, _local.refused = previous
