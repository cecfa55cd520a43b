"""Every command the README shows, run through the installed `printforge` console script."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import free_port
from tests.helpers import wait_for
from tests.integrations.printers.conftest import random_subnet

# The script `make install` puts next to the interpreter running the tests.
SCRIPT = Path(sys.executable).with_name("printforge")
README = Path(__file__).resolve().parents[2] / "README.md"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env.update(PRINTFORGE_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def run(tmp_path: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """Run the console script to completion (a hang fails the test at `timeout`)."""
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def readme_commands() -> list[list[str]]:
    """The `printforge ...` lines of the README's command-line block, comments dropped."""
    commands = []
    for line in README.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("printforge "):
            commands.append(line.split()[1:])
    return commands


def test_the_script_is_installed_and_the_readme_says_how_to_call_it() -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: run `make install`"
    assert ".venv/bin/printforge" in README.read_text(encoding="utf-8")
    # Each README command is exercised below; a new one needs a test here too.
    tested = {
        ("serve",),
        ("config", "check"),
        ("migrate",),
        ("user", "add"),
        ("user", "passwd"),
        ("simulate",),
        ("printers", "import"),
    }
    for command in readme_commands():
        words = tuple(w for w in command if not w.startswith("-") and w.isidentifier())
        assert any(words[: len(t)] == t for t in tested), f"untested README command {command}"


def test_help_of_every_command(tmp_path: Path) -> None:
    for args in (["--help"], ["simulate", "--help"], ["user", "add", "--help"]):
        result = run(tmp_path, *args, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "usage: printforge" in result.stdout
    assert "--bambu" in run(tmp_path, "simulate", "--help").stdout


def test_config_check_migrate_and_users_never_hang_nor_dial_printers(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[server]\nhttps_port = 4443\n[auth]\nadmin_password = "first-admin-pw"\n')
    assert "https port 4443" in run(tmp_path, "config", "check", str(cfg)).stdout
    migrated = run(tmp_path, "migrate")
    assert migrated.returncode == 0 and "applied" in migrated.stdout

    # A printer whose address we listen on: a command that started drivers would dial it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    fleet = tmp_path / "one.json"
    fleet.write_text(
        json.dumps([{"name": "P", "protocol": "moonraker", "host": "127.0.0.1", "port": port}])
    )
    try:
        assert run(tmp_path, "printers", "import", str(fleet)).returncode == 0
        for _ in range(2):
            added = run(
                tmp_path,
                "user",
                "add",
                "olga",
                "--role",
                "admin",
                "--config",
                str(cfg),
                PRINTFORGE_CLI_PASSWORD="olga-password",
                timeout=30,
            )
            if added.returncode == 0:
                assert "created user olga (admin)" in added.stdout
            else:
                assert "already exists" in added.stderr
        assert added.returncode == 2
        changed = run(
            tmp_path, "user", "passwd", "olga", "--password", "olga-new-password", timeout=30
        )
        assert changed.returncode == 0 and "password changed for olga" in changed.stdout
        missing = run(tmp_path, "user", "passwd", "nobody", "--password", "whatever-pw", timeout=30)
        assert missing.returncode == 2 and "no user 'nobody'" in missing.stderr
        no_password = run(tmp_path, "user", "add", "ivan", timeout=30)
        assert no_password.returncode == 2 and "PRINTFORGE_CLI_PASSWORD" in no_password.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody dialled the printer
    finally:
        listener.close()
    for result in (added, changed, missing, no_password):
        assert "Traceback" not in result.stderr


def test_config_errors_are_reported_together_with_a_suggestion(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "migrate",
        PRINTFORGE_SERVER_HTTP_PROT="80",
        PRINTFORGE_SERVER_HTTPS_PORT="99999",
        PRINTFORGE_CLI_PASSWORD="not-a-config-key",
    )
    assert result.returncode == 2
    assert "did you mean PRINTFORGE_SERVER_HTTP_PORT?" in result.stderr
    assert "server.https_port = 99999" in result.stderr
    assert "PRINTFORGE_CLI_PASSWORD" not in result.stderr


def test_simulate_the_readme_fleet_and_import_it(tmp_path: Path) -> None:
    readme = next(c for c in readme_commands() if c[0] == "simulate")
    # The README's command, on addresses of its own so parallel runs never collide.
    args = [*readme, "--subnet", random_subnet(), "--control-port", "0"]
    proc = subprocess.Popen(
        [str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        assert any("wrote 8 printers to fleet.json" in ln for ln in lines), lines
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    written = json.loads((tmp_path / "fleet.json").read_text())
    protocols = sorted(p["protocol"] for p in written)
    assert protocols == ["bambu"] * 4 + ["moonraker"] * 2 + ["octoprint", "prusalink"]

    imported = run(tmp_path, "printers", "import", "fleet.json")
    assert imported.returncode == 0 and "imported 8 printer(s), skipped 0" in imported.stdout
    again = run(tmp_path, "printers", "import", "fleet.json")
    assert "imported 0 printer(s), skipped 8" in again.stdout


def test_simulate_names_the_flag_when_its_addresses_are_taken(tmp_path: Path) -> None:
    subnet = random_subnet()
    base = subnet.rsplit(".", 1)[0]
    blocker = socket.socket()
    blocker.bind((f"{base}.2", 7125))
    blocker.listen()
    try:
        result = run(
            tmp_path,
            "simulate",
            "--moonraker",
            "1",
            "--subnet",
            subnet,
            "--control-port",
            "0",
            timeout=30,
        )
    finally:
        blocker.close()
    assert result.returncode == 2
    assert "--subnet" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
async def serving(
    tmp_path: Path,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, list[str]]]:
    """`printforge serve --config FILE` on free ports; yields the process, its port, its output."""
    https = free_port()
    cfg = tmp_path / "serve.toml"
    cfg.write_text(
        f'[server]\nhost = "127.0.0.1"\nhttps_port = {https}\nhttp_port = {free_port()}\n'
        '[auth]\nadmin_password = "serve-admin-pw"\n'
    )
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "serve",
        "--config",
        str(cfg),
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            output.append(raw.decode(errors="replace"))

    reader = asyncio.create_task(read())
    try:
        yield proc, https, output
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)
        await reader


async def test_serve_announces_its_address_once_listening_and_picks_up_an_import(
    tmp_path: Path, serving: tuple[asyncio.subprocess.Process, int, list[str]]
) -> None:
    _proc, https, output = serving
    url = f"https://127.0.0.1:{https}"
    await wait_for(lambda: any("API docs" in ln for ln in output), timeout=60, what="banner")
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure)) as session:
        # The banner comes once the port is open: the docs answer at once.
        async with session.get(f"{url}/api/docs") as r:
            assert r.status == 200
        assert any(f"listening on {url}" in ln for ln in output)
        assert any(f"API docs: {url}/api/docs" in ln for ln in output)

        count = 3000
        fleet = tmp_path / "big.json"
        fleet.write_text(
            json.dumps(
                [
                    {
                        "name": f"P{i:04d}",
                        "protocol": "octoprint",
                        "host": f"127.77.{i // 250}.{i % 250 + 2}",
                        "port": 5000,
                        "enabled": False,
                    }
                    for i in range(count)
                ]
            )
        )
        started = time.monotonic()
        imported = await asyncio.to_thread(run, tmp_path, "printers", "import", str(fleet))
        took = time.monotonic() - started
        assert imported.returncode == 0, imported.stderr
        assert f"imported {count} printer(s)" in imported.stdout
        assert took < 20, f"import of {count} printers took {took:.1f} s"

        async with session.post(
            f"{url}/api/auth/login", json={"username": "admin", "password": "serve-admin-pw"}
        ) as r:
            token = (await r.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def all_listed() -> bool:
            async with session.get(f"{url}/api/printers", headers=headers) as r:
                return int((await r.json())["total"]) == count

        await wait_for(all_listed, timeout=15, interval=0.25, what="the hub lists the import")
    # Each hypercorn line once (it used to go out through two handlers).
    running = [ln for ln in output if re.search(r"Running on https://127\.0\.0\.1", ln)]
    assert len(running) == 1, output
