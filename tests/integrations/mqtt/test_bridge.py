"""The bridge on the real broker: commands from Home Assistant's buttons and light reach the
printer, the last will marks the hub offline when its link dies, and a broker restart ends in a
reconnect that re-publishes the retained state; events published while the broker is away
arrive after the reconnect, once and in order."""

from __future__ import annotations

import json

from api.blueprints.metrics import HubCollector
from hub.events import NotificationStored, QueueJobChanged, SpoolChanged
from hub.model import PrintState
from integrations.mqtt.backlog import Backlog
from tests.helpers import wait_for
from tests.integrations.mqtt.conftest import MqttHub
from tests.integrations.mqtt.test_discovery import running_print


async def test_a_button_press_pauses_a_simulated_print(mqtt_hub: MqttHub) -> None:
    m = mqtt_hub
    printer_id, sim = await running_print(m)
    state_topic = f"{m.base}/printer/{printer_id}/state"
    result_topic = f"{m.base}/printer/{printer_id}/command_result"
    command = f"{m.base}/printer/{printer_id}/command"
    async with m.watch() as ha:
        await wait_for(
            lambda: (ha.json(state_topic) or {}).get("state") == "printing",
            timeout=15,
            what="printing",
        )
        await ha.client.publish(f"{command}/pause", b"PRESS", qos=1)
        await wait_for(lambda: sim.printer.state is PrintState.PAUSED, what="the printer paused")
        await wait_for(
            lambda: (ha.json(state_topic) or {}).get("state") == "paused", what="paused state"
        )
        assert ha.json(result_topic) == {"command": "pause", "result": "ok"}
        # The pause is an event too: a lifecycle step, then the stored notification.
        lifecycle = f"{m.base}/printer/{printer_id}/lifecycle"
        await wait_for(lambda: (ha.json(lifecycle) or {}).get("kind") == "paused", what="step")
        notification = f"{m.base}/printer/{printer_id}/notification"
        await wait_for(lambda: ha.json(notification), what="the notification")
        assert ha.json(notification)["kind"] == "print_paused" and ha.json(notification)["id"]
        assert (ha.json(f"{m.base}/printer/{printer_id}/progress") or {}).get("job_key")

        await ha.client.publish(f"{command}/light", b"maybe", qos=1)
        await wait_for(
            lambda: (ha.json(result_topic) or {}).get("command") == "light", what="light answer"
        )
        assert ha.json(result_topic)["result"] == "error"
        assert sim.printer.lights["chamber_light"] == "on"  # a bad payload changes nothing
        await ha.client.publish(f"{command}/light", b"OFF", qos=1)
        await wait_for(lambda: sim.printer.lights["chamber_light"] == "off", what="light off")
        await wait_for(lambda: ha.json(state_topic)["light"] is False, what="light in state")

        await ha.client.publish(f"{command}/resume", b"PRESS", qos=1)
        await wait_for(lambda: sim.printer.state is PrintState.PRINTING, what="printing again")
        await ha.client.publish(f"{m.base}/printer/no-such-printer/command/stop", b"PRESS")
        missing = f"{m.base}/printer/no-such-printer/command_result"
        await wait_for(lambda: ha.json(missing), what="answer for an unknown printer")
        assert ha.json(missing)["result"] == "error" and ha.json(missing)["code"] == "not_found"
    assert sim.printer.state is PrintState.PRINTING


async def test_last_will_reconnect_and_republish_after_a_broker_restart(
    mqtt_hub: MqttHub,
) -> None:
    m = mqtt_hub
    sim = await m.fleet.add("bambu", model="A1")
    printer_id = await m.add_bambu(sim)
    status = f"{m.base}/status"
    state_topic = f"{m.base}/printer/{printer_id}/state"
    availability = f"{m.base}/printer/{printer_id}/availability"
    bridge = m.bridge
    async with m.watch() as ha:
        await wait_for(lambda: ha.last(status) == b"online" and ha.json(state_topic), what="up")

        # The hub's link dies without a DISCONNECT: the broker publishes its last will, and the
        # hub comes back on its own and says so.
        connects = bridge.connects
        seen = len(ha.messages)
        m.proxy.cut()
        await wait_for(
            lambda: (
                (status, b"offline", True) in ha.messages[seen:]
                or (status, b"offline", False) in ha.messages[seen:]
            ),
            what="the last will",
        )
        await wait_for(lambda: bridge.connects > connects, timeout=5, what="reconnect")
        await wait_for(lambda: ha.last(status) == b"online", what="online again")

        # A broker restart: connections refused for a while, its retained messages gone.
        await m.proxy.down()
        await wait_for(lambda: not bridge.connected.is_set(), what="the hub noticed")
        for topic in (state_topic, availability, status):
            await ha.client.publish(topic, b"", qos=1, retain=True)
        await wait_for(lambda: m.proxy.accepted > 0 and ha.last(state_topic) == b"", what="wiped")
        # Telemetry goes on meanwhile: the bridge drops nothing into a backlog.
        pending = m.hub.bus.stats()["mqtt.telemetry"]["pending"]
        assert pending <= 3, pending
        accepted = m.proxy.accepted
        await m.proxy.up()
        await wait_for(lambda: m.proxy.accepted > accepted, timeout=10, what="a new attempt")
        await wait_for(lambda: ha.last(status) == b"online", timeout=10, what="online")
        await wait_for(lambda: ha.json(state_topic), what="state re-published")
        await wait_for(lambda: ha.last(availability) == b"online", what="availability")
    async with m.watch() as fresh:
        await wait_for(
            lambda: fresh.json(state_topic) and fresh.last(status) == b"online",
            what="retained state after the restart",
        )
        assert fresh.json(state_topic)["printer_id"] == printer_id
        assert fresh.json(state_topic)["online"] is True


async def test_filament_and_queue_changes_are_published(mqtt_hub: MqttHub) -> None:
    m = mqtt_hub
    async with m.watch() as ha:
        await wait_for(lambda: m.bridge.connected.is_set(), what="connected")
        # As the filament and queue services announce their changes on the bus.
        spool = {"id": "s-1", "material": "PETG", "remaining_g": 412.5}
        m.hub.bus.publish(SpoolChanged("s-1", "consumed", "p-1", 2, 412.5, spool))
        job = {"id": "j-1", "state": "queued", "file": "bracket.gcode"}
        m.hub.bus.publish(QueueJobChanged("j-1", "queued", None, job))
        await wait_for(lambda: ha.json(f"{m.base}/filament"), what="spool change")
        await wait_for(lambda: ha.json(f"{m.base}/queue"), what="queue change")
    assert ha.json(f"{m.base}/filament") == {
        "reason": "consumed",
        "spool_id": "s-1",
        "printer_id": "p-1",
        "tray": 2,
        "remaining_g": 412.5,
        "spool": spool,
    }
    assert ha.json(f"{m.base}/queue") == job


async def test_events_while_the_broker_is_away_arrive_once_in_order(mqtt_hub: MqttHub) -> None:
    m = mqtt_hub
    bridge = m.bridge
    queue_topic, notes_topic = f"{m.base}/queue", f"{m.base}/notification"
    async with m.watch() as ha:
        await wait_for(lambda: bridge.connected.is_set(), what="connected")
        m.hub.bus.publish(QueueJobChanged("j-before", "queued", None, {"id": "j-before"}))
        await wait_for(lambda: ha.json(queue_topic) == {"id": "j-before"}, what="a first event")

        # The hub's link to the broker goes (the broker itself stays up for the watcher).
        await m.proxy.down()
        await wait_for(lambda: not bridge.connected.is_set(), what="the hub noticed")
        for n in range(20):
            m.hub.bus.publish(QueueJobChanged(f"j-{n}", "queued", None, {"id": f"j-{n}"}))
            m.hub.bus.publish(NotificationStored(None, {"id": f"n-{n}", "kind": "queue_empty"}))
        await wait_for(lambda: len(bridge.backlog) == 40, what="40 events kept")
        samples = {
            sample.name: sample.value
            for metric in HubCollector(m.hub).collect()
            for sample in metric.samples
        }
        assert samples["printforge_mqtt_event_backlog"] == 40
        assert samples["printforge_mqtt_events_shed_total"] == 0
        seen = len(ha.messages)
        await m.proxy.up()
        await wait_for(lambda: bridge.connected.is_set(), timeout=15, what="reconnected")

        def events() -> list[str]:
            return [
                json.loads(payload)["id"]
                for topic, payload, _ in ha.messages[seen:]
                if topic in (queue_topic, notes_topic)
            ]

        await wait_for(lambda: len(events()) >= 40, timeout=10, what="the kept events")
        # Anything doubled would show up within the broker's round trip of the last one.
        m.hub.bus.publish(QueueJobChanged("j-after", "queued", None, {"id": "j-after"}))
        await wait_for(lambda: "j-after" in events(), what="an event after the backlog")
    expected = [i for n in range(20) for i in (f"j-{n}", f"n-{n}")]
    assert events() == [*expected, "j-after"]
    assert len(bridge.backlog) == 0 and bridge.backlog.shed == 0


def test_backlog_sheds_the_oldest_and_counts() -> None:
    backlog = Backlog(3)
    for n in range(5):
        backlog.push("t", str(n))
    assert len(backlog) == 3 and backlog.shed == 2
    head = backlog.head()
    assert head is not None and head.data == "2"
    backlog.push("t", "5")  # sheds "2", the head being sent right now
    backlog.done(head)  # so nothing more is dropped for it
    assert [backlog.head().data] == ["3"]  # type: ignore[union-attr]
    assert len(backlog) == 3 and backlog.shed == 3
