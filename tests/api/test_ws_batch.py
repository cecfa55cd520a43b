"""`/ws` batch frames (opt-in in `subscribe`): every queued message in one frame, paced."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hub.broadcast import MAX_FRAMES, Broadcaster, encode, encode_batch
from tests.api.conftest import Api
from tests.api.test_ws import add_disabled_printer, recv, recv_type
from tests.helpers import wait_for


@pytest.fixture
def db_url(tmp_path: Any) -> str:
    """SQLite only: batching does not touch the database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


def test_encode_batch_wraps_encoded_messages() -> None:
    texts = [encode("notification", {"n": 1}, 1.0), encode("print.progress", {"p": 2}, 2.0)]
    frame = json.loads(encode_batch(texts, 3.0))
    assert frame == {
        "type": "batch",
        "payload": [json.loads(t) for t in texts],
        "ts": "1970-01-01T00:00:03.000Z",
    }


async def test_batch_frames_carry_every_queued_message(api: Api) -> None:
    app = api.app
    app.config["WS_BATCH_INTERVAL_S"] = 0.2
    a = await add_disabled_printer(api, "a", "10.0.0.1")
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        await conn.send(json.dumps({"type": "subscribe", "batch": True, "id": 7}))
        subscribed = await recv_type(conn, "subscribed")
        assert subscribed["payload"] == {"printers": None, "types": None, "batch": True, "id": 7}
        snapshot = await recv(conn)
        snapshot_at = time.monotonic()
        assert snapshot["type"] == "batch"
        assert [(m["type"], m["payload"]["printer_id"]) for m in snapshot["payload"]] == [
            ("printer.status", a)
        ]
        for n in range(3):
            broadcaster.publish("notification", {"printer_id": a, "n": n}, a)
        frame = await recv(conn)
        # The next frame waits for the interval, and everything queued meanwhile rides in it.
        assert time.monotonic() - snapshot_at >= 0.15
        assert frame["type"] == "batch"
        assert [m["payload"]["n"] for m in frame["payload"]] == [0, 1, 2]
        assert all(m["type"] == "notification" for m in frame["payload"])

        # Replies are never batched; a subscribe without `batch` turns it off.
        await conn.send(json.dumps({"type": "subscribe"}))
        assert (await recv_type(conn, "subscribed"))["payload"] == {
            "printers": None,
            "types": None,
        }
        await recv_type(conn, "printer.status")
        broadcaster.publish("notification", {"printer_id": a, "n": 9}, a)
        message = await recv_type(conn, "notification")
        assert message["payload"]["n"] == 9


async def test_batch_must_be_a_boolean(api: Api) -> None:
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        await conn.send(json.dumps({"type": "subscribe", "batch": "yes"}))
        error = await recv_type(conn, "error")
        assert error["payload"]["detail"] == "subscribe: 'batch' must be true or false"


def _idle(broadcaster: Broadcaster) -> bool:
    """No flush pending and every client's writer has sent all it was given."""
    return broadcaster._flush_at is None and all(
        not client.frames and client.pending() == 0 for client in broadcaster.clients
    )


async def test_dropped_notice_rides_in_the_batch(api: Api) -> None:
    api.app.config["WS_MAX_EVENTS"] = 2
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        await conn.send(json.dumps({"type": "subscribe", "batch": True}))
        await recv_type(conn, "subscribed")
        await wait_for(lambda: _idle(broadcaster), what="the writer idle after the reply")
        # Flushes while the client's writer cannot run (as with a client that does not read):
        # past MAX_FRAMES unsent frames its messages go to its own bounded buffer.
        for n in range(MAX_FRAMES + 3):
            broadcaster.publish("notification", {"n": n}, None)
            broadcaster.flush()
        frame = await recv_type(conn, "batch")
        kinds = [(m["type"], m["payload"]) for m in frame["payload"]]
        total = MAX_FRAMES + 1
        assert kinds[0] == ("dropped", {"count": total, "total": total})
        assert [p["n"] for _, p in kinds[1:]] == [MAX_FRAMES + 1, MAX_FRAMES + 2]


async def test_every_batch_client_gets_the_flush_in_one_frame(api: Api) -> None:
    api.app.config["WS_BATCH_INTERVAL_S"] = 0.05
    broadcaster = api.hub.broadcaster
    subscribe = json.dumps({"type": "subscribe", "batch": True})
    async with (
        api.client.websocket("/ws", headers=api.auth("viewer")) as one,
        api.client.websocket("/ws", headers=api.auth("viewer")) as two,
    ):
        for conn in (one, two):
            await conn.send(subscribe)
            await recv_type(conn, "subscribed")
        await wait_for(lambda: _idle(broadcaster), what="both writers idle, no flush pending")
        shared_before = broadcaster.frames_shared
        for n in range(3):
            broadcaster.publish("print.progress", {"printer_id": "p", "n": n}, "p")
        broadcaster.publish("notification", {"n": 9}, "p")
        frames = [await recv_type(conn, "batch") for conn in (one, two)]
        assert frames[0] == frames[1]  # one text for both
        # Latest-wins inside a flush.
        got = [(m["type"], m["payload"]["n"]) for m in frames[0]["payload"]]
        assert got == [("print.progress", 2), ("notification", 9)]
        assert broadcaster.frames_shared == shared_before + 2


async def test_a_backlog_still_going_out_switches_to_one_frame_on_subscribe(api: Api) -> None:
    broadcaster = api.hub.broadcaster
    async with api.client.websocket("/ws", headers=api.auth("viewer")) as conn:
        await recv_type(conn, "hello")
        count = 300
        for n in range(count):
            broadcaster.publish("notification", {"n": n}, None)
        first = await recv_type(conn, "notification")
        await conn.send(json.dumps({"type": "subscribe", "batch": True}))
        seen, single = [first["payload"]["n"]], 1
        while len(seen) < count:
            message = await recv(conn)
            if message["type"] == "notification":
                seen.append(message["payload"]["n"])
                single += 1
            elif message["type"] == "batch":
                seen += [
                    m["payload"]["n"] for m in message["payload"] if m["type"] == "notification"
                ]
        assert seen == list(range(count))  # each once, in order
        assert single < count // 2  # the rest came in batch frames, not a frame each
