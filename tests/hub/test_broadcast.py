"""Per-client buffers: latest-wins per printer for status kinds, bounded FIFO for events."""

from __future__ import annotations

import json

from hub.broadcast import MAX_FRAMES, Broadcaster, Client, Message, encode


def test_status_for_same_printer_replaces_older_unsent() -> None:
    b = Broadcaster()
    c = Client()
    b.register(c)
    for progress in range(100):
        b.publish("printer.status", {"p": progress}, "printer-1")
    b.publish("printer.status", {"p": 7}, "printer-2")
    sent = [json.loads(m.text) for m in c.drain()]
    assert [(m["type"], m["payload"]) for m in sent] == [
        ("printer.status", {"p": 99}),
        ("printer.status", {"p": 7}),
    ]


def test_events_are_kept_in_order_and_bounded() -> None:
    b = Broadcaster()
    c = Client(max_events=10)
    b.register(c)
    for i in range(25):
        b.publish("notification", {"i": i}, "printer-1")
    sent = [json.loads(m.text)["payload"]["i"] for m in c.drain()]
    assert sent == list(range(15, 25))
    assert c.dropped == 15
    assert c.pending() == 0


def test_a_stalled_client_stays_bounded_while_others_drain() -> None:
    b = Broadcaster()
    stalled, healthy = Client(max_events=50), Client(max_events=50)
    b.register(stalled)
    b.register(healthy)
    for i in range(10_000):
        b.publish("printer.status", {"i": i}, f"printer-{i % 20}")
        b.publish("notification", {"i": i}, f"printer-{i % 20}")
        if i % 100 == 0:
            healthy.drain()
    assert stalled.pending() <= 20 + 50
    assert healthy.pending() <= 20 + 50


def test_filters_by_printer_and_type() -> None:
    b = Broadcaster()
    c = Client(printers=frozenset({"a"}), types=frozenset({"print.progress"}))
    b.register(c)
    b.publish("print.progress", {"x": 1}, "a")
    b.publish("print.progress", {"x": 2}, "b")
    b.publish("printer.status", {"x": 3}, "a")
    assert [json.loads(m.text)["payload"] for m in c.drain()] == [{"x": 1}]
    b.unregister(c)
    b.publish("print.progress", {"x": 4}, "a")
    assert c.drain() == []


def test_batch_clients_with_one_subscription_share_one_encoded_frame() -> None:
    b = Broadcaster()
    one, two = Client(batch=True), Client(batch=True)
    other = Client(batch=True, types=frozenset({"notification"}))
    for c in (one, two, other):
        b.register(c)
    b._pending = [  # as published during one flush interval
        Message("printer.status", "a", encode("printer.status", {"v": 1}, 1.0), 1.0),
        Message("notification", "a", encode("notification", {"v": 2}, 2.0), 2.0),
        Message("printer.status", "a", encode("printer.status", {"v": 3}, 3.0), 3.0),
    ]
    b.flush()
    assert len(one.frames) == 1 and one.frames[0] is two.frames[0]
    frame = one.frames[0]
    assert [m["payload"]["v"] for m in json.loads(frame.text)["payload"]] == [2, 3]
    assert [json.loads(m.text)["payload"]["v"] for m in other.frames[0].messages] == [2]
    assert b.frames_shared == 3
    text, at = one.take_batch()
    assert text is frame.text and at == frame.at  # sent as it is, not re-encoded
    assert one.frames == [] and one.pending() == 0


def values(text: str | None) -> list[object]:
    """The `v` of every message in a batch frame."""
    assert text is not None
    return [m["payload"].get("v") for m in json.loads(text)["payload"]]


def test_frames_a_client_has_not_sent_yet_are_concatenated_in_order() -> None:
    b = Broadcaster()
    c = Client(batch=True)
    b.register(c)
    b.publish("printer.status", {"v": 1}, "a")  # no event loop: every publish is flushed
    b.publish("printer.status", {"v": 2}, "a")
    b.publish("notification", {"v": 3}, "a")
    assert len(c.frames) == 3 and c.pending() == 3
    text, at = c.take_batch()
    assert values(text) == [1, 2, 3] and at is None


def test_a_client_far_behind_falls_back_to_its_bounded_latest_wins_buffer() -> None:
    b = Broadcaster()
    c = Client(batch=True, max_events=3)
    b.register(c)
    for v in range(MAX_FRAMES + 5):
        b.publish("printer.status", {"v": v}, "a")
        b.publish("notification", {"v": 100 + v}, "a")
    assert len(c.frames) < MAX_FRAMES and c.own_buffer_used()
    assert c.dropped > 0
    text, _ = c.take_batch('{"type":"dropped","payload":{},"ts":0}')
    got = values(text)
    assert got[0] is None  # the dropped notice first
    assert got[1:] == [112, 113, MAX_FRAMES + 4, 114]  # newest per printer, newest events


def test_a_filter_change_applies_to_frames_not_yet_sent() -> None:
    b = Broadcaster()
    c = Client(batch=True)
    b.register(c)
    b.publish("printer.status", {"v": 1}, "a")
    b.publish("printer.status", {"v": 2}, "b")
    b.subscribe(c, frozenset({"b"}), None, True)
    text, _ = c.take_batch()
    assert values(text) == [2]


def test_leaving_batch_mode_keeps_messages_waiting_for_the_flush() -> None:
    b = Broadcaster()
    c = Client(batch=True)
    b.register(c)
    b._pending.append(Message("notification", None, encode("notification", {"v": 1}), 1.0))
    b.subscribe(c, None, None, False)
    b.flush()
    b.publish("notification", {"v": 2}, None)
    assert [json.loads(m.text)["payload"]["v"] for m in c.take()] == [1, 2]


def test_the_last_published_status_is_kept_while_clients_listen() -> None:
    b = Broadcaster()
    b.publish("printer.status", {"v": 1}, "a")
    assert "a" not in b.last_status  # nobody listening: nothing encoded, nothing kept
    c = Client()
    b.register(c)
    b.publish("printer.status", {"v": 2}, "a")
    assert json.loads(b.last_status["a"].text)["payload"] == {"v": 2}
    b.unregister(c)
    b.publish("printer.status", {"v": 3}, "a")
    assert "a" not in b.last_status  # stale copies are dropped, never served
    b.register(c)
    b.publish("printer.status", {"v": 4}, "a")
    b.forget("a")
    assert "a" not in b.last_status


def test_an_unregistered_client_lets_go_of_what_it_had_queued() -> None:
    b = Broadcaster()
    direct, batched = Client(), Client(batch=True)
    b.register(direct)
    b.register(batched)
    for i in range(50):
        b.publish("printer.status", {"i": i}, f"printer-{i}")
        b.publish("notification", {"i": i}, f"printer-{i}")
    b.flush()
    assert direct.pending() == 100 and batched.pending() == 100
    b.unregister(direct)
    b.unregister(batched)
    assert direct.pending() == 0 and batched.pending() == 0
    b.publish("printer.status", {"i": 0}, "printer-0")
    b.flush()
    assert direct.pending() == 0 and batched.pending() == 0


def test_requeued_messages_go_back_behind_nothing_newer() -> None:
    b = Broadcaster()
    c = Client(max_events=3)
    b.register(c)
    b.publish("printer.status", {"v": "old"}, "printer-1")
    b.publish("notification", {"n": 1}, "printer-1")
    taken = c.take()
    b.publish("printer.status", {"v": "new"}, "printer-1")
    b.publish("notification", {"n": 2}, "printer-1")
    b.publish("notification", {"n": 3}, "printer-1")
    b.publish("notification", {"n": 4}, "printer-1")
    c.requeue(taken)
    sent = [(m.type, json.loads(m.text)["payload"]) for m in c.drain()]
    assert ("printer.status", {"v": "new"}) in sent
    assert ("printer.status", {"v": "old"}) not in sent
    assert [p["n"] for t, p in sent if t == "notification"] == [2, 3, 4]  # bounded: oldest dropped
    assert c.dropped == 1
