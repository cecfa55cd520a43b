"""Implicit-TLS FTP server (Bambu's port 990): login, passive TLS data channel, STOR/LIST/SIZE."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import time

from integrations.simulator.faults import FaultState
from integrations.simulator.listener import shut_down
from integrations.simulator.model import PrintModel, SimError

log = logging.getLogger(__name__)

DATA_TIMEOUT = 15.0
_OPEN_BEFORE_LOGIN = {"USER", "PASS", "QUIT", "FEAT", "SYST", "PBSZ", "PROT", "NOOP", "OPTS"}
_FEATURES = "211-Features:\r\n EPSV\r\n PASV\r\n PBSZ\r\n PROT\r\n SIZE\r\n UTF8\r\n211 End\r\n"


class _DataChannel:
    """A one-shot passive listener whose first (TLS) connection carries one transfer."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future()
        )

    async def open(self, host: str, context: ssl.SSLContext) -> int:
        """Listen on an ephemeral port of `host`; return the port."""

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Keep the first connection; refuse any other."""
            if self.accepted.done():
                writer.close()
            else:
                self.accepted.set_result((reader, writer))

        self.server = await asyncio.start_server(on_connect, host, 0, ssl=context)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop listening and cut the transfer connection."""
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.accepted.done() and not self.accepted.cancelled():
            self.accepted.result()[1].transport.abort()
        else:
            self.accepted.cancel()


class FtpsServer:
    """The printer's FTPS endpoint; uploads land in the print model's file store."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        user: str,
        password: str,
        printer: PrintModel,
        faults: FaultState,
    ) -> None:
        self.host, self.port = host, port
        self._context = context
        self._user, self._password = user, password
        self._printer = printer
        self._faults = faults
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen with implicit TLS; port 0 binds an ephemeral port."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self._context
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every session."""
        server, self._server = self._server, None
        await shut_down(server, self._tasks, self.drop_all)

    def drop_all(self) -> None:
        """Abort every control connection."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError) as exc:
            log.debug("ftps session on %s closed: %r", self.host, exc)
        except asyncio.CancelledError:
            # The printer is shutting down (stop/restart). Ending quietly: on Python 3.11 the
            # stream protocol would log a cancelled handler as an "Exception in callback".
            pass
        finally:
            session.close_data()
            self._writers.discard(writer)
            writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)


class _Session:
    """One FTP control connection."""

    def __init__(
        self, server: FtpsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader, self.writer = reader, writer
        self.user: str | None = None
        self.logged_in = False
        self.data: _DataChannel | None = None

    async def reply(self, text: str) -> None:
        """Send a reply line (late when slow, never when silent)."""
        faults = self.server._faults
        if faults.delay > 0:
            await asyncio.sleep(faults.delay)
        if faults.silent:
            return
        self.writer.write(text.encode() if text.endswith("\r\n") else (text + "\r\n").encode())
        await self.writer.drain()

    def close_data(self) -> None:
        """Forget the passive data channel."""
        if self.data is not None:
            self.data.close()
            self.data = None

    async def run(self) -> None:
        """Greet, then read and dispatch commands until QUIT or EOF."""
        await self.reply("220 Bambu FTP service ready.")
        while True:
            line = await self.reader.readline()
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if not self.logged_in and verb not in _OPEN_BEFORE_LOGIN:
                await self.reply("530 Please login with USER and PASS.")
                continue
            if not await self.dispatch(verb, arg):
                return

    async def dispatch(self, verb: str, arg: str) -> bool:
        """Handle one command; False ends the session."""
        if verb == "USER":
            self.user, self.logged_in = arg, False
            await self.reply("331 Please specify the password.")
        elif verb == "PASS":
            ok = self.user == self.server._user and hmac.compare_digest(
                arg.encode(), self.server._password.encode()
            )
            if ok and not self.server._faults.refuse_auth:
                self.logged_in = True
                await self.reply("230 Login successful.")
            else:
                await self.reply("530 Login incorrect.")
        elif verb == "QUIT":
            await self.reply("221 Goodbye.")
            return False
        elif verb == "FEAT":
            await self.reply(_FEATURES)
        elif verb == "SYST":
            await self.reply("215 UNIX Type: L8")
        elif verb == "PBSZ":
            await self.reply("200 PBSZ=0")
        elif verb == "PROT":
            if arg.strip().upper() == "P":
                await self.reply("200 PROT now Private.")
            else:
                await self.reply("536 Only PROT P is supported.")
        elif verb in ("NOOP", "OPTS", "TYPE", "MODE", "STRU"):
            await self.reply("200 OK.")
        elif verb == "PWD":
            await self.reply('257 "/" is the current directory')
        elif verb in ("CWD", "CDUP"):
            await self.reply("250 Directory successfully changed.")
        elif verb == "MKD":
            await self.reply(f'257 "{arg}" created')
        elif verb in ("PASV", "EPSV"):
            await self.passive(verb)
        elif verb == "STOR":
            await self.store(arg)
        elif verb in ("LIST", "NLST", "MLSD"):
            await self.listing(verb)
        elif verb == "RETR":
            await self.retrieve(arg)
        elif verb == "SIZE":
            entry = self.server._printer.find_file(arg)
            await self.reply(f"213 {entry.size}" if entry else "550 Could not get file size.")
        elif verb == "DELE":
            entry = self.server._printer.find_file(arg)
            if entry is None:
                await self.reply("550 Delete operation failed.")
            else:
                del self.server._printer.files[entry.name]
                await self.reply("250 Delete operation successful.")
        else:
            await self.reply(f"502 {verb} not implemented.")
        return True

    async def passive(self, verb: str) -> None:
        """Open a data listener and announce it (PASV or EPSV form)."""
        self.close_data()
        self.data = _DataChannel()
        port = await self.data.open(self.server.host, self.server._context)
        if verb == "EPSV":
            await self.reply(f"229 Entering Extended Passive Mode (|||{port}|)")
        else:
            octets = self.server.host.replace(".", ",")
            await self.reply(f"227 Entering Passive Mode ({octets},{port >> 8},{port & 0xFF}).")

    async def _accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if self.data is None:
            await self.reply("425 Use PASV or EPSV first.")
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self.data.accepted), DATA_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            self.close_data()
            await self.reply("425 Failed to establish connection.")
            return None

    async def store(self, path: str) -> None:
        """STOR: receive a file over the data channel into the printer's storage."""
        await self.reply("150 Ok to send data.")
        conn = await self._accept()
        if conn is None:
            return
        reader, writer = conn
        chunks: list[bytes] = []
        try:
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        except (ConnectionError, ssl.SSLError):
            pass  # a client that closes without TLS close_notify has still sent everything
        await self._finish(writer)
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        try:
            self.server._printer.add_file(name, b"".join(chunks))
        except SimError as exc:
            await self.reply(f"553 {exc}")
            return
        await self.reply("226 Transfer complete.")

    async def listing(self, verb: str) -> None:
        """LIST/NLST/MLSD: send the stored files over the data channel."""
        await self.reply("150 Here comes the directory listing.")
        conn = await self._accept()
        if conn is None:
            return
        _, writer = conn
        lines = []
        for entry in self.server._printer.files.values():
            if verb == "NLST":
                lines.append(entry.name)
            else:
                stamp = time.strftime("%b %d %H:%M", time.localtime(entry.uploaded_at))
                lines.append(f"-rw-rw-rw-    1 0        0 {entry.size:>12} {stamp} {entry.name}")
        writer.write("".join(line + "\r\n" for line in lines).encode())
        await self._finish(writer)
        await self.reply("226 Directory send OK.")

    async def retrieve(self, path: str) -> None:
        """RETR: send a stored file back (small files are kept in memory)."""
        entry = self.server._printer.find_file(path)
        if entry is None or entry.data is None:
            await self.reply("550 Failed to open file.")
            return
        await self.reply(f"150 Opening BINARY mode data connection for {entry.name}.")
        conn = await self._accept()
        if conn is None:
            return
        conn[1].write(entry.data)
        await self._finish(conn[1])
        await self.reply("226 Transfer complete.")

    async def _finish(self, writer: asyncio.StreamWriter) -> None:
        # Closing sends TLS close_notify, which the client's unwrap() waits for.
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
            await writer.drain()
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 5.0)
        self.close_data()
