"""Prometheus metrics of the running hub: printers, telemetry throughput, WebSocket fan-out."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from quart import Blueprint, Response, current_app

from api.context import hub
from api.registry import Ctx, endpoint
from hub.queue.sending import LATENCY_BUCKETS
from hub.runtime import Hub
from integrations.mqtt.bridge import RUNNING as MQTT_BRIDGES
from integrations.printers.read_pacer import pacer_of

bp = Blueprint("metrics", __name__)

METRICS_RESPONSE = {"type": "string", "description": "Prometheus text exposition format 0.0.4"}


def _mqtt_metrics(h: Hub) -> Iterator[Metric]:
    """The MQTT bridge, when running: messages published, events waiting, events shed."""
    bridges = [b for b in list(MQTT_BRIDGES) if b.ctx.hub is h]
    if not bridges:
        return
    yield CounterMetricFamily(
        "printforge_mqtt_published",
        "Messages handed to the MQTT broker connection.",
        value=sum(b.published for b in bridges),
    )
    yield GaugeMetricFamily(
        "printforge_mqtt_event_backlog",
        "Non-retained MQTT events waiting for the broker.",
        value=sum(len(b.backlog) for b in bridges),
    )
    yield CounterMetricFamily(
        "printforge_mqtt_events_shed",
        "Non-retained MQTT events shed because the backlog was full while the broker was away.",
        value=sum(b.backlog.shed for b in bridges),
    )


def _queue_metrics(h: Hub) -> Iterator[Metric]:
    """The print queue: jobs by state, starts sent, dispatch latency and decision CPU."""
    try:
        dispatcher, queue = h.dispatcher, h.queue
    except RuntimeError:
        return
    jobs = GaugeMetricFamily("printforge_queue_jobs", "Unfinished queue jobs.", labels=["state"])
    for state, count in sorted(Counter(j.state for j in queue.jobs.values()).items()):
        jobs.add_metric([state], count)
    yield jobs
    yield CounterMetricFamily(
        "printforge_queue_starts", "Start commands sent by the dispatcher.", value=dispatcher.sends
    )
    yield CounterMetricFamily(
        "printforge_queue_decision_cpu_seconds",
        "CPU the dispatcher spent choosing printers and jobs (not sending files).",
        value=dispatcher.decide_cpu_s,
    )
    yield CounterMetricFamily(
        "printforge_queue_start_seconds",
        "Seconds the starts spent uploading and starting (a slot of the start pool held).",
        value=dispatcher.start_s_sum,
    )
    buckets = [
        ("+Inf" if bound == float("inf") else repr(bound), count)
        for bound, count in zip(LATENCY_BUCKETS, dispatcher.latency_counts, strict=True)
    ]
    yield HistogramMetricFamily(
        "printforge_queue_dispatch_latency_seconds",
        "From a printer seen idle and ready to its start command being sent.",
        buckets=buckets,
        sum_value=dispatcher.latency_sum,
    )


def _shed_metrics(h: Hub) -> Iterator[Metric]:
    """Reports and events shed under load, per stage (docs/reliability.md, "Overload")."""
    handoff = h.handoff
    shed = CounterMetricFamily(
        "printforge_reports_shed",
        "Printer reports and derived events dropped because a newer one of the same printer "
        "replaced them while waiting, or a bounded buffer was full; by stage.",
        labels=["stage"],
    )
    shed.add_metric(["handoff"], handoff.shed)
    shed.add_metric(["handoff_marks"], handoff.shed_marks)
    for name, counts in sorted(h.bus.stats().items()):
        shed.add_metric([f"bus:{name}"], counts["dropped"] + counts["coalesced"])
    yield shed
    yield GaugeMetricFamily(
        "printforge_reports_waiting",
        "Printer reports waiting in the hand-off from the drivers to telemetry.",
        value=len(handoff),
    )
    pacer = pacer_of(asyncio.get_running_loop()).stats()
    yield CounterMetricFamily(
        "printforge_link_reads_deferred",
        "Printer link reads put off to a later turn of the event loop because the turn's "
        "budget of reads was spent (nothing is dropped: the data waits in the socket).",
        value=pacer["deferred"],
    )
    yield CounterMetricFamily(
        "printforge_link_reads_overdue",
        "Printer link reads past a turn's budget because the link had waited its longest "
        "(the fleet sends more than the loop reads in its share of a turn).",
        value=pacer["overdue"],
    )
    yield GaugeMetricFamily(
        "printforge_links_parked",
        "Printer links with data to read, waiting for a turn of the event loop.",
        value=pacer["parked"],
    )


def _gate_metrics(gate: dict[str, int]) -> Iterator[Metric]:
    """The hub-wide connect gate: links waiting for a turn, connecting now, turns given."""
    links = GaugeMetricFamily(
        "printforge_connect_gate_links",
        "Printer links at the hub's connect gate: waiting for a turn, or connecting now.",
        labels=["state"],
    )
    links.add_metric(["waiting"], gate["waiting"])
    links.add_metric(["connecting"], gate["connecting"])
    yield links
    yield CounterMetricFamily(
        "printforge_connect_gate_admitted",
        "Connect attempts let through the hub's connect gate since start.",
        value=gate["admitted"],
    )


class HubCollector(Collector):
    """Reads the hub's own counters when scraped, so the telemetry path pays nothing for them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        """One sample per metric, taken now."""
        h = self.hub
        yield GaugeMetricFamily(
            "printforge_printers", "Configured printers.", value=len(h.printers)
        )
        links: Counter[str] = Counter()
        received = reports = 0
        try:
            manager, reports = h.manager, h.telemetry.reports
        except RuntimeError:  # not started yet, or stopping
            manager = None
        if manager is not None:
            for printer_id in manager.printer_ids():
                try:
                    links[manager.link(printer_id).connection.value] += 1
                    driver = manager.driver(printer_id)
                except KeyError:
                    continue  # removed while we looked
                if driver is not None:
                    received += driver.messages_received
        yield from _queue_metrics(h)
        yield from _mqtt_metrics(h)
        connections = GaugeMetricFamily(
            "printforge_printer_links", "Printers by link state.", labels=["connection"]
        )
        for state, count in sorted(links.items()):
            connections.add_metric([state], count)
        yield connections
        if manager is not None:
            yield from _gate_metrics(manager.connect_gate.stats())
        yield CounterMetricFamily(
            "printforge_printer_messages",
            "Protocol messages received from printers by the running drivers.",
            value=received,
        )
        yield CounterMetricFamily(
            "printforge_telemetry_reports",
            "Printer state reports fed into the telemetry stream.",
            value=reports,
        )
        yield from _shed_metrics(h)
        broadcaster = h.broadcaster
        yield GaugeMetricFamily(
            "printforge_ws_clients", "Connected WebSocket clients.", value=len(broadcaster.clients)
        )
        yield CounterMetricFamily(
            "printforge_ws_messages_published",
            "Live messages published to the WebSocket broadcaster.",
            value=broadcaster.published,
        )
        try:
            outbox = h.outbox
        except RuntimeError:  # not started yet, or stopping
            return
        yield CounterMetricFamily(
            "printforge_outbox_attempts",
            "Delivery attempts to webhook endpoints and notification channels.",
            value=outbox.attempted,
        )
        yield CounterMetricFamily(
            "printforge_outbox_delivered",
            "Messages delivered to webhook endpoints and notification channels.",
            value=outbox.delivered,
        )
        yield GaugeMetricFamily(
            "printforge_outbox_busy_targets",
            "Webhook endpoints and channels with messages waiting or in flight in this process.",
            value=outbox.busy(),
        )


def _registry() -> CollectorRegistry:
    registry: CollectorRegistry | None = current_app.extensions.get("printforge.metrics")
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HubCollector(hub()))
        ProcessCollector(registry=registry)
        current_app.extensions["printforge.metrics"] = registry
    return registry


@endpoint(
    bp,
    "GET",
    "/api/metrics",
    role="admin",
    summary="Prometheus metrics",
    tag="System",
    response=METRICS_RESPONSE,
    errors=(401, 403),
    content_type=CONTENT_TYPE_LATEST.split(";")[0],
)
async def metrics(ctx: Ctx) -> Response:
    """Hub counters and process figures in the Prometheus text format."""
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
