"""The printforge command line: config check, migrate, users, printers import, start-up errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main

PRINTFORGE = [sys.executable, "-m", "hub.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env.update(PRINTFORGE_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def test_config_check_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text("[server]\nhttps_port = 4443\n[rate_limit]\nper_minute = 500\n")
    assert main(["config", "check", str(cfg)]) == 0
    assert "https port 4443" in capsys.readouterr().out


def test_bad_config_names_key_value_and_rule_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[server]\nhttps_port = "abc"\n')
    result = subprocess.run(
        [*PRINTFORGE, "config", "check", str(cfg)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    )
    assert result.returncode == 2
    assert "server.https_port" in result.stderr and "'abc'" in result.stderr
    assert "rule: type" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_refuses_a_bad_environment_value_before_starting(tmp_path: Path) -> None:
    result = subprocess.run(
        [*PRINTFORGE, "serve"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, PRINTFORGE_SERVER_HTTPS_PORT="99999"),
        timeout=60,
    )
    assert result.returncode == 2
    assert "server.https_port = 99999" in result.stderr and "maximum" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists(), "nothing was created"


def test_migrate_users_and_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _env(tmp_path).items():
        if key.startswith("PRINTFORGE_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("PRINTFORGE_ADMIN_PASSWORD", "first-admin-pw")
    assert main(["migrate"]) == 0
    assert "applied" in capsys.readouterr().out
    assert main(["user", "add", "olga", "--role", "operator", "--password", "olga-password"]) == 0
    assert main(["user", "add", "olga", "--password", "another-pw"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["user", "passwd", "olga", "--password", "short"]) == 2
    assert main(["user", "passwd", "olga", "--password", "olga-new-password"]) == 0

    fleet = tmp_path / "fleet.json"
    fleet.write_text(
        json.dumps(
            [
                {
                    "name": "A",
                    "protocol": "bambu",
                    "host": "127.9.0.2",
                    "port": 8883,
                    "serial": "01S00A000000001",
                    "access_code": "12345678",
                    "ftps_port": 990,
                },
                {"name": "B", "protocol": "moonraker", "host": "127.9.0.3", "port": 7125},
            ]
        )
    )
    assert main(["printers", "import", str(fleet)]) == 0
    assert "imported 2 printer(s), skipped 0" in capsys.readouterr().out
    assert main(["printers", "import", str(fleet)]) == 0
    assert "imported 0 printer(s), skipped 2" in capsys.readouterr().out

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"name": "C", "protocol": "bambu", "host": "127.9.0.4"}]))
    assert main(["printers", "import", str(broken)]) == 2
    assert "broken.json[0]" in capsys.readouterr().err


def test_config_errors_never_echo_a_secret(tmp_path: Path) -> None:
    from config.loader import ConfigError, load

    with pytest.raises(ConfigError) as caught:
        load(None, env={"PRINTFORGE_JWT_SECRET": "too-short-secret"})
    assert "auth.jwt_secret" in str(caught.value) and "minLength" in str(caught.value)
    assert "too-short-secret" not in str(caught.value)
