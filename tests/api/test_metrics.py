"""GET /api/metrics: Prometheus text for admins, read from the hub's counters when scraped."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hub.model import PrinterState, PrintState
from tests.api.conftest import Api, assert_problem
from tests.conftest import ONE_ENGINE
from tests.helpers import wait_for


def _samples(text: str) -> dict[str, float]:
    return {
        sample.name + ("" if not sample.labels else str(sorted(sample.labels.items()))): (
            sample.value
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@ONE_ENGINE
async def test_admin_reads_hub_counters(api: Api) -> None:
    await api.client.post(
        "/api/printers",
        json={"name": "m1", "protocol": "moonraker", "host": "127.0.0.9"},
        headers=api.auth("admin"),
    )
    for _ in range(3):
        api.hub.telemetry.feed(PrinterState("m1", online=True, state=PrintState.IDLE))
    r = await api.client.get("/api/metrics", headers=api.auth("admin"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = _samples(await r.get_data(as_text=True))
    assert samples["printforge_printers"] == 1
    # The driver's own link changes are reports too; ours are the last three.
    assert samples["printforge_telemetry_reports_total"] == api.hub.telemetry.reports >= 3
    assert samples["printforge_printer_messages_total"] == 0
    assert samples["printforge_ws_clients"] == 0
    assert sum(v for k, v in samples.items() if k.startswith("printforge_printer_links")) == 1
    assert "process_resident_memory_bytes" in samples


@ONE_ENGINE
async def test_metrics_need_admin(api: Api) -> None:
    await assert_problem(await api.client.get("/api/metrics"), 401)
    for role in ("viewer", "operator"):
        r = await api.client.get("/api/metrics", headers=api.auth(role))
        await assert_problem(r, 403)


@ONE_ENGINE
async def test_reports_shed_in_the_handoff_are_counted_per_stage(api: Api) -> None:
    handoff = api.hub.handoff
    before = handoff.shed
    for n in range(25):  # one printer, one mark: all but the newest are shed before a drain
        handoff.offer(PrinterState("shed-1", online=True, state=PrintState.IDLE, updated_at=n))
    assert handoff.shed == before + 24
    r = await api.client.get("/api/metrics", headers=api.auth("admin"))
    samples = _samples(await r.get_data(as_text=True))
    stage = "printforge_reports_shed_total" + str([("stage", "handoff")])
    assert samples[stage] == handoff.shed >= before + 24
    assert "printforge_reports_shed_total" + str([("stage", "handoff_marks")]) in samples
    assert any(k.startswith("printforge_reports_shed_total[('stage', 'bus:") for k in samples)
    assert "printforge_reports_waiting" in samples
    assert "printforge_link_reads_deferred_total" in samples
    assert "printforge_link_reads_overdue_total" in samples
    assert "printforge_links_parked" in samples


@ONE_ENGINE
async def test_connect_gate_counts_waiting_connecting_and_admitted(api: Api) -> None:
    gate = api.hub.manager.connect_gate
    admitted = gate.admitted
    held = [await gate.enter() for _ in range(gate.limit)]  # every turn taken
    await api.client.post(
        "/api/printers",
        json={"name": "g1", "protocol": "moonraker", "host": "127.0.0.9"},
        headers=api.auth("admin"),
    )
    await wait_for(lambda: gate.waiting == 1, what="the new link waiting at the gate")
    r = await api.client.get("/api/metrics", headers=api.auth("admin"))
    samples = _samples(await r.get_data(as_text=True))
    links = "printforge_connect_gate_links"
    assert samples[links + str([("state", "waiting")])] == 1
    assert samples[links + str([("state", "connecting")])] == gate.limit
    assert samples["printforge_connect_gate_admitted_total"] == admitted + gate.limit
    for release in held:
        release()
    await wait_for(lambda: gate.waiting == 0 and gate.admitted > admitted + gate.limit)
    r = await api.client.get("/api/metrics", headers=api.auth("admin"))
    samples = _samples(await r.get_data(as_text=True))
    assert samples[links + str([("state", "waiting")])] == 0
    assert samples["printforge_connect_gate_admitted_total"] >= admitted + gate.limit + 1
