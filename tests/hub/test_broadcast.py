"""Per-client buffers: latest-wins per printer for status kinds, bounded FIFO for events."""

from __future__ import annotations

import json

from hub.broadcast import Broadcaster, Client


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
