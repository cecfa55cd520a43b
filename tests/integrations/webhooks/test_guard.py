"""The SSRF guard on real connections: refused ranges never get a packet; listed networks do.

Only loopback is ever connected to. For other ranges a spy on the event loop's `sock_connect`
(the call that sends the SYN) records every address dialled and refuses anything off loopback,
so the tests can show that a refusal came before any connect, and that an allowed network got
as far as the connect and no further."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from databases import Database

from hub.store import db as store
from hub.store import webhooks as webhooks_store
from hub.store.outbox import Delivery
from integrations.webhooks.guard import parse_networks, refusal
from integrations.webhooks.sender import WebhookSender
from tests.integrations.receiver import Receiver

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.10", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("64:ff9b::7f00:1", "NAT64-embedded loopback"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_refusal_table(address: str, kind: str) -> None:
    reason = refusal(address)
    assert reason is not None and f"a {kind} address" in reason
    assert "allow_networks" in reason


def test_public_and_listed_addresses_pass() -> None:
    assert refusal("93.184.216.34") is None
    assert refusal("2606:4700::1111") is None
    allow = parse_networks(["10.0.0.0/8", "::1/128", "fc00::/7"])
    assert refusal("10.9.8.7", allow) is None
    assert refusal("::1", allow) is None
    assert refusal("fd00::5", allow) is None
    # An IPv4-mapped address is judged by its IPv4 address against IPv4 networks too.
    assert refusal("::ffff:10.1.1.1", allow) is None
    assert refusal("11.0.0.1", allow) is None
    assert refusal("192.168.0.1", allow) is not None
    with pytest.raises(ValueError, match="CIDR"):
        parse_networks(["not-a-network"])


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await store.connect(f"sqlite+aiosqlite:///{tmp_path / 'guard.db'}")
    await store.migrate(database)
    yield database
    await database.disconnect()


@pytest.fixture
async def dialled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the loop is asked to connect to; off-loopback ones are refused unsent."""
    loop = asyncio.get_running_loop()
    real = loop.sock_connect
    seen: list[str] = []

    async def spy(sock: Any, address: Any) -> None:
        seen.append(str(address[0]))
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError(111, "test spy: no traffic off loopback")
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", spy)
    return seen


async def send(db: Database, url: str, allow: list[str]) -> Any:
    hook = await webhooks_store.create(db, {"url": url, "events": ["*"]})
    delivery = Delivery(
        "d1", 1, "webhook", hook.id, "msg_1", "webhook.test", "{}", "pending", 0,
        time.time(), time.time(), time.time(), None, None, None, None,
    )  # fmt: skip
    sender = WebhookSender(db, parse_networks(allow), 2.0)
    try:
        return await sender.send(delivery)
    finally:
        await sender.close()


NOT_LOOPBACK = [a for a, _ in REFUSED if not ipaddress.ip_address(a).is_loopback]


@pytest.mark.parametrize("address", NOT_LOOPBACK)
async def test_refused_before_any_connect(db: Database, dialled: list[str], address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    result = await send(db, f"http://{host}:8080/hook", [])
    assert not result.ok and not result.retry
    assert "refused to connect" in result.error and "allow_networks" in result.error
    assert dialled == []


@pytest.mark.parametrize(
    ("address", "network"),
    [("10.0.0.1", "10.0.0.0/8"), ("100.64.3.4", "100.64.0.0/10"), ("fd00::9", "fc00::/7")],
)
async def test_listed_network_gets_as_far_as_connect(
    db: Database, dialled: list[str], address: str, network: str
) -> None:
    host = f"[{address}]" if ":" in address else address
    result = await send(db, f"http://{host}:8080/hook", [network])
    # The guard let it through: the connect was attempted (and stopped by the spy).
    assert dialled == [address]
    assert not result.ok and result.retry and "refused to connect" not in (result.error or "")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_loopback_refused_then_allowed(db: Database, dialled: list[str], host: str) -> None:
    receiver = await Receiver().start(host)
    try:
        refused = await send(db, receiver.url + "/hook", [])
        assert not refused.ok and "loopback" in refused.error and dialled == []
        assert receiver.received == []
        listed = await send(
            db, receiver.url + "/hook", [f"{host}/128" if ":" in host else "127.0.0.0/8"]
        )
        assert listed.ok and listed.status == 200
        assert len(receiver.received) == 1
    finally:
        await receiver.stop()


async def test_name_resolving_to_loopback(db: Database, dialled: list[str]) -> None:
    receiver = await Receiver().start()
    try:
        url = receiver.url.replace("127.0.0.1", "localhost") + "/hook"
        refused = await send(db, url, [])
        assert not refused.ok and not refused.retry
        assert "localhost" in refused.error and "loopback" in refused.error
        assert dialled == [] and receiver.received == []
        listed = await send(db, url, ["127.0.0.0/8"])
        assert listed.ok and len(receiver.received) == 1
    finally:
        await receiver.stop()


@pytest.mark.parametrize("status", [302, 307, 308])
async def test_redirect_to_private_address_refused(
    db: Database, dialled: list[str], status: int
) -> None:
    receiver = await Receiver().start()
    receiver.script.append((status, {"Location": "http://10.20.30.40/steal"}))
    try:
        result = await send(db, receiver.url + "/hook", ["127.0.0.0/8"])
        assert not result.ok and not result.retry
        assert "10.20.30.40 is a private address" in result.error
        # The first hop reached the receiver; the redirect target was never dialled.
        assert len(receiver.received) == 1
        assert all(ipaddress.ip_address(a).is_loopback for a in dialled)
    finally:
        await receiver.stop()
