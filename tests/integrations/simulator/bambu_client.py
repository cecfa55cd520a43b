"""A minimal Bambu LAN client written from protocols.md: aiomqtt over TLS and implicit FTPS."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import io
import itertools
import json
import ssl
from typing import Any

import aiomqtt

from integrations.simulator import SimPrinter


def merge(state: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge a partial `print` report into the last known state (ams trays by id)."""
    for key, value in update.items():
        old = state.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merge(old, value)
        elif (
            isinstance(value, list)
            and isinstance(old, list)
            and value
            and all(isinstance(v, dict) and "id" in v for v in value)
            and all(isinstance(v, dict) and "id" in v for v in old)
        ):
            by_id = {item["id"]: item for item in old}
            for item in value:
                if item["id"] in by_id:
                    merge(by_id[item["id"]], item)
                else:
                    old.append(item)
        else:
            state[key] = value


class BambuClient:
    """Subscribes to a printer's report topic, merges reports and sends commands."""

    def __init__(self, printer: SimPrinter, tls: ssl.SSLContext, password: str | None = None):
        self.printer = printer
        self.client = aiomqtt.Client(
            printer.host,
            printer.port,
            username="bblp",
            password=printer.secret if password is None else password,
            tls_context=tls,
            keepalive=5,
        )
        self.reports: list[dict[str, Any]] = []  # raw `print` push_status bodies
        self.sizes: list[int] = []
        self.replies: list[dict[str, Any]] = []  # command replies: {kind: body}
        self.state: dict[str, Any] = {}
        self.closed: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = itertools.count(1)

    async def __aenter__(self) -> BambuClient:
        await self.client.__aenter__()
        await self.client.subscribe(f"device/{self.printer.serial}/report")
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        try:
            async for message in self.client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                data = json.loads(payload)
                body = data.get("print")
                if isinstance(body, dict) and body.get("command") == "push_status":
                    self.reports.append(body)
                    self.sizes.append(len(payload))
                    if body.get("msg") == 0:
                        self.state = json.loads(json.dumps(body))
                    else:
                        merge(self.state, body)
                else:
                    self.replies.append(data)
        except aiomqtt.MqttError as exc:
            self.closed = exc

    async def send(self, kind: str, command: str, qos: int = 1, **fields: Any) -> str:
        """Publish a request (QoS 1 by default); return its sequence_id."""
        seq = str(next(self._seq))
        body = {"sequence_id": seq, "command": command, **fields}
        await self.client.publish(
            f"device/{self.printer.serial}/request", json.dumps({kind: body}), qos=qos
        )
        return seq

    def reply(self, kind: str, seq: str) -> dict[str, Any] | None:
        """The reply to request `seq`, if it has arrived."""
        for data in self.replies:
            body = data.get(kind)
            if isinstance(body, dict) and body.get("sequence_id") == seq:
                return body
        return None


class ImplicitFTPS(ftplib.FTP_TLS):
    """ftplib with implicit TLS (port 990) and a data channel reusing the control session."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context, timeout=10)
        self._sock: ssl.SSLSocket | None = None

    @property
    def sock(self) -> Any:
        return self._sock

    @sock.setter
    def sock(self, value: Any) -> None:
        if value is not None and not isinstance(value, ssl.SSLSocket):
            value = self.context.wrap_socket(value, server_hostname=self.host)
        self._sock = value

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[Any, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
        return conn, size


def ftps_upload(
    host: str, port: int, password: str, name: str, data: bytes, tls: ssl.SSLContext
) -> tuple[list[str], int | None]:
    """Upload over FTPS as Bambu clients do; return (LIST lines, SIZE of the file)."""
    ftp = ImplicitFTPS(tls)
    ftp.connect(host, port)
    try:
        ftp.login("bblp", password)
        ftp.prot_p()
        ftp.storbinary(f"STOR /{name}", io.BytesIO(data))
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        return lines, ftp.size(name)
    finally:
        with contextlib.suppress(Exception):
            ftp.quit()
