"""A TCP fault proxy on loopback: put it between the hub and a printer or PostgreSQL and break
the link on purpose (latency with jitter, resets, a silent half-open link, refused connects)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct


class FaultProxy:
    """Forwards 127.0.0.1:<port> to an upstream address until told to misbehave."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.latency_s = 0.0
        self.jitter_s = 0.0
        self.accepted = 0
        # Cleared while silent: connections stay open and nothing is forwarded (half-open).
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # When set: once a client sends these bytes on a link, the request goes through and
        # that link never answers again (the reply is lost, as when a link dies mid-commit).
        self.lose_replies_after: bytes | None = None
        self.replies_lost = 0
        # Per link, by the client's port: cleared, that link alone goes silent (half-open).
        self._link_flowing: dict[int, asyncio.Event] = {}

    async def start(self) -> FaultProxy:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every link."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.reset_all()
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    @property
    def silent(self) -> bool:
        """True while the link holds connections open and forwards nothing."""
        return not self._flowing.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def refuse(self) -> None:
        """Stop listening: new connections are refused (open ones are reset)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.reset_all()

    async def resume(self) -> None:
        """Listen again on the same port and forward normally."""
        self.silent = False
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    def silence_link(self, client_port: int) -> None:
        """The link of the client connected from `client_port` goes silent, for good: held
        open, nothing forwarded either way; other links and new ones work as before."""
        self._link_flowing[client_port].clear()

    @property
    def open_links(self) -> int:
        """Client connections currently held."""
        return len(self._links)

    def reset_all(self) -> None:
        """Abort every open connection with a TCP reset (both sides see ECONNRESET)."""
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self._writers.add(writer)
        client_port = writer.get_extra_info("peername")[1]
        flowing = self._link_flowing[client_port] = asyncio.Event()
        flowing.set()
        try:
            if self.silent:
                await reader.read()  # hold it open, answer nothing
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self._writers.add(up_writer)
            cut = asyncio.Event()
            try:
                await asyncio.gather(
                    self._pipe(reader, up_writer, cut_on=cut, link=flowing),
                    self._pipe(up_reader, writer, cut, link=flowing),
                )
            finally:
                self._writers.discard(up_writer)
                up_writer.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            self._links.discard(task)
            if self._link_flowing.get(client_port) is flowing:
                del self._link_flowing[client_port]

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        muted: asyncio.Event | None = None,
        *,
        cut_on: asyncio.Event | None = None,
        link: asyncio.Event | None = None,
    ) -> None:
        """Copy one direction; `muted` set: discard (replies lost); `cut_on`: set it once the
        client sent `lose_replies_after`; `link` cleared: hold everything (this link silent)."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                delay = self.latency_s + random.uniform(0, self.jitter_s)
                if delay:
                    await asyncio.sleep(delay)
                await self._flowing.wait()  # the link may have gone quiet mid-stream
                if link is not None:
                    await link.wait()
                if muted is not None and muted.is_set():
                    continue
                marker = self.lose_replies_after
                if cut_on is not None and marker and marker in data and not cut_on.is_set():
                    cut_on.set()  # before forwarding, so no reply can slip through
                    self.replies_lost += 1
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()
