"""Fault injection for one simulated printer: link faults, power cycles, print failures."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from integrations.simulator.model import DEFAULT_FAILURE, PrintModel

if TYPE_CHECKING:
    from integrations.simulator.frontend import FrontEnd


class FaultState:
    """Link faults the protocol front ends consult on every request."""

    def __init__(self) -> None:
        self.refuse_auth = False  # every login / API key is rejected
        self.delay = 0.0  # seconds added before each response
        self.restarting = False  # powered off: nothing listens
        # Bambu: the printer's firmware hangs while its MQTT broker stays up (connects, pings
        # and subscriptions still work; no report, no command reply).
        self.frozen = False
        self._awake = asyncio.Event()  # set while the printer is not silent
        self._awake.set()

    @property
    def silent(self) -> bool:
        """Connected, but no reports and no responses."""
        return not self._awake.is_set()

    def set_silent(self, on: bool) -> None:
        """Start or stop being silent."""
        if on:
            self._awake.clear()
        else:
            self._awake.set()

    async def wait_awake(self) -> None:
        """Return once the printer is no longer silent."""
        await self._awake.wait()


class Faults:
    """The fault controls of one printer (`p.faults`)."""

    def __init__(self, state: FaultState, printer: PrintModel, frontend: FrontEnd) -> None:
        self.state = state
        self._printer = printer
        self._frontend = frontend
        self._restart_lock = asyncio.Lock()

    def drop_connection(self) -> None:
        """Close every client connection at once; the printer keeps listening."""
        self._frontend.drop_connections()

    def go_silent(self, on: bool = True) -> None:
        """Keep connections open but send no reports and answer nothing."""
        self.state.set_silent(on)

    def freeze(self, on: bool = True) -> None:
        """Bambu: stop reporting and answering commands while the broker keeps serving."""
        self.state.frozen = on

    def refuse_auth(self, on: bool = True) -> None:
        """Reject every credential (MQTT CONNACK 5, HTTP 401/403, FTP 530)."""
        self.state.refuse_auth = on

    def slow(self, seconds: float) -> None:
        """Delay every response by `seconds` (0 turns it off)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self.state.delay = seconds

    async def restart(self, delay: float = 0.5) -> None:
        """Power-cycle: drop connections, lose the print, stay down `delay` s, come back idle."""
        async with self._restart_lock:
            self.state.restarting = True
            try:
                await self._frontend.stop()
                self._printer.power_cycle()
                # A power cycle cures a hung (silent) firmware; injected auth and delay stay.
                self.state.set_silent(False)
                self.state.frozen = False
                await asyncio.sleep(delay)
                await self._frontend.start()
            finally:
                self.state.restarting = False

    def fail_print(self, code: int = DEFAULT_FAILURE, message: str = "print failed") -> None:
        """Make the current print fail with `code` (Bambu print_error)."""
        self._printer.fail(code, message)

    def raise_hms(self, attr: int, code: int) -> None:
        """Raise an HMS error given as Bambu's attr and code integers."""
        self._printer.raise_hms(attr, code)

    def clear_hms(self) -> None:
        """Clear all HMS errors."""
        self._printer.clear_hms()

    def ignore_starts(self, on: bool = True) -> None:
        """Acknowledge every print start and never begin it (a firmware stuck at the start)."""
        self._printer.ignore_starts = on

    def runout(self) -> None:
        """Run the active tray out of filament (a running print pauses with an HMS error)."""
        self._printer.runout()
