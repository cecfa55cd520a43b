"""Upload to and read from a Bambu printer's SD card over implicit FTPS (port 990)."""

from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor


class ImplicitFtpTls(ftplib.FTP_TLS):
    """FTP_TLS that speaks TLS from the first byte and resumes the control session on data.

    The printer's FTP server refuses a data connection that does not reuse the
    control channel's TLS session, which stock ftplib does not do.
    """

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        """Open the control connection, wrapped in TLS before the greeting."""
        if host:
            self.host = host
        if port:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=self.host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        """Open a data connection whose TLS session resumes the control channel's."""
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(
                conn,
                server_hostname=self.host,
                session=self.sock.session,  # type: ignore[union-attr]
            )
        return conn, size


# FTPS transfers run in threads of their own: a farm's uploads neither wait behind nor hold up
# the event loop's default executor (file reads, DNS, SQLite helpers). Bounded: each transfer is
# a TLS session, and more than this many at once only share the same CPU.
TRANSFERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="bambu-ftps")


def upload(
    host: str,
    port: int,
    password: str,
    filename: str,
    data: bytes,
    context: ssl.SSLContext,
    timeout: float,
) -> None:
    """Store `data` as `/filename` (blocking: run it in an executor)."""
    ftp = ImplicitFtpTls(context=context, timeout=timeout)
    try:
        ftp.connect(host, port)
        ftp.login("bblp", password)
        ftp.prot_p()
        ftp.voidcmd("TYPE I")
        with ftp.transfercmd(f"STOR {filename}") as conn:
            conn.sendall(data)
            if isinstance(conn, ssl.SSLSocket):
                # Some printer firmware never answers close_notify; don't hang on it.
                conn.settimeout(min(timeout, 5.0))
                with contextlib.suppress(OSError):
                    conn.unwrap()
        ftp.voidresp()
    finally:
        with contextlib.suppress(Exception):
            ftp.quit()
        with contextlib.suppress(Exception):
            ftp.close()


def download(
    host: str,
    port: int,
    password: str,
    path: str,
    context: ssl.SSLContext,
    timeout: float,
    limit: int,
) -> bytes:
    """The bytes of `/path` on the card, at most `limit` of them (blocking: run it in an executor)."""
    ftp = ImplicitFtpTls(context=context, timeout=timeout)
    chunks: list[bytes] = []
    size = 0

    def keep(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > limit:
            raise ValueError(f"{path} is larger than {limit} bytes")
        chunks.append(chunk)

    try:
        ftp.connect(host, port)
        ftp.login("bblp", password)
        ftp.prot_p()
        ftp.retrbinary(f"RETR /{path.lstrip('/')}", keep)
    finally:
        with contextlib.suppress(Exception):
            ftp.quit()
        with contextlib.suppress(Exception):
            ftp.close()
    return b"".join(chunks)


def is_auth_error(exc: BaseException) -> bool:
    """Whether an ftplib error means the access code was refused."""
    return isinstance(exc, ftplib.error_perm) and str(exc).startswith("530")
