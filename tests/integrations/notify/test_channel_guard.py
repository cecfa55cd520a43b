"""Notification channels behind the SSRF guard: apprise's own connections (HTTP through
requests, email through smtplib) to non-public addresses are refused with a clear reason, before
any packet is sent, unless `[notify] allow_networks` lists the network; a redirect to a refused
address is refused at its connection too."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from integrations.notify import apprise_urls
from integrations.webhooks.guard import parse_networks
from tests.helpers import wait_for
from tests.integrations.conftest import Outbound
from tests.integrations.notify.test_channels import BASE, Mailbox, smtp  # noqa: F401
from tests.integrations.receiver import Receiver

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
URLS: dict[str, Callable[[Receiver, int], str]] = {
    "json": lambda r, _: r.url.replace("http://", "json://") + "/notify",
    "ntfy": lambda r, _: r.url.replace("http://", "ntfy://") + "/farm",
    "json by name": lambda r, _: r.url.replace("http://127.0.0.1", "json://localhost") + "/n",
    "email": lambda _, port: f"mailto://127.0.0.1:{port}?from=hub@farm.test&to=ops@farm.test",
}


@pytest.mark.parametrize("service", list(URLS))
async def test_loopback_channel_refused_then_allowed(
    service: str,
    receiver: Receiver,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    box, port = smtp
    url = URLS[service](receiver, port)
    refused = await apprise_urls.send(url, "Benchy failed", "details", "error")
    assert not refused.ok and refused.refused, refused
    assert refused.error is not None
    assert "loopback address" in refused.error, refused.error
    assert "[notify] allow_networks" in refused.error, refused.error
    assert receiver.received == [] and box.messages == []

    sent = await apprise_urls.send(url, "Benchy failed", "details", "error", LOOPBACK)
    assert sent.ok, sent
    assert len(receiver.received) + len(box.messages) == 1


async def test_redirect_to_a_refused_address_is_refused(receiver: Receiver) -> None:
    # The receiver's own address is listed; where it redirects (127.0.0.2) is not.
    receiver.script.append((307, {"Location": "http://127.0.0.2:9/elsewhere"}))
    url = receiver.url.replace("http://", "json://") + "/notify"
    sent = await apprise_urls.send(url, "t", "b", "info", parse_networks(["127.0.0.1/32"]))
    assert [r.path for r in receiver.received] == ["/notify"]
    assert not sent.ok and sent.refused, sent
    assert sent.error is not None and "127.0.0.2 is a loopback address" in sent.error


async def test_refusal_recorded_on_the_delivery(make_outbound: Callable[..., Outbound]) -> None:
    """Through the hub: the delivery fails at once (no retries) with the reason as its error."""
    outbound = await make_outbound(PRINTFORGE_NOTIFY_ALLOW_NETWORKS="")  # type: ignore[misc]
    url = outbound.receiver.url.replace("http://", "json://") + "/notify"
    created = await outbound.add_channel(name="lan", url=url)
    r = await outbound.client.post(f"{BASE}/{created['id']}/test", headers=outbound.admin)
    assert r.status_code == 202

    async def failed() -> list[dict[str, object]] | None:
        items = await outbound.deliveries(created["id"], base=BASE)
        return items if items and items[0]["state"] == "failed" else None

    items = await wait_for(failed, what="the refused delivery")
    assert items[0]["attempts"] == 1
    error = str(items[0]["last_error"])
    assert "127.0.0.1 is a loopback address" in error and "[notify] allow_networks" in error
    assert outbound.receiver.received == []


async def test_connect_time_guard_is_per_thread(receiver: Receiver) -> None:
    """The socket-level check behind the channels (what catches redirects and names resolved
    by the service itself) refuses on the guarded thread only."""
    import asyncio
    import socket

    from integrations.notify import netguard
    from integrations.webhooks.guard import AddressRefused

    port = int(receiver.url.rsplit(":", 1)[1])

    def dial(guarded: bool) -> str:
        try:
            if guarded:
                with netguard.guarding(()) as refused:
                    try:
                        socket.create_connection(("localhost", port), timeout=5).close()
                    except AddressRefused:
                        return f"refused: {refused}"
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return "connected"
        except OSError as exc:
            return f"error: {exc}"

    guarded, free = await asyncio.gather(
        asyncio.to_thread(dial, True), asyncio.to_thread(dial, False)
    )
    assert guarded.startswith("refused: ['127.0.0.1 is a loopback address") or guarded.startswith(
        "refused: ['::1 is a loopback address"
    ), guarded
    assert free == "connected"
