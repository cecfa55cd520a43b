"""Bambu Lab LAN front end: MQTT over TLS (8883) for reports and commands, FTPS (990) for files."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, ClassVar

from integrations.simulator.bambu_report import (
    PROFILES,
    BambuProfile,
    partial,
    print_object,
    version_modules,
)
from integrations.simulator.frontend import FrontEnd, PrinterContext
from integrations.simulator.ftps import FtpsServer
from integrations.simulator.model import CANCELLED_BY_USER, SimError
from integrations.simulator.mqtt import MqttServer, Session

log = logging.getLogger(__name__)

FTPS_PORT = 990
# Reports carrying the user-cancel print_error before it resets to 0, as the firmware does.
CANCEL_CODE_REPORTS = 2
_URL_PREFIXES = ("ftp://", "file://")
_STORAGE_PREFIXES = ("mnt/sdcard/", "sdcard/", "cache/", "model/")


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def file_from_url(url: str) -> str:
    """The stored file name in a project_file url (`ftp:///job.3mf`, `file:///sdcard/job.3mf`)."""
    for prefix in _URL_PREFIXES:
        if url.startswith(prefix):
            url = url[len(prefix) :]
            break
    url = url.lstrip("/")
    for prefix in _STORAGE_PREFIXES:
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url


class BambuFrontEnd(FrontEnd):
    """One simulated Bambu printer's MQTT broker and FTPS server."""

    protocol: ClassVar[str] = "bambu"
    default_port: ClassVar[int] = 8883
    secret_key: ClassVar[str] = "access_code"

    def __init__(self, ctx: PrinterContext) -> None:
        super().__init__(ctx)
        self.profile: BambuProfile = PROFILES[ctx.model_name]
        self.report_topic = f"device/{ctx.serial}/report"
        self.request_topic = f"device/{ctx.serial}/request"
        self.mqtt: MqttServer | None = None
        self.ftps: FtpsServer | None = None
        self._sequence = 0
        self._last: dict[str, Any] | None = None
        self._push_now = False
        self._cancel_reports = 0
        self._marker: tuple[object, ...] = ()
        self.reports_sent = 0

    async def start(self) -> None:
        """Open the MQTT and FTPS listeners."""
        ctx = self.ctx
        context = ctx.certs.server_context(ctx.serial, ctx.host)
        self.mqtt = MqttServer(
            ctx.host, ctx.port, context, self._authenticate, self._on_publish, ctx.faults
        )
        await self.mqtt.start()
        ctx.port = self.mqtt.port
        ftp_port = FTPS_PORT if ctx.extra_port is None else ctx.extra_port
        self.ftps = FtpsServer(
            ctx.host, ftp_port, context, "bblp", ctx.secret, ctx.printer, ctx.faults
        )
        try:
            await self.ftps.start()
        except BaseException:
            await self.mqtt.stop()
            raise
        ctx.extra_port = self.ftps.port
        self._last = None
        self.running = True

    async def stop(self) -> None:
        """Close both listeners and every connection."""
        self.running = False
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.ftps is not None:
            await self.ftps.stop()

    def drop_connections(self) -> None:
        """Abort every MQTT and FTPS client connection."""
        if self.mqtt is not None:
            self.mqtt.drop_all()
        if self.ftps is not None:
            self.ftps.drop_all()

    def describe(self) -> dict[str, Any]:
        """The FTPS port beside the MQTT port."""
        return {"ftps_port": self.ctx.extra_port}

    def _authenticate(self, username: str | None, password: bytes | None) -> bool:
        if username != "bblp" or password is None:
            return False
        return hmac.compare_digest(password, self.ctx.secret.encode())

    # -- reports -----------------------------------------------------------------------------
    def on_tick(self, tick: int) -> None:
        """Push a report once a second (spread across ticks by fleet index) or when asked to."""
        if not self.running or self.ctx.faults.silent or self.ctx.faults.frozen:
            return
        due = (tick + self.ctx.index) % self.ctx.ticks_per_second == 0
        printer = self.ctx.printer
        # Printers push at once when something a user would notice changes (state, errors).
        marker = (printer.state, tuple(printer.hms), printer.print_error, printer.active_slot)
        if marker != self._marker:
            self._marker = marker
            self._push_now = True
        if due or self._push_now:
            self._push_now = False
            self.send_report(full=False)

    def send_report(self, full: bool) -> None:
        """Publish a push_status: full for X1 or on request, else the diff since the last one."""
        printer = self.ctx.printer
        if printer.print_error == CANCELLED_BY_USER:
            self._cancel_reports += 1
            if self._cancel_reports > CANCEL_CODE_REPORTS:
                printer.print_error = 0
        else:
            self._cancel_reports = 0
        if self.mqtt is None or not self.mqtt.subscribers:
            self._last = None  # nobody heard it: the next listener starts from a full baseline
            return
        self._sequence += 1
        wifi = 44 + (self._sequence // 5 + self.ctx.index) % 3
        obj = print_object(printer, self.profile, self.ctx.host, self._sequence, wifi, 1)
        if full or self.profile.full_reports or self._last is None:
            body = obj
        else:
            body = partial(self._last, obj, self._sequence)
        self._last = obj
        self.reports_sent += self.mqtt.publish(self.report_topic, _json({"print": body}))

    # -- commands ----------------------------------------------------------------------------
    def _reply(self, kind: str, request: dict[str, Any], ok: bool, reason: str = "") -> None:
        if self.mqtt is None:
            return
        body = dict(request)
        body["result"] = "success" if ok else "fail"
        body["reason"] = reason or ("success" if ok else "fail")
        self.mqtt.publish(self.report_topic, _json({kind: body}))

    def _on_publish(self, session: Session, topic: str, payload: bytes) -> None:
        if topic != self.request_topic or self.ctx.faults.frozen:
            return  # the firmware ignores other serials' topics (and hears nothing while hung)
        try:
            message = json.loads(payload)
        except ValueError:
            log.debug("%s: request is not JSON: %r", self.ctx.name, payload[:80])
            return
        if not isinstance(message, dict):
            return
        for kind, request in message.items():
            if isinstance(request, dict):
                self._command(kind, request)

    def _command(self, kind: str, request: dict[str, Any]) -> None:
        command = request.get("command")
        if kind == "pushing" and command == "pushall":
            self.send_report(full=True)
            return
        if kind == "pushing":
            return  # "start"/"stop" of pushing: reports continue regardless
        if kind == "info" and command == "get_version":
            reply = {
                "command": "get_version",
                "sequence_id": request.get("sequence_id", "0"),
                "module": version_modules(self.profile, self.ctx.serial, len(self.ctx.printer.ams)),
            }
            self._reply("info", reply, True, "")
            return
        try:
            self._execute(kind, str(command), request)
        except SimError as exc:
            self._reply(kind, request, False, str(exc))
        except (TypeError, ValueError, KeyError) as exc:
            self._reply(kind, request, False, f"bad parameter: {exc}")
        else:
            self._reply(kind, request, True)
        self._push_now = True

    def _execute(self, kind: str, command: str, request: dict[str, Any]) -> None:
        printer = self.ctx.printer
        if kind == "system" and command == "ledctrl":
            printer.set_light(str(request["led_node"]), str(request["led_mode"]))
            return
        if kind != "print":
            raise SimError(f"unsupported command {kind}.{command}")
        param = request.get("param", "")
        if command == "pause":
            printer.pause()
        elif command == "resume":
            printer.resume()
        elif command == "stop":
            printer.cancel()
        elif command == "gcode_line":
            printer.gcode(str(param))
        elif command == "print_speed":
            printer.set_speed_level(int(param))
        elif command == "ams_change_filament":
            printer.change_tray(int(request["target"]))
        elif command == "ams_ctrl":
            # AMS control after a run-out: "resume" continues, "pause" holds.
            if param == "resume":
                printer.resume()
            elif param == "pause":
                printer.pause()
        elif command == "project_file":
            self._project_file(request)
        else:
            raise SimError(f"unsupported command print.{command}")

    def _project_file(self, request: dict[str, Any]) -> None:
        printer = self.ctx.printer
        name = file_from_url(str(request.get("url", "")))
        slot: int | None = None
        mapping = request.get("ams_mapping")
        if request.get("use_ams", True) and printer.ams and isinstance(mapping, list) and mapping:
            first = int(mapping[0])
            slot = first if first >= 0 else None
        elif not request.get("use_ams", True) or not printer.ams:
            slot = 254
        task_id = str(request.get("task_id") or "")
        printer.start_print(
            name,
            subtask_name=str(request.get("subtask_name") or "") or None,
            task_id=task_id if task_id not in ("", "0") else None,
            slot=slot,
            plate=str(request.get("param") or "") or None,
        )
