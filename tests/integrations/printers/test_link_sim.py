"""Link behaviour of every driver against the simulator: connect, drop, silence, restart, auth."""

from __future__ import annotations

import logging
import time

import pytest

from hub.model import Connection, PrintState
from tests.helpers import wait_for

PROTOCOLS = ["bambu", "moonraker", "prusalink", "octoprint"]
# Protocols that hold one long-lived connection (HTTP drivers reconnect per request).
PERSISTENT = {"bambu", "moonraker"}


def _ready(driver) -> bool:
    return driver.link.connection is Connection.ONLINE and driver.state.state is PrintState.IDLE


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connects_and_reports_idle(fleet, connect, protocol):
    printer = await fleet.add(protocol, port=0)
    rec = await connect(printer)
    await wait_for(lambda: _ready(rec.driver), what=f"{protocol} idle and online")
    state = rec.driver.state
    assert state.online and state.printer_id == "p1"
    assert state.temps.nozzle == pytest.approx(24.0, abs=2)
    link = rec.driver.link
    assert link.last_error is None and link.last_seen is not None
    assert link.last_seen == pytest.approx(time.time(), abs=5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reconnects_after_the_printer_drops_the_link(fleet, connect, protocol):
    printer = await fleet.add(protocol, port=0)
    rec = await connect(printer)
    await wait_for(lambda: _ready(rec.driver), what="online")
    published = len(rec.states)
    dropped_at = time.time()
    printer.faults.drop_connection()

    def reconnected() -> bool:
        if protocol in PERSISTENT and all(s.online for s in rec.states[published:]):
            return False  # the drop has not been noticed yet
        return _ready(rec.driver) and (rec.driver.link.last_seen or 0) > dropped_at

    await wait_for(reconnected, what="back online after the drop")
    assert rec.states[-1].online


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_silence_marks_the_link_stale_then_recovers(fleet, connect, protocol):
    printer = await fleet.add(protocol, port=0)
    # Bambu printers report once a second: the watchdog must allow for that.
    rec = await connect(printer, stale_after_s=1.5 if protocol == "bambu" else 0.6)
    await wait_for(lambda: _ready(rec.driver), what="online")
    printer.faults.go_silent(True)
    await wait_for(
        lambda: rec.driver.link.connection is Connection.STALE, timeout=5, what="stale link"
    )
    assert not rec.driver.state.online and rec.driver.state.state is PrintState.OFFLINE
    assert "no data" in (rec.driver.link.last_error or "")
    printer.faults.go_silent(False)
    await wait_for(lambda: _ready(rec.driver), timeout=8, what="online again")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_printer_restart_loses_the_print_and_comes_back(fleet, connect, protocol):
    printer = await fleet.add(protocol, port=0)
    await fleet.load_file(printer, "long.gcode", b"; estimated printing time: 2h\nG1 X1\n")
    printer.printer.start_print("long.gcode")
    rec = await connect(printer)
    await wait_for(
        lambda: rec.driver.state.state in (PrintState.PREPARING, PrintState.PRINTING),
        what="the print seen",
    )
    published = len(rec.states)
    await printer.faults.restart(delay=0.3)
    await wait_for(lambda: _ready(rec.driver), timeout=8, what="idle after the restart")
    if protocol in PERSISTENT:
        assert any(not s.online for s in rec.states[published:])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_wrong_secret_is_auth_failed_and_retried_slowly(fleet, connect, protocol, caplog):
    printer = await fleet.add(protocol, port=0)
    with caplog.at_level(logging.WARNING, logger="integrations.printers.base"):
        rec = await connect(printer, secret="wrong-secret", auth_retry_s=120.0)
        await wait_for(
            lambda: rec.driver.link.connection is Connection.AUTH_FAILED, what="auth_failed"
        )
    link = rec.driver.link
    assert "refused" in (link.last_error or "") or "credentials" in (link.last_error or "")
    assert not rec.driver.state.online
    # A refused secret is an expected condition, never a driver bug with a traceback.
    assert not any(r.exc_info for r in caplog.records)
    retry = next(r for r in caplog.records if "auth_failed" in r.getMessage())
    delay = float(retry.getMessage().rsplit("retrying in ", 1)[1].rstrip("s"))
    assert 60.0 <= delay <= 120.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_refused_auth_recovers_when_the_printer_accepts_again(fleet, connect, protocol):
    printer = await fleet.add(protocol, port=0)
    printer.faults.refuse_auth(True)
    rec = await connect(printer, auth_retry_s=0.2)
    await wait_for(lambda: rec.driver.link.connection is Connection.AUTH_FAILED, what="refused")
    printer.faults.refuse_auth(False)
    await wait_for(lambda: _ready(rec.driver), what="accepted on a later retry")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_unreachable_printer_keeps_retrying_with_backoff(connect, fleet, protocol):
    printer = await fleet.add(protocol, port=0)
    await fleet.remove(printer)  # nothing listens on its address any more
    rec = await connect(printer)
    await wait_for(lambda: rec.driver._backoff.attempt >= 3, what="several attempts")
    assert rec.driver.link.connection is Connection.OFFLINE
    assert rec.driver.link.last_error
    await rec.driver.stop()
    assert rec.driver.link.connection is Connection.DISABLED
