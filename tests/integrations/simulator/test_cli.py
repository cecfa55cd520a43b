"""The `printforge simulate` CLI: run a fleet in a subprocess, write the file, inject faults."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import pytest

from integrations.simulator.cli import main
from integrations.simulator.control import parse_hms
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parse_hms_forms() -> None:
    assert parse_hms(["HMS_0300_0100_0001_0007"]) == (0x03000100, 0x00010007)
    assert parse_hms(["0x0300", "7"]) == (0x300, 7)
    with pytest.raises(ValueError):
        parse_hms(["HMS_03"])


async def test_simulate_write_fault_and_stop(tmp_path: Path, subnet: str) -> None:
    out = tmp_path / "fleet.json"
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "integrations.simulator.cli", "simulate",
        "--bambu", "1", "--moonraker", "1", "--prusalink", "1", "--octoprint", "1",
        "--subnet", subnet, "--ephemeral-ports", "--write", str(out),
        "--control-port", str(port), "--speed", "600", "--demo",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        while not any(b"Ctrl-C" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, f"simulator exited: {b''.join(lines)!r}"
            lines.append(line)
        entries = json.loads(out.read_text())
        assert [e["protocol"] for e in entries] == ["bambu", "moonraker", "prusalink", "octoprint"]
        assert entries[0]["access_code"].encode() in b"".join(lines)
        name = entries[2]["name"]
        assert (
            await asyncio.to_thread(main, ["fault", "--control-port", str(port), name, "runout"])
            == 0
        )
        rc = await asyncio.to_thread(
            main, ["simulate", "fault", "--control-port", str(port), entries[0]["serial"],
                   "hms", "HMS_0300_0100_0001_0007"],
        )  # fmt: skip
        assert rc == 0
        assert (
            await asyncio.to_thread(main, ["fault", "--control-port", str(port), "nobody", "drop"])
            == 1
        )
        assert await asyncio.to_thread(main, ["status", "--control-port", str(port)]) == 0

        def bambu_has_hms() -> bool:
            from integrations.simulator.control import send_control

            _, rows = send_control(port, "/printers")
            return rows[0]["hms"] == ["03000100_00010007"]

        await wait_for(lambda: asyncio.to_thread(bambu_has_hms), what="HMS shown in status")
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
