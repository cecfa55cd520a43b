"""Moonraker driver: JSON-RPC over WebSocket for state and commands, HTTP for uploads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from integrations.printers import commands as cmd
from integrations.printers.base import (
    AuthFailed,
    CommandRejected,
    CommandTimeout,
    DriverConfig,
    PrinterDriver,
    PrintOptions,
    StateCallback,
)
from integrations.printers.http import command_request
from integrations.printers.moonraker.rpc import JsonRpcClient, RpcError
from integrations.printers.moonraker.status import SUBSCRIBED_OBJECTS, KlipperStatus

log = logging.getLogger(__name__)

CLIENT_NAME = "3DPrintForge"
CLIENT_VERSION = "0.1.0"
KLIPPY_POLL_S = 2.0
HISTORY_LIMIT = 50  # history jobs read after a (re)connect

_RPC_METHODS = {
    cmd.PAUSE: "printer.print.pause",
    cmd.RESUME: "printer.print.resume",
    cmd.STOP: "printer.print.cancel",
}


class MoonrakerDriver(PrinterDriver):
    """Klipper printers through Moonraker's WebSocket API."""

    protocol = "moonraker"
    default_port = 7125
    capabilities = frozenset(
        {cmd.PAUSE, cmd.RESUME, cmd.STOP, cmd.GCODE, cmd.HOME, cmd.SET_TEMPERATURE, cmd.SPEED}
    )

    def __init__(self, config: DriverConfig, on_state: StateCallback) -> None:
        super().__init__(config, on_state)
        self._status = KlipperStatus()
        self._rpc: JsonRpcClient | None = None
        self._http: aiohttp.ClientSession | None = None  # once the session is up
        self._link_http: aiohttp.ClientSession | None = None  # from the connect on, for an abort
        self._closing: set[asyncio.Future[None]] = set()
        self._klippy_changed = asyncio.Event()
        self._history_since: float | None = None  # start_time of the newest history job seen

    @property
    def _base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _headers(self) -> dict[str, str]:
        key = self.config.secrets.get("api_key")
        return {"X-Api-Key": str(key)} if key else {}

    async def _call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        rpc = self._rpc
        if rpc is None:
            raise ConnectionError("not connected")
        return await rpc.call(method, params, self.options.command_timeout_s)

    # --- the link --------------------------------------------------------------------

    async def _run_session(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, connect=self.options.connect_timeout_s)
        async with aiohttp.ClientSession(headers=self._headers(), timeout=timeout) as http:
            self._link_http = http
            try:
                await self._converse(http)
            finally:
                self._link_http = None

    async def _converse(self, http: aiohttp.ClientSession) -> None:
        """Open the WebSocket, identify, and follow the printer until the link ends."""
        try:
            ws = await http.ws_connect(
                f"{self._base_url}/websocket", heartbeat=None, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise AuthFailed(
                    f"Moonraker at {self.host}:{self.port} refused the API key (HTTP {exc.status})"
                ) from None
            raise ConnectionError(f"WebSocket handshake failed: HTTP {exc.status}") from None
        async with ws:
            rpc = JsonRpcClient(ws, self._on_notification, self._mark_seen)
            reader = asyncio.create_task(rpc.run())
            watcher: asyncio.Task[None] | None = None
            self._rpc, self._http = rpc, http
            try:
                try:
                    info = await self._call("server.info")
                except RpcError as exc:
                    if exc.code == -32602 and "unauthorized" in exc.message.lower():
                        # Moonraker opens the socket whatever the key, then refuses every call.
                        raise AuthFailed(
                            f"Moonraker at {self.host}:{self.port} refused the API key "
                            f"({exc.message})"
                        ) from None
                    raise
                await self._call(
                    "server.connection.identify",
                    {"client_name": CLIENT_NAME, "version": CLIENT_VERSION,
                     "type": "agent", "url": ""},
                )  # fmt: skip
                await self._sync_history()
                self._set_online()
                self._set_klippy(str(info.get("klippy_state") or "disconnected"), None)
                watcher = asyncio.create_task(self._keep_klippy_subscribed())
                done, _ = await asyncio.wait({reader, watcher}, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    finished.result()  # the reader ends with ConnectionError
                raise ConnectionError("the Klipper watcher stopped")
            finally:
                self._rpc, self._http = None, None
                for task in (watcher, reader):
                    if task is not None:
                        task.cancel()
                await asyncio.wait({t for t in (watcher, reader) if t is not None})

    def _abort_link(self) -> None:
        http, self._link_http = self._link_http, None
        connector = http.connector if http is not None else None
        if connector is None or connector.closed:
            return
        # Closes every transport of the session now; only the bookkeeping is left to await.
        closing = asyncio.ensure_future(connector.close(abort_ssl=True))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _sync_history(self) -> None:
        """Learn from Moonraker's job history what ended while the hub was not looking.

        Jobs since the newest one already seen (all recent ones after a hub restart: the
        print tracker knows which it has recorded); the newest in progress is the current print.
        """
        params: dict[str, Any] = {"limit": HISTORY_LIMIT, "order": "desc"}
        if self._history_since is not None:
            params["since"] = self._history_since - 0.001
        try:
            result = await self._call("server.history.list", params)
        except RpcError as exc:
            # No history component: prints are told apart by file and start time only.
            log.info("printer %s: no job history (%s)", self.printer_id, exc.message)
            return
        self._status.history_available = True
        jobs = result.get("jobs") if isinstance(result, dict) else None
        for job in sorted(
            (j for j in jobs or [] if isinstance(j, dict)),
            key=lambda j: float(j.get("start_time") or 0.0),
        ):
            self._note_history(job)

    def _note_history(self, job: dict[str, Any]) -> None:
        self._status.note_history_job(job)
        start = job.get("start_time")
        if isinstance(start, int | float):
            self._history_since = max(self._history_since or start, start)

    def _set_klippy(self, state: str, message: str | None) -> None:
        self._status.klippy_state = state
        self._status.klippy_message = message
        self._klippy_changed.set()
        if state != "ready":  # a ready printer is published once its objects are subscribed
            self._publish_if_changed(self._status.to_state(self.printer_id))

    async def _keep_klippy_subscribed(self) -> None:
        """Subscribe whenever Klipper becomes ready; poll server.info while it is not."""
        subscribed = False
        while True:
            self._klippy_changed.clear()
            ready = self._status.klippy_state == "ready"
            if ready and not subscribed:
                try:
                    await self._subscribe()
                except (RpcError, TimeoutError) as exc:
                    # Klipper went away again between "ready" and our request: re-check.
                    log.debug("printer %s: subscribe failed: %s", self.printer_id, exc)
                    self._status.klippy_state = "startup"
                    ready = False
            subscribed = ready
            try:
                # While Klipper is down, Moonraker may not announce its recovery: poll.
                async with asyncio.timeout(None if ready else KLIPPY_POLL_S):
                    await self._klippy_changed.wait()
            except TimeoutError:
                await self._refresh_klippy()

    async def _refresh_klippy(self) -> None:
        try:
            info = await self._call("server.info")
        except (RpcError, TimeoutError) as exc:
            log.debug("printer %s: server.info failed: %s", self.printer_id, exc)
            return
        state = str(info.get("klippy_state") or "disconnected")
        self._set_klippy(state, await self._klippy_message(state))

    async def _klippy_message(self, state: str) -> str | None:
        if state not in ("error", "shutdown"):
            return None
        # printer.info carries Klipper's own explanation (e.g. "MCU 'mcu' shutdown: ...").
        with contextlib.suppress(RpcError, TimeoutError):
            info = await self._call("printer.info")
            if isinstance(info, dict) and info.get("state_message"):
                return str(info["state_message"]).strip()
        return None

    async def _subscribe(self) -> None:
        result = await self._call(
            "printer.objects.subscribe", {"objects": dict.fromkeys(SUBSCRIBED_OBJECTS)}
        )
        status = result.get("status") if isinstance(result, dict) else None
        self._status.replace(status if isinstance(status, dict) else {})
        self._publish_if_changed(self._status.to_state(self.printer_id))

    async def _probe(self) -> None:
        """An idle Klipper can be silent for minutes: a cheap call proves the link."""
        await self._call("server.info")

    def _on_notification(self, method: str, params: list[Any]) -> None:
        if method == "notify_status_update":
            if params and isinstance(params[0], dict) and self._status.update(params[0]):
                self._publish_if_changed(self._status.to_state(self.printer_id))
        elif method == "notify_history_changed":
            change = params[0] if params and isinstance(params[0], dict) else {}
            job = change.get("job")
            if isinstance(job, dict) and change.get("action") in ("added", "finished"):
                self._note_history(job)
                self._publish_if_changed(self._status.to_state(self.printer_id))
        elif method == "notify_klippy_ready":
            self._set_klippy("ready", None)
        elif method == "notify_klippy_shutdown":
            self._set_klippy("shutdown", None)
        elif method == "notify_klippy_disconnected":
            self._set_klippy("disconnected", None)

    # --- commands --------------------------------------------------------------------

    def _gcode_for(self, name: str, params: dict[str, Any]) -> str:
        if name == cmd.HOME:
            return "G28"
        if name == cmd.SET_TEMPERATURE:
            return f"{'M104' if params['heater'] == 'nozzle' else 'M140'} S{params['target']:g}"
        if name == cmd.SPEED:
            return f"M220 S{cmd.SPEED_PERCENT[params['level']]}"
        return str(params["line"])

    async def _execute(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        method = _RPC_METHODS.get(name)
        args = None if method else {"script": self._gcode_for(name, params)}
        try:
            await self._call(method or "printer.gcode.script", args)
        except TimeoutError:
            raise CommandTimeout(
                f"printer {self.printer_id} did not acknowledge '{name}' within "
                f"{self.options.command_timeout_s:g}s"
            ) from None
        except RpcError as exc:
            raise CommandRejected(
                f"printer {self.printer_id} refused '{name}': {exc.message}"
            ) from None
        except ConnectionError as exc:
            raise CommandRejected(f"printer {self.printer_id}: {exc}") from None
        return {}

    async def _upload_and_start(self, filename: str, data: bytes, options: PrintOptions) -> None:
        http = self._http
        if http is None:
            raise CommandRejected(f"printer {self.printer_id} is not connected")
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        form.add_field("root", "gcodes")
        await command_request(
            http, "POST", f"{self._base_url}/server/files/upload", data=form,
            what="upload", printer_id=self.printer_id, limit_s=self.options.upload_timeout_s,
        )  # fmt: skip
        # Started as its own call (not `print=true` on the upload) so that a printer refusing
        # to start answers with Klipper's reason instead of a silent `print_started: false`.
        try:
            await self._call("printer.print.start", {"filename": filename})
        except TimeoutError:
            raise CommandTimeout(
                f"printer {self.printer_id} did not acknowledge the start of {filename} within "
                f"{self.options.command_timeout_s:g}s"
            ) from None
        except RpcError as exc:
            raise CommandRejected(
                f"printer {self.printer_id} stored {filename} but refused to start it: "
                f"{exc.message}"
            ) from None
        except ConnectionError as exc:
            raise CommandRejected(f"printer {self.printer_id}: {exc}") from None
