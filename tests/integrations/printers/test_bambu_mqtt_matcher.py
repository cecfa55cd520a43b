"""The Bambu driver's MQTT client looks incoming topics up without making reference cycles."""

from __future__ import annotations

import gc
from typing import Any

import aiomqtt
from paho.mqtt.matcher import MQTTMatcher

from integrations.printers.bambu.driver import without_topic_filters

TOPIC = "device/01P00A000000001/report"


def _cycles_left_by(matcher: MQTTMatcher, lookups: int) -> int:
    """Unreachable objects the cyclic collector finds after `lookups` lookups."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(lookups):
            list(matcher.iter_match(TOPIC))
        return gc.collect()
    finally:
        gc.enable()


async def test_lookups_leave_no_cycles_and_later_filters_still_match() -> None:
    client = aiomqtt.Client("127.0.0.1", 1883)
    paho: Any = client._client
    assert _cycles_left_by(paho._on_message_filtered, 50) > 0  # the stock lookup does
    without_topic_filters(client)
    assert _cycles_left_by(paho._on_message_filtered, 50) == 0

    def on_report(*_: Any) -> None:
        """A filtered callback registered after the swap."""

    paho.message_callback_add("device/+/report", on_report)
    assert list(paho._on_message_filtered.iter_match(TOPIC)) == [on_report]
    assert list(paho._on_message_filtered.iter_match("device/x/request")) == []


async def test_a_client_with_filters_keeps_its_registry() -> None:
    client = aiomqtt.Client("127.0.0.1", 1883)
    paho: Any = client._client
    paho.message_callback_add("a/#", lambda *_: None)
    registry = paho._on_message_filtered
    without_topic_filters(client)
    assert paho._on_message_filtered is registry
