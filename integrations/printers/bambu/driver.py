"""Bambu Lab LAN driver: MQTT over TLS for state and commands, FTPS for uploads."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import itertools
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

import aiomqtt
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.reasoncodes import ReasonCode

from hub.model import Connection
from integrations.printers import commands as cmd
from integrations.printers.bambu import ftps
from integrations.printers.bambu.mqtt import LinkClient
from integrations.printers.bambu.report import BambuReport
from integrations.printers.base import (
    AuthFailed,
    CommandRejected,
    CommandTimeout,
    DriverConfig,
    PrinterDriver,
    PrintOptions,
    StateCallback,
    raise_if_cancelled,
)
from integrations.printers.connect_gate import Release

log = logging.getLogger(__name__)

USERNAME = "bblp"
DEFAULT_FTPS_PORT = 990
KEEPALIVE_S = 5
# CONNACK codes meaning "wrong credentials": 4/5 in MQTT 3.1.1, 134/135 once paho maps them.
_AUTH_RCS = frozenset({4, 5, 134, 135})
# Serial-number prefixes of models that send the full state in every report.
_FULL_REPORT_SERIALS = ("00M", "00W", "03W", "094")


def reports_full_state(model: str, serial: str) -> bool:
    """X1 and H2 send complete reports; P1 and A1 send deltas (and must not be flooded)."""
    name = model.upper().replace(" ", "").replace("-", "")
    if name:
        return name.startswith(("X1", "H2"))
    return serial.startswith(_FULL_REPORT_SERIALS)


class _FixedServerNameContext(ssl.SSLContext):
    """A client SSLContext that always uses one server name (the printer serial) for SNI.

    The printer's certificate names its serial, while we connect to its IP address.
    """

    server_name: str = ""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        """Wrap `sock`, presenting and checking the serial instead of the address."""
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


_UNVERIFIED: list[ssl.SSLContext] = []


def unverified_tls_context() -> ssl.SSLContext:
    """The hub's one client context for printers whose certificate is not verified.

    LAN printers present a self-signed certificate: the default is to encrypt without
    verifying, as the vendor's own clients do. Nothing in it is per printer, so every link
    shares it (building one costs a millisecond and some memory; thousands of printers).
    """
    if not _UNVERIFIED:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _UNVERIFIED.append(context)
    return _UNVERIFIED[0]


def _rc_value(rc: int | ReasonCode | None) -> int | None:
    if isinstance(rc, ReasonCode):
        return rc.value
    return rc


class _NoTopicFilters(MQTTMatcher):
    """Paho's per-topic callback registry, answering at once while it holds no filter.

    Paho looks every incoming message up in it. The stock lookup builds a recursive closure,
    a reference cycle, per message: with hundreds of printers reporting that is thousands of
    cycles a second for the cyclic collector, whose pauses then delay every live message.
    """

    def iter_match(self, topic: str) -> Iterator[Any]:
        """The callbacks registered for filters matching `topic` (none, mostly)."""
        if not self._root._children:
            return iter(())
        return super().iter_match(topic)


def without_topic_filters(client: aiomqtt.Client) -> None:
    """Give an unused client the cycle-free callback registry (no-op once filters exist)."""
    paho = getattr(client, "_client", None)
    current = getattr(paho, "_on_message_filtered", None)
    if type(current) is MQTTMatcher and not current._root._children:
        paho._on_message_filtered = _NoTopicFilters()  # type: ignore[union-attr]


def handle_as_received(client: aiomqtt.Client, handle: Callable[[bytes], None]) -> None:
    """From now on give each message's payload to `handle` as the socket delivers it, instead
    of queueing it in aiomqtt's unbounded per-client queue (what is queued already is handled
    first, in order).

    The queue grows without end once the fleet reports faster than the loop runs the
    consumers; handled on arrival, a report only updates the printer's accumulated state, and
    the printer manager's hand-off keeps the newest state per printer for telemetry. What the
    loop cannot read stays in the socket's buffer: the printer's broker sheds it, bounded.
    """
    queue = client._queue
    while not queue.empty():
        handle(queue.get_nowait().payload)

    def on_message(_client: Any, _userdata: Any, message: Any) -> None:
        handle(message.payload)

    client._client.on_message = on_message


def _close_entered(client: LinkClient, entering: asyncio.Future[Any], turn: Release) -> None:
    """Close a connection that completed after its session was cancelled; end its turn."""
    if not entering.cancelled():
        entering.exception()  # seen: the session is gone, nobody else will look
    client.abort()
    turn()


class BambuDriver(PrinterDriver):
    """Bambu Lab X1 / P1 / A1 / H2 over the LAN-mode MQTT broker."""

    protocol = "bambu"
    default_port = 8883
    capabilities = frozenset(
        {cmd.PAUSE, cmd.RESUME, cmd.STOP, cmd.LIGHT, cmd.SPEED, cmd.GCODE, cmd.AMS_CHANGE,
         cmd.HOME, cmd.SET_TEMPERATURE}
    )  # fmt: skip

    def __init__(self, config: DriverConfig, on_state: StateCallback) -> None:
        super().__init__(config, on_state)
        self.full_reporter = reports_full_state(config.model, config.serial)
        self.firmware: str | None = None
        self._report = BambuReport()
        self._client: aiomqtt.Client | None = None  # once subscribed: commands may publish
        self._link: LinkClient | None = None  # from the first connect attempt, for an abort
        # sequence_id -> (command, reply future); other clients of the printer (slicer,
        # phone app) get replies on the same topic, so the command name must match too.
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._sequence = itertools.count(1)
        self._last_pushall: float | None = None  # monotonic; survives reconnects on purpose
        self._needs_publish = False
        self._tls: ssl.SSLContext | None = None

    @property
    def _report_topic(self) -> str:
        return f"device/{self.config.serial}/report"

    @property
    def _request_topic(self) -> str:
        return f"device/{self.config.serial}/request"

    @property
    def _access_code(self) -> str:
        return str(self.config.secrets.get("access_code") or "")

    def _tls_context(self) -> ssl.SSLContext:
        """The client context of this printer's links, built once: reconnects reuse it.

        Unverified (the default) it is one context for the whole hub: a fleet's start does not
        build thousands. Verified, it names this printer's serial, so it is the printer's own.
        """
        if self._tls is None:
            if self.options.verify_tls:
                context = _FixedServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
                context.server_name = self.config.serial
                if self.options.ca_file:
                    context.load_verify_locations(cafile=self.options.ca_file)
                else:
                    context.load_default_certs()
                self._tls = context
            else:
                self._tls = unverified_tls_context()
        return self._tls

    # --- the link --------------------------------------------------------------------

    async def _run_session(self) -> None:
        if not self._access_code:
            raise AuthFailed(f"no access code configured for printer {self.printer_id}")
        if not self.config.serial:
            raise AuthFailed(f"no serial number configured for printer {self.printer_id}")
        client = LinkClient(
            self.host,
            self.port,
            username=USERNAME,
            password=self._access_code,
            identifier=f"printforge-{self.printer_id}-{secrets.token_hex(3)}",
            protocol=aiomqtt.ProtocolVersion.V311,
            keepalive=KEEPALIVE_S,
            timeout=self.options.connect_timeout_s,
            tls_context=self._tls_context(),
            tls_insecure=not self.options.verify_tls,
            clean_session=True,
        )
        without_topic_filters(client)
        self._link = client
        try:
            await self._converse(client)
        finally:
            # Normally closed already by the goodbye; not when that was cut short by a stop.
            client.abort()
            self._link = None

    def _abort_link(self) -> None:
        if self._link is not None:
            self._link.abort()

    async def _converse(self, client: LinkClient) -> None:
        """Connect, subscribe and consume reports until the link ends."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await self._enter(client)
            except aiomqtt.MqttCodeError as exc:
                if _rc_value(exc.rc) in _AUTH_RCS:
                    raise AuthFailed(
                        f"printer {self.config.serial} refused the access code "
                        f"(MQTT CONNACK {_rc_value(exc.rc)}); check the LAN access code"
                    ) from None
                raise ConnectionError(f"MQTT connect failed: {exc}") from None
            except aiomqtt.MqttError as exc:
                raise ConnectionError(f"MQTT connect failed: {exc}") from None
            stack.push_async_exit(client)
            raise_if_cancelled()
            try:
                await client.subscribe(self._report_topic, qos=0)
            except aiomqtt.MqttError as exc:  # the link dropped between CONNACK and SUBACK
                raise ConnectionError(f"MQTT subscribe failed: {exc}") from None
            # aiomqtt acknowledges through asyncio.wait_for, which on Python 3.11 loses a
            # cancellation that arrives with the acknowledgement: look again after each one.
            raise_if_cancelled()
            self._connected()  # the link is up: the next printer may connect
            self._client = client
            tasks: set[asyncio.Task[None]] = set()
            try:
                if self._connection is Connection.STALE:
                    # The broker answered, but the printer behind it had gone quiet: only a
                    # report shows it is back (a hung firmware leaves the broker running).
                    self._awaiting_report = True
                else:
                    self._set_online()
                self._needs_publish = True
                await self._after_connect(tasks)
                raise_if_cancelled()
                handle_as_received(client, self._handle)
                async for message in client.messages:  # ends (raising) when the link drops
                    self._handle(message.payload)
            except aiomqtt.MqttError as exc:
                # aiomqtt's "Disconnected during message iteration" carries the reason as cause.
                raise ConnectionError(f"MQTT link lost: {exc.__cause__ or exc}") from None
            finally:
                self._client = None
                self._awaiting_report = False
                for task in tasks:
                    task.cancel()
                self._fail_pending("the link to the printer was lost")

    async def _enter(self, client: LinkClient) -> None:
        """Connect; if cancelled meanwhile, close the connection as soon as it is made.

        aiomqtt connects in a worker thread that cancellation does not stop: the socket
        would open anyway and stay, unowned, holding one of the printer's few client slots.
        The session does not wait for that thread (at a fleet's stop, connects queue for the
        few threads): the connection is closed whenever the connect ends. Until then the
        connect keeps its turn at the hub's connect gate: it still occupies a thread.
        """
        entering = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.shield(entering)
        except asyncio.CancelledError:
            turn = self._keep_connect_turn()
            entering.add_done_callback(lambda done: _close_entered(client, done, turn))
            raise

    async def _after_connect(self, tasks: set[asyncio.Task[None]]) -> None:
        await self._send({"info": {"command": "get_version"}})
        if self._report.raw and not self._awaiting_report:
            # Show what we knew right away; deltas update it.
            self._publish_report()
        wait = self._pushall_wait()
        if wait <= 0:
            await self._pushall()
        else:
            # P1/A1 firmware struggles with frequent full pushes: defer, never drop.
            log.debug("printer %s: pushall deferred %.0fs", self.printer_id, wait)
            tasks.add(asyncio.create_task(self._pushall_later(wait)))

    def _pushall_wait(self) -> float:
        if self.full_reporter or self._last_pushall is None or not self._report.has_full:
            return 0.0
        return self._last_pushall + self.options.pushall_min_interval_s - time.monotonic()

    async def _probe(self) -> None:
        """A quiet printer is asked for a full report, if the rate limit allows one now."""
        if self._pushall_wait() <= 0:
            await self._pushall()

    async def _pushall_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._pushall()

    async def _pushall(self) -> None:
        self._last_pushall = time.monotonic()
        await self._send({"pushing": {"command": "pushall", "version": 1, "push_target": 1}})

    async def _send(self, message: dict[str, dict[str, Any]]) -> str:
        client = self._client
        if client is None:
            raise CommandRejected(f"printer {self.printer_id} is not connected")
        sequence = str(next(self._sequence))
        for body in message.values():
            body["sequence_id"] = sequence
        await client.publish(self._request_topic, json.dumps(message), qos=1)
        return sequence

    def _handle(self, payload: bytes) -> None:
        self._mark_seen()
        try:
            document = json.loads(payload)
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        for kind, body in document.items():
            if not isinstance(body, dict):
                continue
            command = body.get("command")
            if kind == "print" and command == "push_status":
                if self._awaiting_report:
                    self._awaiting_report = False
                    self._set_online()
                if self._report.apply(body) or self._needs_publish:
                    self._publish_report()
                continue
            if kind == "info" and command == "get_version":
                self._note_version(body)
            sequence = str(body.get("sequence_id"))
            entry = self._pending.get(sequence)
            if entry is not None and entry[0] == command:
                del self._pending[sequence]
                if not entry[1].done():
                    entry[1].set_result(body)

    def _publish_report(self) -> None:
        self._needs_publish = False
        self._publish(self._report.to_state(self.printer_id))

    def _note_version(self, body: dict[str, Any]) -> None:
        for module in body.get("module") or []:
            if isinstance(module, dict) and module.get("name") == "ota":
                self.firmware = str(module.get("sw_ver") or "") or None

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for _, future in pending.values():
            if not future.done():
                future.set_exception(CommandRejected(f"printer {self.printer_id}: {reason}"))

    # --- commands --------------------------------------------------------------------

    async def _request(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Publish one request and wait for the reply with the same sequence_id."""
        name = str(body.get("command"))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        timeout = self.options.command_timeout_s
        sequence = ""
        try:
            async with asyncio.timeout(timeout):
                sequence = str(next(self._sequence))
                self._pending[sequence] = (name, future)
                client = self._client
                if client is None:
                    raise CommandRejected(f"printer {self.printer_id} is not connected")
                message = {kind: {**body, "sequence_id": sequence}}
                await client.publish(self._request_topic, json.dumps(message), qos=1)
                reply = await future
        except TimeoutError:
            raise CommandTimeout(
                f"printer {self.printer_id} did not acknowledge '{name}' within {timeout:g}s"
            ) from None
        except aiomqtt.MqttError as exc:
            raise CommandRejected(
                f"printer {self.printer_id}: sending '{name}' failed: {exc}"
            ) from None
        finally:
            self._pending.pop(sequence, None)
        result = str(reply.get("result", "success")).lower()
        if result not in ("success", "ok"):
            reason = reply.get("reason") or reply.get("err_code") or result
            raise CommandRejected(f"printer {self.printer_id} refused '{name}': {reason}")
        return reply

    def _command_body(self, name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if name in (cmd.PAUSE, cmd.RESUME, cmd.STOP):
            return "print", {"command": name, "param": ""}
        if name == cmd.LIGHT:
            return "system", {
                "command": "ledctrl", "led_node": "chamber_light",
                "led_mode": "on" if params["on"] else "off", "led_on_time": 500,
                "led_off_time": 500, "loop_times": 1, "interval_time": 1000,
            }  # fmt: skip
        if name == cmd.SPEED:
            return "print", {"command": "print_speed", "param": str(params["level"])}
        if name == cmd.AMS_CHANGE:
            temps = self.state.temps
            target = temps.nozzle_target or 220.0
            return "print", {
                "command": "ams_change_filament", "target": params["tray"],
                "curr_temp": round(temps.nozzle or target), "tar_temp": round(target),
            }  # fmt: skip
        if name == cmd.HOME:
            line = "G28"
        elif name == cmd.SET_TEMPERATURE:
            line = f"{'M104' if params['heater'] == 'nozzle' else 'M140'} S{params['target']:g}"
        else:
            line = params["line"]
        return "print", {"command": "gcode_line", "param": f"{line}\n"}

    async def _execute(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        kind, body = self._command_body(name, params)
        await self._request(kind, body)
        return {}

    async def read_file(self, path: str, within_s: float, limit: int) -> bytes:
        """A file of the SD card over FTPS; raises CommandRejected or CommandTimeout on failure."""
        loop = asyncio.get_running_loop()
        port = self.options.ftps_port or DEFAULT_FTPS_PORT
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(
                    ftps.TRANSFERS, ftps.download, self.host, port, self._access_code, path,
                    self._tls_context(), within_s, limit,
                ),
                within_s,
            )  # fmt: skip
        except TimeoutError:
            raise CommandTimeout(f"reading {path} took longer than {within_s:g}s") from None
        except (OSError, EOFError, ValueError, ftplib.Error) as exc:
            hint = "access code refused" if ftps.is_auth_error(exc) else str(exc)
            raise CommandRejected(f"reading {path} failed: {hint}") from None

    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        loop = asyncio.get_running_loop()
        port = self.options.ftps_port or DEFAULT_FTPS_PORT
        timeout = self.options.upload_timeout_s
        try:
            await asyncio.wait_for(
                loop.run_in_executor(
                    ftps.TRANSFERS, ftps.upload, self.host, port, self._access_code, filename, data,
                    self._tls_context(), self.options.connect_timeout_s,
                ),
                timeout,
            )  # fmt: skip
        except TimeoutError:
            raise CommandTimeout(
                f"upload of {filename} to printer {self.printer_id} took longer than {timeout:g}s"
            ) from None
        except (OSError, EOFError, ftplib.Error) as exc:
            hint = "access code refused" if ftps.is_auth_error(exc) else str(exc)
            raise CommandRejected(
                f"upload of {filename} to printer {self.printer_id} failed: {hint}"
            ) from None
        mapping = list(options.ams_mapping) if options.ams_mapping else []
        use_ams = options.use_ams if options.use_ams is not None else bool(mapping)
        if use_ams and not mapping:
            mapping = [0]  # first filament of the file from the first tray
        await self._request(
            "print",
            {
                "command": "project_file", "param": f"Metadata/plate_{options.plate}.gcode",
                "url": f"ftp:///{filename}", "subtask_name": PurePosixPath(filename).stem,
                "bed_type": options.bed_type, "timelapse": options.timelapse,
                "bed_leveling": options.bed_leveling, "flow_cali": True, "vibration_cali": True,
                "layer_inspect": True, "use_ams": use_ams, "ams_mapping": mapping,
                "profile_id": "0", "project_id": "0", "subtask_id": "0", "task_id": "0",
            },
        )  # fmt: skip
