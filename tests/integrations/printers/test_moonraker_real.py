"""The Moonraker driver against a real Moonraker server (no Klipper behind it), on loopback.

Without Klipper, Moonraker still serves identify, the job history and its authorization: enough
to check how the driver takes a wrong API key and a server that goes away.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.model import Connection, PrintState
from integrations.printers.base import DriverConfig
from integrations.printers.moonraker.driver import MoonrakerDriver
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST

REPO = Path(__file__).resolve().parents[3]
VENV = REPO / ".cache" / "moonraker-venv"
VERSION = "0.11.0"


def _run(args: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"real Moonraker: {what} failed: {exc}")
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        pytest.fail(f"real Moonraker: {what} failed (exit {done.returncode}):\n{tail}")


def _moonraker() -> Path:
    """The moonraker executable in its own virtualenv, made if missing."""
    executable = VENV / "bin" / "moonraker"
    if executable.exists():
        return executable
    python = shutil.which("python3") or sys.executable
    if VENV.exists():
        shutil.rmtree(VENV)  # a half-made venv from an interrupted run
    _run([python, "-m", "venv", str(VENV)], "creating its virtualenv", 120)
    _run([str(VENV / "bin" / "pip"), "install", "-q", f"moonraker=={VERSION}"], "pip install", 600)
    if not executable.exists():
        pytest.fail(f"real Moonraker: pip installed moonraker but {executable} is missing")
    return executable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # 401 without a key: it is up
    except OSError:
        return False


@contextmanager
def _server(base: Path, *, trusted: bool) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A Moonraker on a free port; loopback trusted (no key needed) or not (a key is)."""
    data = base / ("trusted" if trusted else "keyed")
    for sub in ("config", "gcodes", "logs", "comms", "misc"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    (data / "misc" / "usb.ids").touch()  # else it tries to download one
    port = _free_port()
    clients = "trusted_clients:\n    127.0.0.0/8\n" if trusted else ""
    (data / "config" / "moonraker.conf").write_text(
        f"[server]\nhost: 127.0.0.1\nport: {port}\nklippy_uds_address: {data}/comms/k.sock\n"
        "[machine]\nprovider: none\nvalidate_service: False\n"
        f"[authorization]\n{clients}"
        "[announcements]\nenable_moonlight: False\n"
    )
    log = (data / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(_moonraker()), "-d", str(data), "-c", str(data / "config" / "moonraker.conf"), "-n"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}/server/info"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"real Moonraker did not start:\n{(data / 'serve.log').read_text()}")
            time.sleep(0.1)
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()


def _driver(port: int, key: str | None, **options: float) -> MoonrakerDriver:
    config = DriverConfig(
        printer_id="real-moonraker", host="127.0.0.1", port=port,
        secrets={"api_key": key} if key else {}, options=FAST.with_overrides({"command_timeout_s": 10.0, **options}),
    )  # fmt: skip
    return MoonrakerDriver(config, lambda state: None)


async def test_real_moonraker_wrong_key_is_auth_failed_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _server(tmp_path, trusted=False) as (port, _):
        driver = _driver(port, "NOT-THE-KEY", auth_retry_s=120.0)
        with caplog.at_level(logging.INFO):
            await driver.start()
            try:
                await wait_for(
                    lambda: driver.link.connection is Connection.AUTH_FAILED, what="auth_failed"
                )
                error = driver.link.last_error or ""
            finally:
                await driver.stop()
    assert "refused the API key" in error
    assert not any(r.exc_info for r in caplog.records)
    retry = next(r for r in caplog.records if "auth_failed" in r.getMessage())
    assert float(retry.getMessage().rsplit("retrying in ", 1)[1].rstrip("s")) >= 60


async def test_real_moonraker_gone_leaves_no_stale_klipper_error(tmp_path: Path) -> None:
    with _server(tmp_path, trusted=True) as (port, process):
        driver = _driver(port, None)
        await driver.start()
        try:
            online: Callable[[], bool] = lambda: driver.link.connection is Connection.ONLINE  # noqa: E731
            await wait_for(online, timeout=15, what="online")
            await wait_for(lambda: driver.state.errors, what="Klipper's absence reported")
            assert driver.state.state is PrintState.OFFLINE
            assert [e.code for e in driver.state.errors] == ["KLIPPY_DISCONNECTED"]
            assert driver._status.history_available  # the job history answers without Klipper
            process.send_signal(signal.SIGTERM)
            await wait_for(
                lambda: driver.link.connection is Connection.OFFLINE, timeout=15, what="gone"
            )
            assert driver.state.errors == ()
            assert driver.link.last_error
        finally:
            await driver.stop()
