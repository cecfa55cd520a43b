"""The printer manager: driver lifecycle per record, isolation, routing, a mixed fleet at once."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from hub.model import Connection, PrinterState, PrintState
from hub.printer_manager import PrinterManager, PrinterNotFound, PrinterRecord
from integrations.printers.base import (
    CommandRejected,
    DriverOptions,
    PrinterDriver,
    PrintOptions,
)
from integrations.printers.registry import load_driver_class
from integrations.simulator import Fleet, SimPrinter
from tests.helpers import wait_for

FAST = DriverOptions(
    connect_timeout_s=3.0,
    command_timeout_s=5.0,
    backoff_initial_s=0.05,
    backoff_max_s=0.5,
    poll_interval_s=0.2,
)
SECRET_KEYS = {
    "bambu": "access_code",
    "moonraker": "api_key",
    "prusalink": "password",
    "octoprint": "api_key",
}
LONG_JOB = b"; estimated printing time: 4h\nG1 X1\n"


@pytest.fixture
async def fleet():
    subnet = f"127.{random.randint(40, 250)}.{random.randint(0, 255)}.0"
    async with Fleet(speed=240.0, subnet=subnet) as sim:
        yield sim


class Seen:
    """Every state the manager reported, by printer."""

    def __init__(self) -> None:
        self.states: list[PrinterState] = []

    def __call__(self, state: PrinterState) -> None:
        self.states.append(state)

    def last(self, printer_id: str) -> PrinterState | None:
        return next((s for s in reversed(self.states) if s.printer_id == printer_id), None)


@pytest.fixture
async def manager():
    seen = Seen()
    mgr = PrinterManager(seen, FAST)
    mgr.seen = seen  # type: ignore[attr-defined]
    yield mgr
    await mgr.stop_all()


def record_for(printer: SimPrinter, printer_id: str, **changes) -> PrinterRecord:
    base = PrinterRecord(
        id=printer_id,
        name=printer.name,
        protocol=printer.protocol,
        host=printer.host,
        port=printer.port,
        serial=printer.serial,
        model=printer.model_name,
        secrets={SECRET_KEYS[printer.protocol]: printer.secret},
        options={"ftps_port": printer.ftps_port} if printer.ftps_port else {},
    )
    return replace(base, **changes)


def _online(mgr: PrinterManager, printer_id: str) -> bool:
    return mgr.link(printer_id).connection is Connection.ONLINE and mgr.state(printer_id).online


async def test_apply_starts_renames_restarts_disables_and_removes(fleet, manager):
    printer = await fleet.add("octoprint", port=0)
    record = record_for(printer, "op")
    await manager.apply(record)
    await wait_for(lambda: _online(manager, "op"), what="online")
    first = manager.driver("op")

    await manager.apply(replace(record, name="Renamed"))
    assert manager.driver("op") is first and manager.record("op").name == "Renamed"

    await manager.apply(replace(record, secrets={"api_key": "wrong"}))
    second = manager.driver("op")
    assert second is not first and first.link.connection is Connection.DISABLED
    await wait_for(lambda: manager.link("op").connection is Connection.AUTH_FAILED, what="auth")

    await manager.apply(replace(record, enabled=False))
    assert manager.driver("op") is None
    assert manager.link("op").connection is Connection.DISABLED
    assert manager.state("op").state is PrintState.OFFLINE
    with pytest.raises(CommandRejected, match="cannot pause printer op: it is disabled"):
        await manager.command("op", "pause", {})

    await manager.apply(record)
    await wait_for(lambda: _online(manager, "op"), what="online again")
    assert manager.printer_ids() == ["op"]
    await manager.remove("op")
    with pytest.raises(PrinterNotFound, match="no printer with id op"):
        manager.state("op")
    with pytest.raises(PrinterNotFound):
        await manager.command("op", "pause", {})


async def test_a_removed_driver_reports_nothing_more(fleet, manager):
    printer = await fleet.add("prusalink", port=0)
    await manager.apply(record_for(printer, "pl"))
    await wait_for(lambda: _online(manager, "pl"), what="online")
    await manager.remove("pl")
    count = len(manager.seen.states)
    await manager.apply(record_for(printer, "other"))
    await wait_for(lambda: _online(manager, "other"), what="other online")
    assert all(s.printer_id == "other" for s in manager.seen.states[count:])


async def test_broken_drivers_do_not_affect_the_others(fleet):
    class Exploding(PrinterDriver):
        protocol = "octoprint"
        default_port = 80
        capabilities = frozenset()

        async def start(self) -> None:
            raise RuntimeError("boom")

        async def stop(self) -> None:
            raise RuntimeError("boom again")

        async def _run_session(self) -> None: ...

        async def _execute(self, name, params):
            return {}

        async def _upload_and_start(self, filename, data, options) -> None: ...

    def loader(protocol: str) -> type[PrinterDriver]:
        return Exploding if protocol == "octoprint" else load_driver_class(protocol)

    def raising_listener(state: PrinterState) -> None:
        raise ValueError("listener bug")

    mgr = PrinterManager(raising_listener, {"backoff_initial_s": 0.05, "poll_interval_s": 0.2},
                         load_driver=loader)  # fmt: skip
    try:
        good = await fleet.add("prusalink", port=0)
        bad = await fleet.add("octoprint", port=0)
        await mgr.apply(record_for(bad, "bad"))
        await mgr.apply(record_for(good, "good"))
        await mgr.apply(PrinterRecord(id="odd", name="?", protocol="makerbot", host="127.0.0.1"))
        await wait_for(lambda: _online(mgr, "good"), what="good printer online")
        assert mgr.driver("bad") is None
        assert mgr.link("bad").last_error == "driver failed: boom"
        assert "no printer driver for protocol 'makerbot'" in (mgr.link("odd").last_error or "")
        with pytest.raises(CommandRejected, match="makerbot"):
            await mgr.command("odd", "pause", {})
    finally:
        await mgr.stop_all()
    assert mgr.printer_ids() == []


async def test_commands_and_prints_are_routed_to_the_right_printer(fleet, manager):
    a = await fleet.add("moonraker", port=0)
    b = await fleet.add("moonraker", port=0)
    await manager.apply(record_for(a, "a"))
    await manager.apply(record_for(b, "b"))
    for pid in ("a", "b"):
        await wait_for(lambda pid=pid: manager.state(pid).state is PrintState.IDLE, what=pid)
    await manager.start_print("b", "only-b.gcode", LONG_JOB, PrintOptions())
    await wait_for(lambda: manager.state("b").state is PrintState.PRINTING, what="b printing")
    assert (
        manager.state("a").state is PrintState.IDLE and a.printer.find_file("only-b.gcode") is None
    )
    result = await manager.command("b", "pause", {})
    assert result == {"command": "pause", "accepted": True}
    assert b.printer.state is PrintState.PAUSED and a.printer.state is PrintState.IDLE


async def test_fifty_mixed_printers_at_once_without_cross_talk(fleet, manager):
    kinds = [("bambu", "X1C"), ("bambu", "P1S"), ("bambu", "A1"), ("moonraker", None),
             ("prusalink", None), ("octoprint", None)]  # fmt: skip
    printers: dict[str, SimPrinter] = {}
    for index in range(50):
        protocol, model = kinds[index % len(kinds)]
        printer = await fleet.add(protocol, model=model, port=0)
        printer_id = f"{protocol}-{index:02d}"
        name = f"{printer_id}.gcode"
        await fleet.load_file(printer, name, LONG_JOB)
        printer.printer.start_print(name)
        printers[printer_id] = printer
    for printer_id, printer in printers.items():
        await manager.apply(record_for(printer, printer_id))

    def own_job(printer_id: str) -> bool:
        job = manager.state(printer_id).job
        return job is not None and job.file in (printer_id, f"{printer_id}.gcode")

    await wait_for(
        lambda: all(_online(manager, pid) and own_job(pid) for pid in printers),
        timeout=20,
        what="every printer online with its own job",
    )
    for printer_id, printer in printers.items():
        state = manager.state(printer_id)
        assert state.printer_id == printer_id
        assert state.state in (PrintState.PREPARING, PrintState.PRINTING)
        if printer.protocol == "bambu":
            assert len([u for u in state.ams if u.unit != 254]) == len(printer.printer.ams)
    # Every state the hub heard names a printer we configured, with that printer's own file.
    assert {s.printer_id for s in manager.seen.states} == set(printers)
    for s in manager.seen.states:
        if s.job is not None:
            assert s.job.file in (s.printer_id, f"{s.printer_id}.gcode")
    mix = Counter(p.protocol for p in printers.values())
    assert mix == {"bambu": 26, "moonraker": 8, "prusalink": 8, "octoprint": 8}
