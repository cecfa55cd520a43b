"""SSRF guard: webhook requests connect only to public addresses, or to networks an admin allowed.

The check runs where the connection is made, on the address actually dialled (the socket factory
of aiohttp's connector), so a name that resolves differently at send time than at save time, an
IP literal, or a redirect to another host is judged on the address it really reaches. The resolver
also drops refused addresses first, so a name with several addresses uses only the allowed ones
and a name with none gives one clear error.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Carrier-grade NAT (RFC 6598): Python's ipaddress calls it neither private nor global.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052) carries an IPv4 address in its low 32 bits: judge that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

ALLOW_HINT = "list its network in [webhooks] allow_networks to allow it"


class AddressRefused(OSError):
    """A connection to a refused address was stopped before any packet was sent."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings → networks; ValueError names the bad entry."""
    found: list[IPNetwork] = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a network in CIDR form (e.g. 192.168.1.0/24)"
            ) from None
    return tuple(found)


def category(ip: IPAddress) -> str | None:
    """Why `ip` is refused by default (a short category name), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        inner = category(ip.ipv4_mapped)
        return f"IPv4-mapped {inner}" if inner else None
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64:
        inner = category(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return f"NAT64-embedded {inner}" if inner else None
    if ip in _METADATA:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


def _allowed(ip: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(c.version == n.version and c in n for c in candidates for n in allow)


def refusal(address: str, allow: Sequence[IPNetwork] = (), hint: str = ALLOW_HINT) -> str | None:
    """The reason a connection to `address` is refused (ending with `hint`: where to allow
    it), or None when it may be made."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    kind = category(ip)
    if kind is None or _allowed(ip, allow):
        return None
    return f"{ip} is a {kind} address; {hint}"


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver and keeps only the addresses the guard allows."""

    def __init__(self, allow: Sequence[IPNetwork]) -> None:
        self.allow = tuple(allow)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of `host`; AddressRefused when none is left."""
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if refusal(r["host"], self.allow) is None]
        if not kept:
            reasons = "; ".join(sorted({refusal(r["host"], self.allow) or "" for r in found}))
            raise AddressRefused(f"refused to connect to {host}: {reasons}")
        return kept

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


def socket_factory(allow: Sequence[IPNetwork]) -> Any:
    """A connector socket factory refusing, before the socket exists, addresses not allowed."""
    allowed = tuple(allow)

    def make(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        reason = refusal(str(sockaddr[0]), allowed)
        if reason is not None:
            raise AddressRefused(f"refused to connect: {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    return make


def guarded_session(allow: Sequence[IPNetwork], timeout_s: float) -> aiohttp.ClientSession:
    """An HTTP client session whose every connection, redirects included, passes the guard."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow),
        socket_factory=socket_factory(allow),
        limit=100,
        limit_per_host=10,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        # Never carry cookies from one receiver's answer into the next request.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def refused_error(exc: BaseException) -> str | None:
    """The guard's message when `exc` (or what it wraps) is a refusal, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return str(seen)
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, AddressRefused):
            return str(os_error)
        if isinstance(os_error, OSError) and "refused to connect" in str(os_error):
            # Several addresses refused together come back as one combined OSError.
            return str(os_error)
        seen = seen.__cause__ or seen.__context__
    return None
