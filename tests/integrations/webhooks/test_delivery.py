"""Webhook deliveries end to end: bus event → outbox row → signed POST to a loopback receiver.

The receiver verifies every request with the `standardwebhooks` library itself."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from hub.events import NotificationStored, PrintRecorded
from hub.model import Job
from hub.store import notifications as notes_store
from streams.events import LifecycleEvent, LifecycleKind
from tests.helpers import wait_for
from tests.integrations.conftest import Outbound, outbound_hub
from tests.integrations.receiver import Receiver


def print_step(n: int, kind: LifecycleKind = LifecycleKind.STARTED) -> PrintRecorded:
    """A print lifecycle step as the history writer publishes it."""
    job = Job(file=f"part-{n}.gcode", started_at=1000.0 + n)
    step = LifecycleEvent("p1", kind, job, f"job-{n}", 1000.0 + n, 0.0)
    return PrintRecorded("p1", f"print-{n}", f"job-{n}", step)


def verified(secret: str, receiver: Receiver) -> list[dict[str, Any]]:
    """Every received body, each checked with the Standard Webhooks library."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.received]


async def test_signed_delivery_and_deliveries_list(outbound: Outbound) -> None:
    created = await outbound.add_webhook(events=["print.*"], description="farm log")
    notes_hook = await outbound.add_webhook("/notes", events=["notification", "printer.*"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    r = await outbound.client.get(f"/api/webhooks/{created['id']}", headers=outbound.admin)
    shown = await r.get_json()
    assert "secret" not in shown and shown["events"] == ["print.*"]

    outbound.hub.bus.publish(print_step(1))
    # A notification is not a print.* event: this endpoint must not get it.
    note = await notes_store.add(
        outbound.hub.db, printer_id="p1", kind="printer_offline", severity="warning",
        title="offline", message="gone", data={},
    )  # fmt: skip
    outbound.hub.bus.publish(NotificationStored("p1", note.public()))
    outbound.hub.bus.publish(print_step(1, LifecycleKind.FINISHED))

    await wait_for(lambda: len(outbound.receiver.received) == 4, what="four deliveries")
    to_notes = [r for r in outbound.receiver.received if r.path == "/notes"]
    outbound.receiver.received = [r for r in outbound.receiver.received if r.path == "/hook"]
    notes = [Webhook(notes_hook["secret"]).verify(r.body, r.headers) for r in to_notes]
    assert [n["type"] for n in notes] == ["notification", "printer.offline"]
    assert notes[0]["data"]["id"] == note.id and notes[1]["data"]["kind"] == "printer_offline"
    bodies = verified(secret, outbound.receiver)
    assert [b["type"] for b in bodies] == ["print.started", "print.finished"]
    assert set(bodies[0]) == {"type", "timestamp", "data"}
    assert bodies[0]["timestamp"].endswith("Z")
    assert (
        bodies[0]["data"]["print_id"] == "print-1" and bodies[0]["data"]["file"] == "part-1.gcode"
    )
    first = outbound.receiver.received[0].headers
    assert first["webhook-id"].startswith("msg_")
    assert abs(int(first["webhook-timestamp"]) - time.time()) < 30

    # A wrong secret does not verify: the signature really depends on it.
    other = Webhook("whsec_" + "QUJD" * 8)
    try:
        other.verify(outbound.receiver.received[0].body, first)
        raise AssertionError("a foreign secret verified the signature")
    except Exception as exc:
        assert "signature" in str(exc).lower()

    items = await wait_for(
        lambda: _all_delivered(outbound, created["id"], 2), what="deliveries recorded"
    )
    assert [d["event_type"] for d in items] == ["print.finished", "print.started"]
    assert all(d["last_status"] == 200 and d["attempts"] == 1 for d in items)

    async def metrics() -> dict[str, float]:
        r = await outbound.client.get("/api/metrics", headers=outbound.admin)
        text = await r.get_data(as_text=True)
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}

    async def four_delivered() -> Any:
        samples = await metrics()
        return samples if samples["printforge_outbox_delivered_total"] == 4 else None

    samples = await wait_for(four_delivered, what="the delivered counter")
    assert samples["printforge_outbox_attempts_total"] == 4


async def _all_delivered(outbound: Outbound, hook_id: str, count: int) -> Any:
    items = await outbound.deliveries(hook_id)
    done = [d for d in items if d["state"] == "delivered"]
    return items if len(done) == count else None


async def test_retries_after_500_and_429_honouring_retry_after(outbound: Outbound) -> None:
    outbound.receiver.script.extend([(500, {}), (429, {"Retry-After": "1"}), (200, {})])
    created = await outbound.add_webhook()
    outbound.hub.bus.publish(print_step(7))
    await wait_for(lambda: len(outbound.receiver.received) == 3, timeout=10, what="3 attempts")
    got = outbound.receiver.received
    # One message: the same webhook-id on every attempt, each freshly signed and verifiable.
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert len(verified(created["secret"], outbound.receiver)) == 3
    # The answer to the 429 asked for one second.
    assert got[2].at - got[1].at >= 0.95
    items = await wait_for(lambda: _all_delivered(outbound, created["id"], 1), what="delivered")
    assert items[0]["attempts"] == 3 and items[0]["last_status"] == 200


async def test_failed_after_retry_window_and_endpoint_disabled(
    make_outbound: Callable[..., Any],
) -> None:
    outbound: Outbound = await make_outbound(PRINTFORGE_OUTBOX_RETRY_FOR_S="0.6")
    outbound.receiver.default = 503
    created = await outbound.add_webhook(events=["print.started"])
    outbound.hub.bus.publish(print_step(3))

    async def failed() -> Any:
        items = await outbound.deliveries(created["id"], state="failed")
        return items[0] if items else None

    item = await wait_for(failed, timeout=10, what="a failed delivery")
    assert item["attempts"] >= 2 and item["last_status"] == 503
    assert item["last_error"] == "HTTP 503"

    async def disabled() -> Any:
        r = await outbound.client.get(f"/api/webhooks/{created['id']}", headers=outbound.admin)
        hook = await r.get_json()
        return hook if hook["enabled"] is False else None

    hook = await wait_for(disabled, what="the endpoint disabled")
    assert "503" in hook["disabled_reason"]

    async def notes() -> list[str]:
        found, _ = await notes_store.list_page(outbound.hub.db, unread_only=True, limit=9, offset=0)
        return [n.kind for n in found]

    assert await wait_for(notes, what="a notification") == ["webhook_disabled"]

    # Disabled: new events are not even queued for it.
    outbound.hub.bus.publish(print_step(4))
    await outbound.hub.bus.drain()
    assert len(await outbound.deliveries(created["id"])) == 1

    # Manual redelivery of the failed message, once the receiver is healthy and it is enabled.
    outbound.receiver.default = 200
    before = len(outbound.receiver.received)
    r = await outbound.client.put(
        f"/api/webhooks/{created['id']}", json={"enabled": True}, headers=outbound.admin
    )
    assert (await r.get_json())["disabled_reason"] is None
    r = await outbound.client.post(
        f"/api/webhooks/{created['id']}/deliveries/{item['id']}/redeliver", headers=outbound.admin
    )
    assert r.status_code == 202
    await wait_for(lambda: len(outbound.receiver.received) == before + 1, what="redelivery")
    again = outbound.receiver.received[-1].headers["webhook-id"]
    assert again == outbound.receiver.received[0].headers["webhook-id"]
    await wait_for(lambda: _all_delivered(outbound, created["id"], 1), what="delivered")


async def test_client_errors_fail_at_once_and_repeated_failures_disable(
    make_outbound: Callable[..., Any],
) -> None:
    outbound: Outbound = await make_outbound(PRINTFORGE_OUTBOX_DISABLE_AFTER_FAILURES="2")
    outbound.receiver.default = 410
    created = await outbound.add_webhook()
    outbound.hub.bus.publish(print_step(1))
    outbound.hub.bus.publish(print_step(2))

    async def disabled() -> bool:
        r = await outbound.client.get(f"/api/webhooks/{created['id']}", headers=outbound.admin)
        return (await r.get_json())["enabled"] is False

    await wait_for(disabled, what="endpoint disabled")
    items = await outbound.deliveries(created["id"])
    assert [(d["state"], d["attempts"], d["last_status"]) for d in items] == [
        ("failed", 1, 410)
    ] * 2
    assert len(outbound.receiver.received) == 2


async def test_one_in_flight_per_endpoint_in_order(outbound: Outbound) -> None:
    outbound.receiver.delay_s = 0.03
    created = await outbound.add_webhook()
    for n in range(15):
        outbound.hub.bus.publish(print_step(n))
    await wait_for(lambda: len(outbound.receiver.received) == 15, timeout=15, what="15 events")
    files = [b["data"]["file"] for b in verified(created["secret"], outbound.receiver)]
    assert files == [f"part-{n}.gcode" for n in range(15)]
    assert outbound.receiver.max_in_flight == 1


async def test_restart_with_pending_deliveries_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    from tests.api.conftest import reset_database

    await reset_database(db_url)
    receiver.default = 503
    async with outbound_hub(db_url, tmp_path, receiver) as first:
        created = await first.add_webhook()
        for n in range(8):
            first.hub.bus.publish(print_step(n))
        await first.hub.bus.drain()
        rows = await first.deliveries(created["id"], state="pending")
        assert len(rows) == 8
        await wait_for(lambda: len(receiver.received) >= 1, what="a first refused attempt")
    # The hub is stopped with every message pending; the receiver recovers meanwhile.
    refused = len(receiver.received)
    receiver.default = 200
    async with outbound_hub(db_url, tmp_path, receiver) as second:
        await wait_for(lambda: len(receiver.received) == refused + 8, timeout=15, what="8 events")
        await wait_for(lambda: _all_delivered(second, created["id"], 8), what="all delivered")
    accepted = receiver.received[refused:]
    ids = [r.headers["webhook-id"] for r in accepted]
    assert len(set(ids)) == 8
    files = [json.loads(r.body)["data"]["file"] for r in accepted]
    assert files == [f"part-{n}.gcode" for n in range(8)]


async def test_test_message_and_validation(outbound: Outbound) -> None:
    created = await outbound.add_webhook(events=["print.finished"])
    r = await outbound.client.post(f"/api/webhooks/{created['id']}/test", headers=outbound.admin)
    assert r.status_code == 202
    assert (await r.get_json())["event_type"] == "webhook.test"
    await wait_for(lambda: len(outbound.receiver.received) == 1, what="the test message")
    assert verified(created["secret"], outbound.receiver)[0]["type"] == "webhook.test"

    cases = [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "http://10.1.2.3/hook", "events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "events": ["Print!"]}, "events.0"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["print.*", "print.strated"]}, "events.1"),
        ({"url": "https://example.com/x", "events": ["*"], "secret": "mine"}, "secret"),
    ]
    for body, field in cases:
        r = await outbound.client.post("/api/webhooks", json=body, headers=outbound.admin)
        problem = await r.get_json()
        assert r.status_code == 400, problem
        assert problem["errors"][0]["field"] == field, problem
    r = await outbound.client.get("/api/webhooks", headers=outbound.admin)
    assert (await r.get_json())["total"] == 1

    r = await outbound.client.put(
        f"/api/webhooks/{created['id']}", json={"rotate_secret": True}, headers=outbound.admin
    )
    rotated = (await r.get_json())["secret"]
    assert rotated.startswith("whsec_") and rotated != created["secret"]
    r = await outbound.client.delete(f"/api/webhooks/{created['id']}", headers=outbound.admin)
    assert r.status_code == 204
    r = await outbound.client.get(f"/api/webhooks/{created['id']}", headers=outbound.admin)
    assert r.status_code == 404


async def test_rows_written_with_the_event_once(outbound: Outbound) -> None:
    """`write_rows` (what the writers call inside their transaction) is idempotent, and the
    same event published on the bus afterwards adds no row and no send."""
    hook = await outbound.add_webhook(events=["print.*"])
    db, outbox = outbound.hub.db, outbound.hub.outbox
    step = print_step(3)
    for _ in range(2):
        async with db.transaction():
            wake = await outbox.write_rows(step)
        wake()
    # Taken from the bus as an already written event: no second row, no second send.
    outbound.hub.bus.publish(PrintRecorded("p1", "print-3", "job-3", step.event, outboxed=True))
    await outbound.hub.bus.drain()

    async def sent() -> bool:
        rows = await outbound.deliveries(hook["id"], state="delivered")
        return len(rows) == 1

    await wait_for(sent, what="the delivered row")
    assert len(await outbound.deliveries(hook["id"])) == 1
    assert len(outbound.receiver.received) == 1
