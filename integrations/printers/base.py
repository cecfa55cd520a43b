"""The printer driver contract and the behaviour every driver shares.

A driver owns one link to one printer. The base class runs that link: it
reconnects with jittered exponential backoff, watches for silence, slows down
after a rejected secret, validates commands, and publishes normalized
`PrinterState` snapshots. A concrete driver implements only the protocol:
`_run_session` (connect, then consume until the link ends), `_execute`
(one command) and `_upload_and_start`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import aiohttp

from hub.model import ACTIVE_STATES, Connection, PrinterState, PrintState, offline_state
from integrations.printers.backoff import Backoff
from integrations.printers.commands import (
    ALL_COMMANDS,
    InvalidParams,
    state_refusal,
    validate_params,
)
from integrations.printers.connect_gate import ConnectGate, Release

__all__ = [
    "AuthFailed",
    "CommandError",
    "CommandRejected",
    "CommandTimeout",
    "CommandUnsupported",
    "DriverConfig",
    "DriverOptions",
    "InvalidParams",
    "LinkInfo",
    "LinkStale",
    "PrintOptions",
    "PrinterDriver",
    "StateCallback",
    "end_tasks",
    "raise_if_cancelled",
]

log = logging.getLogger(__name__)

StateCallback = Callable[[PrinterState], None]

# Errors a link is expected to end with; anything else is logged with a traceback.
_NETWORK_ERRORS = (OSError, TimeoutError, aiohttp.ClientError)
# A cancelled task normally ends at once; one still running after this is cancelled again
# (every _RECANCEL_EVERY_S), since library code may have swallowed the first cancellation.
_FIRST_CANCEL_GRACE_S = 1.0
_RECANCEL_EVERY_S = 0.25


def raise_if_cancelled() -> None:
    """Raise CancelledError if the current task was asked to stop and that request got lost.

    On Python 3.11 `asyncio.wait_for` (used by aiomqtt for every acknowledgement) returns
    the result instead of raising when the awaited future completes in the same loop turn as
    the cancellation: the task then runs on as if nothing had asked it to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def end_tasks(tasks: set[asyncio.Task[Any]], within_s: float) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait at most `within_s` for them; returns those still running.

    A task that swallowed its cancellation is cancelled again while the time lasts. The
    caller's own cancellation propagates as usual.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    pending = {t for t in tasks if not t.done()}
    wait = min(_FIRST_CANCEL_GRACE_S, within_s / 2)
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(wait, remaining))
        wait = _RECANCEL_EVERY_S
    return pending


def _no_turn() -> None:
    """The release of a connect that held no turn at the gate."""


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark an abandoned task's outcome as seen (no "exception never retrieved" at exit)."""
    if not task.cancelled():
        task.exception()


class CommandError(Exception):
    """Base of the errors a command can end with; `http_status` is what the API answers."""

    http_status = 500


class CommandUnsupported(CommandError):
    """The protocol has no such command (HTTP 400)."""

    http_status = 400

    def __init__(self, command: str, protocol: str) -> None:
        super().__init__(f"command '{command}' is not supported by {protocol} printers")
        self.command = command
        self.protocol = protocol


class CommandRejected(CommandError):
    """The printer is offline, in the wrong state, or refused the command (HTTP 409)."""

    http_status = 409


class CommandTimeout(CommandError):
    """The printer did not acknowledge in time (HTTP 504)."""

    http_status = 504


class AuthFailed(Exception):
    """The printer refused the configured secret."""


class LinkStale(Exception):
    """The printer stopped sending data while the link looked up."""


@dataclass(frozen=True, slots=True)
class DriverOptions:
    """Tunable numbers shared by drivers; defaults are the production values."""

    connect_timeout_s: float = 10.0
    command_timeout_s: float = 10.0
    upload_timeout_s: float = 300.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    # A link must stay up this long before the backoff starts over, so a printer
    # that accepts and immediately drops is not hammered at the shortest delay.
    backoff_reset_after_s: float = 10.0
    stale_after_s: float = 60.0
    auth_retry_s: float = 300.0
    # The longest a driver's stop() takes: past it the link's sockets are closed directly
    # and a link task that still does not end is left behind with a warning.
    stop_within_s: float = 3.0
    poll_interval_s: float = 1.0
    pushall_min_interval_s: float = 300.0
    verify_tls: bool = False
    ca_file: str | None = None
    ftps_port: int | None = None

    def with_overrides(self, overrides: Mapping[str, Any]) -> DriverOptions:
        """A copy with the keys of `overrides` that name an option applied (others are ignored)."""
        known = {f.name for f in fields(self)}
        changes = {k: v for k, v in overrides.items() if k in known}
        return replace(self, **changes) if changes else self


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """Everything a driver needs to reach one printer."""

    printer_id: str
    host: str
    port: int | None = None
    serial: str = ""
    model: str = ""
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: DriverOptions = field(default_factory=DriverOptions)
    # The hub-wide bound on connects in progress (none: this link connects whenever it likes).
    connect_gate: ConnectGate | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """The hub's view of its connection to a printer."""

    connection: Connection
    last_seen: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class PrintOptions:
    """How to start an uploaded print; fields a protocol has no use for are ignored."""

    plate: int = 1
    use_ams: bool | None = None
    ams_mapping: tuple[int, ...] | None = None
    bed_leveling: bool = True
    timelapse: bool = False
    bed_type: str = "auto"


def describe_error(exc: BaseException) -> str:
    """A short human message for a connection error (some carry an empty str())."""
    text = str(exc)
    if isinstance(exc, TimeoutError) and not text:
        return "timed out"
    return text or type(exc).__name__


class PrinterDriver(abc.ABC):
    """One printer's link: subclasses speak the protocol, this class runs the link."""

    protocol: ClassVar[str]
    default_port: ClassVar[int]
    capabilities: ClassVar[frozenset[str]]

    def __init__(self, config: DriverConfig, on_state: StateCallback) -> None:
        self.config = config
        self.options = config.options
        self._on_state = on_state
        self._state = offline_state(config.printer_id)
        self._connection = Connection.OFFLINE
        self._last_error: str | None = None
        self._last_seen: float | None = None
        self._last_data = 0.0  # monotonic time of the last byte of data, for the watchdog
        self.messages_received = 0  # protocol messages since start (the hub's /api/metrics)
        self._online_since: float | None = None
        # Set by a protocol whose reconnect after a stale link is no proof of life: the link
        # stays stale until the printer reports again (the watchdog still bounds the wait).
        self._awaiting_report = False
        self._supervisor: asyncio.Task[None] | None = None
        self._backoff = Backoff(self.options.backoff_initial_s, self.options.backoff_max_s)
        self._connect_turn: Release | None = None  # held from connect start until online

    # --- public contract -------------------------------------------------------------

    @property
    def printer_id(self) -> str:
        """The hub's id of this printer."""
        return self.config.printer_id

    @property
    def host(self) -> str:
        """Address of the printer."""
        return self.config.host

    @property
    def port(self) -> int:
        """Configured port, or the protocol's default."""
        return self.config.port or self.default_port

    @property
    def state(self) -> PrinterState:
        """Last normalized state."""
        return self._state

    @property
    def link(self) -> LinkInfo:
        """Connection state, when data last arrived, and the last error."""
        return LinkInfo(self._connection, self._last_seen, self._last_error)

    async def start(self) -> None:
        """Begin connecting in the background; never raises for a printer that is down."""
        if self._supervisor is not None and not self._supervisor.done():
            return
        self._set_link(Connection.CONNECTING, None)
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"printer-link:{self.printer_id}"
        )

    async def stop(self) -> None:
        """Close the link and stop reconnecting, within `stop_within_s` whatever the link does."""
        task, self._supervisor = self._supervisor, None
        if task is not None:
            within = self.options.stop_within_s
            # The supervisor gives its session three quarters of the time (cancelling it
            # again, closing its connection, then abandoning it with a warning): it is
            # normally done well before this.
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=within * 5 / 6)
            if not done:
                self._abort_link()
                self._abandon(await end_tasks({task}, within / 6), within)
        self._go_offline(Connection.DISABLED, None)

    async def command(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one command; returns once the printer acknowledged it."""
        if name not in ALL_COMMANDS or name not in self.capabilities:
            raise CommandUnsupported(name, self.protocol)
        clean = validate_params(name, params)
        self._require_online(name)
        refusal = state_refusal(name, self._state.state)
        if refusal is not None:
            raise CommandRejected(f"cannot {name} printer {self.printer_id}: {refusal}")
        result = await self._execute(name, clean)
        return {"command": name, "accepted": True, **result}

    async def start_print(self, filename: str, data: bytes, options: PrintOptions) -> None:
        """Upload `data` as `filename` and start printing it."""
        if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
            raise InvalidParams(f"file name {filename!r} must be a plain name without a path")
        self._require_online("start a print on")
        if self._state.state in ACTIVE_STATES:
            raise CommandRejected(
                f"cannot start a print on printer {self.printer_id}: "
                f"it is {self._state.state.value}"
            )
        await self._upload_and_start(filename, data, options)

    async def read_file(self, path: str, within_s: float, limit: int) -> bytes:
        """The bytes of a file on the printer's storage (protocols that can serve one override)."""
        raise CommandUnsupported("read_file", self.protocol)

    # --- what a protocol implements --------------------------------------------------

    @abc.abstractmethod
    async def _run_session(self) -> None:
        """Connect, call `_set_online()`, then consume data until the link ends (by raising)."""

    @abc.abstractmethod
    async def _execute(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one validated command and wait for the printer's acknowledgement."""

    @abc.abstractmethod
    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        """Transfer the file and start it."""

    def _abort_link(self) -> None:
        """Close the link's sockets at once, without a goodbye (a stuck stop's last resort).

        Must not raise; protocols holding sockets of their own override it.
        """
        return None

    async def _probe(self) -> None:
        """Ask a quiet printer for data before the watchdog declares the link stale.

        Called once a third of `stale_after_s` has passed without data; protocols whose
        printers only speak on change override it with a cheap request.
        """
        return None

    # --- helpers for subclasses ------------------------------------------------------

    def _mark_seen(self) -> None:
        """Record that data arrived; called for every message, so kept cheap."""
        self.messages_received += 1
        self._last_data = time.monotonic()
        self._last_seen = time.time()

    def _set_online(self) -> None:
        """The protocol session is established."""
        self._connected()
        self._last_data = self._online_since = time.monotonic()
        self._last_seen = time.time()
        self._set_link(Connection.ONLINE, None)

    def _connected(self) -> None:
        """The connect is over (the link is up): another link may take its turn at the gate.

        `_set_online` calls it; a protocol whose link is up before it counts as online (a
        reconnect waiting for the printer's first report) calls it itself.
        """
        turn, self._connect_turn = self._connect_turn, None
        if turn is not None:
            turn()

    def _keep_connect_turn(self) -> Release:
        """Take over the connect's turn at the gate, for a connect that outlives its session
        (a blocking connect in a thread, abandoned by a stop): call the result once it ends."""
        turn, self._connect_turn = self._connect_turn, None
        return turn if turn is not None else _no_turn

    def _publish(self, state: PrinterState) -> None:
        """Store a new snapshot and hand it to the hub."""
        # Prints ended unobserved are told once: a later copy of this snapshot (a link change)
        # must not tell them again.
        self._state = replace(state, ended=()) if state.ended else state
        try:
            self._on_state(state)
        except Exception:  # a failing listener must not take the link down
            log.exception("state listener failed for printer %s", self.printer_id)

    def _publish_if_changed(self, state: PrinterState) -> None:
        """Publish `state` unless it equals the current one apart from its timestamp."""
        old = self._state
        if old.online and replace(state, updated_at=old.updated_at) == old:
            return
        self._publish(state)

    def _require_online(self, action: str) -> None:
        if self._connection is not Connection.ONLINE or not self._state.online:
            reason = f"it is {self._connection.value}"
            if self._last_error:
                reason += f" ({self._last_error})"
        elif self._state.state is PrintState.OFFLINE:
            errors = "; ".join(e.text or e.code for e in self._state.errors)
            reason = "it is reachable but not ready" + (f" ({errors})" if errors else "")
        else:
            return
        raise CommandRejected(f"cannot {action} printer {self.printer_id}: {reason}")

    # --- the link supervisor -----------------------------------------------------------

    def _set_link(self, connection: Connection, error: str | None) -> None:
        changed = connection is not self._connection or error != self._last_error
        self._connection = connection
        self._last_error = error
        if changed and connection is not Connection.ONLINE:
            # The hub learns about link changes through the same callback as state.
            self._publish(replace(self._state, updated_at=time.time()))

    def _go_offline(self, connection: Connection, error: str | None) -> None:
        self._online_since = None
        # What the printer said about itself (errors) is not known while it is unreachable;
        # the link error says what is.
        self._state = replace(self._state, online=False, state=PrintState.OFFLINE, errors=())
        self._set_link(connection, error)

    async def _supervise(self) -> None:
        opts = self.options
        while True:
            connection, error = Connection.OFFLINE, "connection closed by the printer"
            try:
                await self._gated_session()
            except asyncio.CancelledError:
                raise
            except AuthFailed as exc:
                connection, error = Connection.AUTH_FAILED, describe_error(exc)
            except LinkStale as exc:
                connection, error = Connection.STALE, describe_error(exc)
            except Exception as exc:
                error = describe_error(exc)
                if not isinstance(exc, _NETWORK_ERRORS) and error != self._last_error:
                    # Not the network: most likely a driver bug, worth a traceback (once).
                    log.exception("printer %s: unexpected link error", self.printer_id)
            online_since = self._online_since
            was_up = online_since is not None
            flapped = (
                online_since is not None
                and time.monotonic() - online_since < opts.backoff_reset_after_s
            )
            if was_up and not flapped:
                self._backoff.reset()
            if connection is Connection.AUTH_FAILED:
                # A wrong secret will not fix itself: retry rarely (jittered, so a
                # farm-wide password change does not produce a thundering herd).
                delay = self._backoff.spread(opts.auth_retry_s)
            else:
                # A link that dropped soon after coming up (flapping) waits at least half the
                # growing cap: full jitter alone would let it reconnect at once, again and
                # again, each time through a whole TLS and MQTT handshake.
                delay = self._backoff.next_delay(at_least_half=flapped)
            # One warning when the link goes down or changes kind (offline / stale /
            # auth_failed); another network error while it stays offline (a restarting
            # printer refuses, then times out) is no news worth a line per printer.
            if (
                was_up
                or connection is not self._connection
                or (error != self._last_error and connection is not Connection.OFFLINE)
            ):
                level = logging.WARNING
            else:
                level = logging.DEBUG if error != self._last_error else logging.NOTSET
            if level:
                log.log(
                    level,
                    "printer %s (%s %s:%s): %s: %s; retrying in %.1fs",
                    self.printer_id,
                    self.protocol,
                    self.host,
                    self.port,
                    connection.value,
                    error,
                    delay,
                )
            # Keep the failure visible (stale / auth_failed / offline) while waiting;
            # "connecting" would hide why the printer is not there.
            self._go_offline(connection, error)
            await asyncio.sleep(delay)

    async def _gated_session(self) -> None:
        """One session, begun once the hub-wide connect gate gives this link its turn.

        The turn lasts until the link is up (`_connected`) or the session has ended, so the
        connect timeout only counts from the turn's start.
        """
        gate = self.config.connect_gate
        if gate is not None:
            self._connect_turn = await gate.enter()
        try:
            await self._session_with_watchdog()
        finally:
            self._connected()

    async def _session_with_watchdog(self) -> None:
        opts = self.options
        started = time.monotonic()
        check = max(0.02, min(opts.stale_after_s / 4, opts.connect_timeout_s / 4, 5.0))
        # A backstop: protocols bound their own connect and first request, so this only
        # fires for a session stuck somewhere they did not foresee.
        connect_deadline = opts.connect_timeout_s + opts.command_timeout_s
        session = asyncio.create_task(self._run_session())
        probe: asyncio.Task[None] | None = None
        try:
            while True:
                done, _ = await asyncio.wait({session}, timeout=check)
                if done:
                    session.result()  # re-raise the session's error
                    return
                now = time.monotonic()
                if self._connection is Connection.ONLINE:
                    quiet = now - self._last_data
                    if quiet > opts.stale_after_s:
                        raise LinkStale(f"no data from the printer for {opts.stale_after_s:g}s")
                    if quiet > opts.stale_after_s / 3 and (probe is None or probe.done()):
                        probe = asyncio.create_task(self._probe_quietly())
                elif self._awaiting_report:
                    if now - started > opts.stale_after_s:
                        raise LinkStale("still no data from the printer after a reconnect")
                elif now - started > connect_deadline:
                    raise TimeoutError(f"not connected within {connect_deadline:g}s")
        finally:
            tasks = {t for t in (session, probe) if t is not None and not t.done()}
            # Bounded, and cancelled again if need be: a session that swallowed its
            # cancellation must not keep the link (and a stop waiting for it) forever.
            within = opts.stop_within_s * 3 / 4
            try:
                left = await end_tasks(tasks, opts.stop_within_s / 2)
                if left:
                    # Mostly slow rather than stuck (a whole fleet stopping at once shares
                    # the CPU): without its connection a goodbye in progress ends at once.
                    self._abort_link()
                    left = await end_tasks(left, opts.stop_within_s / 4)
            except asyncio.CancelledError:
                self._abandon({t for t in tasks if not t.done()}, within)
                raise
            self._abandon(left, within)
            if not session.cancelled():
                with contextlib.suppress(BaseException):
                    session.exception()  # mark retrieved; the error was already handled

    def _abandon(self, tasks: set[asyncio.Task[Any]], within_s: float) -> None:
        """Give up on link tasks that would not end: close their sockets, say so once."""
        if not tasks:
            return
        for task in tasks:
            task.add_done_callback(_retrieve)
        self._abort_link()
        log.warning(
            "printer %s (%s %s:%s): the link task did not end within %.1fs of being cancelled; "
            "its connection was closed and the task left behind",
            self.printer_id,
            self.protocol,
            self.host,
            self.port,
            within_s,
        )

    async def _probe_quietly(self) -> None:
        try:
            await self._probe()
        except Exception as exc:  # the watchdog judges the outcome, not the probe
            log.debug("printer %s: probe failed: %s", self.printer_id, describe_error(exc))
