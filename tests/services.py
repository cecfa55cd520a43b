"""Make sure the real PostgreSQL and Mosquitto a test needs are running; fail clearly if not."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import time

import pytest


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _ensure(name: str, port: int, start: list[str]) -> None:
    if _port_open("127.0.0.1", port):
        return
    try:
        subprocess.run(start, check=False, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(
            f"{name} is not running on 127.0.0.1:{port} and `{' '.join(start)}` failed: {exc}"
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _port_open("127.0.0.1", port):
            return
        time.sleep(0.2)
    pytest.fail(
        f"{name} is not running on 127.0.0.1:{port} and `{' '.join(start)}` did not start it"
    )


def ensure_postgres() -> str:
    """Start PostgreSQL if it is down; return the server URL prefix."""
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    version = versions[-1] if versions else "15"
    _ensure(
        "PostgreSQL",
        5432,
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
    )
    user = os.environ.get("PGUSER", "postgres")
    return f"postgresql+asyncpg://{user}@127.0.0.1:5432"


def ensure_mosquitto() -> tuple[str, int]:
    """Start Mosquitto if it is down; return its address."""
    _ensure("Mosquitto", 1883, ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"])
    return "127.0.0.1", 1883
