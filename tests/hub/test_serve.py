"""`printforge serve`: self-signed HTTPS kept across starts, HTTP redirect, clean shutdown of sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import free_port
from tests.helpers import wait_for


async def _start(tmp_path: Path, https: int, http: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env.update(
        PRINTFORGE_DATA_DIR=str(tmp_path / "data"),
        PRINTFORGE_SERVER_HOST="127.0.0.1",
        PRINTFORGE_SERVER_HTTPS_PORT=str(https),
        PRINTFORGE_SERVER_HTTP_PORT=str(http),
        PRINTFORGE_ADMIN_PASSWORD="serve-admin-pw",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _wait_healthy(session: aiohttp.ClientSession, url: str) -> None:
    async def healthy() -> bool:
        try:
            async with session.get(url) as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    # Generous: a loaded CI machine can take a while to import and start the hub.
    await wait_for(healthy, timeout=60, interval=0.05, what=f"{url} answering")


async def test_https_redirect_certificate_reuse_and_going_away(tmp_path: Path) -> None:
    https, http = free_port(), free_port()
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    certs: list[bytes] = []
    for _ in range(2):
        proc = await _start(tmp_path, https, http)
        try:
            connector = aiohttp.TCPConnector(ssl=insecure)
            async with aiohttp.ClientSession(connector=connector) as session:
                await _wait_healthy(session, f"https://127.0.0.1:{https}/api/health")
                async with session.get(
                    f"http://127.0.0.1:{http}/api/printers?x=1", allow_redirects=False
                ) as r:
                    assert r.status == 308
                    assert r.headers["Location"] == f"https://127.0.0.1:{https}/api/printers?x=1"
                async with session.post(
                    f"https://127.0.0.1:{https}/api/auth/login",
                    json={"username": "admin", "password": "serve-admin-pw"},
                ) as r:
                    token = (await r.json())["token"]
                ws = await session.ws_connect(
                    f"wss://127.0.0.1:{https}/ws", headers={"Authorization": f"Bearer {token}"}
                )
                assert (await ws.receive_json())["type"] == "hello"
                certs.append((tmp_path / "data" / "tls" / "cert.pem").read_bytes())
                proc.send_signal(signal.SIGTERM)
                msg = await asyncio.wait_for(ws.receive(), 30)
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001, msg
                assert await asyncio.wait_for(proc.wait(), 40) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert certs[0] == certs[1], "the generated certificate is kept for later starts"


def test_open_files_limit_is_raised_to_the_hard_limit() -> None:
    import resource

    from hub.serve import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        raised = raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert raised == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_connection_failing_to_close_after_the_stop_is_not_an_error() -> None:
    from hub.serve import until_stopped

    async def failing() -> None:
        raise ssl.SSLError("application data after close notify")

    stop = asyncio.Event()
    with pytest.raises(ssl.SSLError):  # before a stop was asked for, it is the server failing
        await until_stopped(failing(), stop)
    stop.set()
    await until_stopped(failing(), stop)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        ssl.SSLError(1, "[SSL: UNEXPECTED_EOF_WHILE_READING] unexpected eof"),
        OSError(9, "Bad file descriptor"),
    ],
)
def test_a_dropped_client_connection_is_one_line_without_traceback(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from hub.serve import quiet_connection_errors

    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.DEBUG):
            quiet_connection_errors(
                loop, {"message": "Fatal error on SSL transport", "exception": exc}
            )
    finally:
        loop.close()
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is None and caplog.records[0].levelno == logging.INFO


def test_other_loop_errors_still_reach_the_default_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hub.serve import quiet_connection_errors

    loop = asyncio.new_event_loop()
    try:
        quiet_connection_errors(loop, {"message": "boom", "exception": ValueError("bug")})
    finally:
        loop.close()
    assert any(r.exc_info for r in caplog.records), "a real bug keeps its traceback"


async def _assert_ended_by_the_backstop(code: str, *, sigterm_once_busy: bool = False) -> None:
    """Run `code` in a Python process (SIGTERM it once it prints `busy`, if asked); it must be
    ended by a 0.2 s exit backstop, logging so and with status 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        if sigterm_once_busy:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"busy\n"
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"did not stop within 0.2 s" in err, err
    assert proc.returncode == 0


async def test_a_stop_cut_by_the_exit_timer_still_exits_cleanly() -> None:
    # A process whose stop hangs past the timer (here it never stops at all) is ended by the
    # timer with the status of a stop in time: a supervisor does not count it a crash.
    code = (
        "import logging, time\n"
        "from hub.serve import exit_after\n"
        "logging.basicConfig()\n"
        "exit_after(0.2)\n"
        "time.sleep(120)\n"
    )
    await _assert_ended_by_the_backstop(code)


async def test_the_exit_countdown_starts_at_the_signal_while_the_main_thread_is_busy() -> None:
    # The main thread never yields (as a crowded event loop never reaches a callback): the
    # countdown is armed by the signal handler itself, so the process still ends, cleanly.
    code = (
        "import logging, signal\n"
        "from hub.serve import ExitBackstop\n"
        "logging.basicConfig()\n"
        "backstop = ExitBackstop(0.2)\n"
        "signal.signal(signal.SIGTERM, lambda signum, frame: backstop.arm())\n"
        "print('busy', flush=True)\n"
        "while True:\n"
        "    sum(range(1000))\n"
    )
    await _assert_ended_by_the_backstop(code, sigterm_once_busy=True)
