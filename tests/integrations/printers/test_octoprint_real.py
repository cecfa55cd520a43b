"""The OctoPrint driver against a real OctoPrint server with its virtual printer, on loopback."""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hub.model import Connection, PrinterState, PrintState
from integrations.printers.base import DriverConfig, PrintOptions
from integrations.printers.octoprint.driver import OctoPrintDriver
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST

REPO = Path(__file__).resolve().parents[3]
VENV = REPO / ".cache" / "octoprint-venv"
CONFIG = """\
server: {firstRun: false, onlineCheck: {enabled: false}, pluginBlacklist: {enabled: false}}
plugins:
  virtual_printer: {enabled: true}
  _disabled: [announcements, pluginmanager, softwareupdate, tracking, errortracking, health_check]
serial: {port: VIRTUAL, autoconnect: true}
"""


@dataclass(frozen=True)
class OctoPrintServer:
    """A running OctoPrint: where it listens and the admin's API key."""

    host: str
    port: int
    api_key: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _run(args: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"real OctoPrint: {what} failed: {exc}")
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        pytest.fail(f"real OctoPrint: {what} failed (exit {done.returncode}):\n{tail}")


def _octoprint() -> Path:
    """The octoprint executable in its own virtualenv (its pins clash with ours), made if missing."""
    executable = VENV / "bin" / "octoprint"
    if executable.exists():
        return executable
    python = shutil.which("python3") or sys.executable
    if VENV.exists():
        shutil.rmtree(VENV)  # a half-made venv from an interrupted run
    _run([python, "-m", "venv", str(VENV)], "creating its virtualenv", 120)
    _run([str(VENV / "bin" / "pip"), "install", "-q", "octoprint"], "pip install octoprint", 600)
    if not executable.exists():
        pytest.fail(f"real OctoPrint: pip installed octoprint but {executable} is missing")
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
        return True  # 403 without a key: it is up
    except (OSError, http.client.HTTPException):
        return False  # not listening yet, or still wiring up its routes


@pytest.fixture(scope="module")
def octoprint_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OctoPrintServer]:
    """A real OctoPrint with the virtual printer; FAILS (never skips) if it cannot run."""
    executable = _octoprint()
    basedir = tmp_path_factory.mktemp("octoprint")
    (basedir / "config.yaml").write_text(CONFIG)
    base = [str(executable), "--basedir", str(basedir)]
    _run([*base, "user", "add", "admin", "--password", secrets.token_hex(8), "--admin"],
         "adding the admin user", 60)  # fmt: skip
    api_key = secrets.token_hex(16).upper()
    keys = basedir / "data" / "appkeys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "keys.yaml").write_text(f"admin:\n- api_key: {api_key}\n  app_id: tests\n")
    port = _free_port()
    log_path = basedir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*base, "serve", "--host", "127.0.0.1", "--port", str(port), "--iknowwhatimdoing"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 45
        while not _answers(f"http://127.0.0.1:{port}/api/version"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"real OctoPrint did not start on port {port}:\n{tail}")
            time.sleep(0.1)
        yield OctoPrintServer("127.0.0.1", port, api_key)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


async def _connection(server: OctoPrintServer, command: str) -> None:
    body = {"command": command, "port": "VIRTUAL"} if command == "connect" else {"command": command}
    async with aiohttp.ClientSession(headers={"X-Api-Key": server.api_key}) as http:
        async with http.post(f"{server.url}/api/connection", json=body) as response:
            assert response.status == 204, await response.text()


def _gcode(moves: int, feed: int) -> bytes:
    lines = ["G28", "G90", "M104 S0", "M140 S0"]
    lines += [f"G1 X{10 + (i % 2) * 10} Y{10 + (i % 2) * 10} F{feed}" for i in range(moves)]
    return ("\n".join(lines) + "\n").encode()


# A real OctoPrint is another process that answers on its own schedule: on a busy
# machine a cancel has taken more than FAST's 3 s, so commands get the default limit.
REAL_SERVER = FAST.with_overrides({"poll_interval_s": 0.2, "command_timeout_s": 10.0})


def _driver(server: OctoPrintServer, key: str) -> OctoPrintDriver:
    config = DriverConfig(
        printer_id="real-octoprint", host=server.host, port=server.port,
        secrets={"api_key": key}, options=REAL_SERVER,
    )  # fmt: skip
    return OctoPrintDriver(config, lambda state: None)


async def test_real_octoprint_print_pause_resume_cancel_and_finish(octoprint_server):
    server = octoprint_server
    await _connection(server, "disconnect")
    driver = _driver(server, server.api_key)
    await driver.start()
    try:
        await wait_for(
            lambda: [e.code for e in driver.state.errors] == ["OCTOPRINT_NOT_OPERATIONAL"],
            what="409 from /api/printer seen as not operational",
        )
        assert driver.state.state is PrintState.OFFLINE
        assert driver.link.connection is Connection.ONLINE
        await _connection(server, "connect")
        await wait_for(lambda: driver.state.state is PrintState.IDLE, what="operational")

        # About 7 s of moves at 10x: long enough to pause, resume and cancel.
        await driver.start_print("slow.gcode", _gcode(120, 600), PrintOptions())
        await wait_for(
            lambda: (
                driver.state.state is PrintState.PRINTING
                and (driver.state.job.progress if driver.state.job else 0) > 0
            ),
            what="printing with progress",
        )
        assert driver.state.job.file == "slow.gcode"
        first = driver.state.job.progress
        await wait_for(lambda: driver.state.job.progress > first, what="progress rising")
        await driver.command("pause", {})
        await wait_for(lambda: driver.state.state is PrintState.PAUSED, what="paused")
        await driver.command("resume", {})
        await wait_for(lambda: driver.state.state is PrintState.PRINTING, what="resumed")
        await driver.command("set_temperature", {"heater": "bed", "target": 35})
        await wait_for(lambda: driver.state.temps.bed_target == 35, what="bed target")
        await driver.command("stop", {})
        await wait_for(lambda: driver.state.state is PrintState.CANCELLED, what="cancelled")

        # About a second: a print that runs to the end.
        await driver.start_print("fast.gcode", _gcode(60, 3000), PrintOptions())
        await wait_for(lambda: driver.state.state is PrintState.FINISHED, what="finished")
        assert driver.state.job.file == "fast.gcode" and driver.state.job.progress == 100.0
    finally:
        await driver.stop()


async def test_real_octoprint_refuses_a_wrong_key(octoprint_server):
    driver = _driver(octoprint_server, "NOT-THE-KEY")
    await driver.start()
    try:
        await wait_for(
            lambda: driver.link.connection is Connection.AUTH_FAILED, what="403 as auth_failed"
        )
        assert "HTTP 403" in (driver.link.last_error or "")
    finally:
        await driver.stop()


async def test_real_octoprint_push_events_tell_two_prints_of_one_file_apart(octoprint_server):
    server = octoprint_server
    await _connection(server, "connect")
    states: list[PrinterState] = []
    config = DriverConfig(
        printer_id="real-octoprint", host=server.host, port=server.port,
        secrets={"api_key": server.api_key}, options=REAL_SERVER,
    )  # fmt: skip
    driver = OctoPrintDriver(config, states.append)
    await driver.start()
    try:
        await wait_for(lambda: driver._status.events, what="the push socket authenticated")
        # The last test's print may still have been finishing as this driver joined: it is
        # then seen to its end (finished, under no key of its own) and is not counted here.
        await wait_for(
            lambda: driver.state.state in (PrintState.IDLE, PrintState.FINISHED),
            what="operational",
        )
        states.clear()

        def finished() -> set[str | None]:
            return {s.job.key for s in states if s.state is PrintState.FINISHED and s.job}

        for count in (1, 2):
            await driver.start_print("twice.gcode", _gcode(30, 3000), PrintOptions())
            await wait_for(lambda n=count: len(finished()) == n, what=f"print {count} finished")
    finally:
        await driver.stop()
    assert None not in finished()  # each print under the key of its own PrintStarted
