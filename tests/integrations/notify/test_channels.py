"""Notification channels end to end: stored notification → outbox → apprise → a real server.

Email goes to a real SMTP server (aiosmtpd) on loopback through apprise's own SMTP client; the
HTTP channel is apprise's `json://` service posting to a loopback receiver."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from hub.events import NotificationStored
from hub.model import parse_rfc3339
from hub.store import notifications as notes_store
from tests.helpers import wait_for
from tests.integrations.conftest import Outbound

BASE = "/api/notifications/channels"


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(raw)))
        return "250 Message accepted"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Mailbox, int]]:
    """A real SMTP server on 127.0.0.1 (a free port)."""
    import asyncio

    box = Mailbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(box, hostname="mail.test"), "127.0.0.1", 0
    )
    yield box, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def notify(outbound: Outbound, kind: str, severity: str, title: str) -> None:
    """Store a notification and publish it as the hub does."""
    note = await notes_store.add(
        outbound.hub.db, printer_id="p1", kind=kind, severity=severity,
        title=title, message=f"{title}: details", data={},
    )  # fmt: skip
    outbound.hub.bus.publish(NotificationStored("p1", note.public()))


async def test_email_through_a_real_smtp_server(
    outbound: Outbound, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=hub@farm.test&to=ops@farm.test"
    created = await outbound.add_channel(name="ops mail", url=url, min_severity="error")
    assert created["service"] == "E-Mail"
    await notify(outbound, "print_finished", "info", "Benchy finished")
    await notify(outbound, "print_failed", "error", "Benchy failed")
    await wait_for(lambda: len(box.messages) == 1, what="one email")
    envelope, mail = box.messages[0]
    assert envelope.rcpt_tos == ["ops@farm.test"] and envelope.mail_from == "hub@farm.test"
    assert "Benchy failed" in str(mail["Subject"])
    text = (
        mail.get_payload(decode=True)
        if not mail.is_multipart()
        else b"".join(
            part.get_payload(decode=True) or b"" for part in mail.walk() if not part.is_multipart()
        )
    )
    assert b"Benchy failed: details" in text

    async def recorded() -> Any:
        items = await outbound.deliveries(created["id"], base=BASE)
        return [(d["event_type"], d["state"]) for d in items]

    await wait_for(
        lambda: _equals(recorded(), [("print.failed", "delivered")]), what="delivery recorded"
    )


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_http_channel_filters_masks_and_retries(outbound: Outbound) -> None:
    receiver = outbound.receiver
    receiver.script.append((500, {}))
    url = receiver.url.replace("http://", "json://bot:s3cr3t-pass@") + "/notify"
    created = await outbound.add_channel(
        name="automation", url=url, events=["print.*"], min_severity="warning"
    )
    assert created["service"] == "JSON" and "s3cr3t-pass" not in json.dumps(created)
    assert created["url"].startswith("json://bot:") and "****" in created["url"]
    for path in (BASE, f"{BASE}/{created['id']}"):
        r = await outbound.client.get(path, headers=outbound.admin)
        assert "s3cr3t-pass" not in await r.get_data(as_text=True)

    await notify(outbound, "print_finished", "info", "below the minimum severity")
    await notify(outbound, "printer_offline", "warning", "not a print event")
    await notify(outbound, "print_failed", "error", "Benchy failed")
    # The first attempt got a 500; the retry went through.
    await wait_for(lambda: len(receiver.received) == 2, what="a retried delivery")
    bodies = [json.loads(r.body) for r in receiver.received]
    assert bodies[0] == bodies[1]
    assert (
        bodies[1]["title"] == "Benchy failed" and bodies[1]["message"] == "Benchy failed: details"
    )
    assert bodies[1]["type"] == "failure"
    assert receiver.received[1].headers["Authorization"].startswith("Basic ")

    async def delivered() -> Any:
        items = await outbound.deliveries(created["id"], base=BASE)
        return items if items and items[0]["state"] == "delivered" else None

    items = await wait_for(delivered, what="delivered")
    assert len(items) == 1 and items[0]["attempts"] == 2

    # A PUT without `url` keeps the secret URL; the test message still reaches the receiver.
    r = await outbound.client.put(
        f"{BASE}/{created['id']}", json={"name": "renamed"}, headers=outbound.admin
    )
    assert (await r.get_json())["name"] == "renamed"
    r = await outbound.client.post(f"{BASE}/{created['id']}/test", headers=outbound.admin)
    assert r.status_code == 202 and (await r.get_json())["event_type"] == "channel.test"
    await wait_for(lambda: len(receiver.received) == 3, what="the test message")
    assert json.loads(receiver.received[2].body)["title"] == "3DPrintForge test"


async def test_quiet_hours_hold_messages_until_they_end(outbound: Outbound) -> None:
    receiver = outbound.receiver
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    url = receiver.url.replace("http://", "json://")
    quiet = await outbound.add_channel(name="night", url=url + "/quiet", quiet_hours=window)
    loud = await outbound.add_channel(name="always", url=url + "/loud")
    await notify(outbound, "printer_offline", "warning", "Printer offline")

    await wait_for(lambda: len(receiver.received) == 1, what="the channel without quiet hours")
    assert receiver.received[0].path == "/loud"
    held = await outbound.deliveries(quiet["id"], base=BASE)
    assert [d["state"] for d in held] == ["pending"] and held[0]["attempts"] == 0
    due = parse_rfc3339(held[0]["next_attempt_at"])
    end = now.replace(second=0, microsecond=0) + timedelta(hours=2)
    assert abs(due - end.timestamp()) < 61

    async def loud_state() -> Any:
        return (await outbound.deliveries(loud["id"], base=BASE))[0]["state"] == "delivered"

    await wait_for(loud_state, what="the loud channel's delivery recorded")
    assert due > time.time() + 3600 and receiver.received[-1].path == "/loud"


async def test_channel_validation(outbound: Outbound) -> None:
    cases = [
        ({"name": "x", "url": "nonsense://nothing"}, "url"),
        ({"name": "x", "url": "ntfy://topic", "min_severity": "loud"}, "min_severity"),
        (
            {"name": "x", "url": "ntfy://t", "quiet_hours": {"start": "22:00", "end": "7:00",
                                                             "timezone": "UTC"}},
            "quiet_hours.end",
        ),
        (
            {"name": "x", "url": "ntfy://t", "quiet_hours": {"start": "22:00", "end": "07:00",
                                                             "timezone": "Mars/Olympus"}},
            "quiet_hours.timezone",
        ),
        ({"name": "x", "url": "ntfy://t", "events": ["print*"]}, "events.0"),
        ({"name": "x", "url": "ntfy://t", "events": ["queue.job.failed", "prnter.*"]}, "events.1"),
    ]  # fmt: skip
    for body, field in cases:
        r = await outbound.client.post(BASE, json=body, headers=outbound.admin)
        problem = await r.get_json()
        assert r.status_code == 400, problem
        assert problem["errors"][0]["field"] == field, problem
    r = await outbound.client.get(BASE, headers=outbound.admin)
    assert (await r.get_json())["total"] == 0
    created = await outbound.add_channel(name="phone", url="ntfy://farm-alerts")
    r = await outbound.client.delete(f"{BASE}/{created['id']}", headers=outbound.admin)
    assert r.status_code == 204
    r = await outbound.client.get(f"{BASE}/{created['id']}", headers=outbound.admin)
    assert r.status_code == 404
