"""Configuration: defaults, TOML file, PRINTFORGE_* overrides and error messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.loader import ConfigError, Settings, load


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "printforge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load(None, env={})
    assert isinstance(settings, Settings)
    assert settings.server.host == "0.0.0.0"
    assert settings.server.https_port == 3443
    assert settings.server.http_port == 3000
    assert settings.server.tls is True
    assert settings.server.allowed_origins == ()
    assert settings.server.log_level == "info"
    assert settings.data_dir == Path("./data")
    assert settings.database_url == "sqlite+aiosqlite:///data/printforge.db"
    assert settings.auth.jwt_secret is None
    assert settings.auth.token_ttl_hours == 24
    assert settings.auth.admin_username == "admin"
    assert settings.auth.login_max_failures == 5
    assert (settings.rate_limit.per_minute, settings.rate_limit.per_second) == (200, 20)
    assert settings.rate_limit.enabled is True
    assert settings.simulator.enabled is False


def test_env_beats_file_beats_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
data_dir = "/srv/forge"

[server]
https_port = 8443
http_port = 8080
allowed_origins = ["https://a.example"]

[rate_limit]
per_minute = 100
""",
    )
    from_file = load(path, env={})
    assert from_file.server.https_port == 8443
    assert from_file.server.http_port == 8080
    assert from_file.server.allowed_origins == ("https://a.example",)
    assert from_file.rate_limit.per_minute == 100
    assert from_file.rate_limit.per_second == 20  # default kept
    assert from_file.database_url == "sqlite+aiosqlite:////srv/forge/printforge.db"

    env = {
        "PRINTFORGE_SERVER_HTTPS_PORT": "9443",
        "PRINTFORGE_SERVER_HTTP_PORT": "",  # empty = null for nullable keys
        "PRINTFORGE_SERVER_ALLOWED_ORIGINS": "https://b.example, https://c.example",
        "PRINTFORGE_SERVER_TLS": "off",
        "PRINTFORGE_RATE_LIMIT_ENABLED": "false",
        "PRINTFORGE_SIMULATOR_SPEED": "2.5",
        "PRINTFORGE_DATABASE_URL": "postgresql://forge@db/forge",
        "PRINTFORGE_ADMIN_PASSWORD": "from-the-env-1",
        "PRINTFORGE_CONFIG": "/ignored/by/the/loader.toml",
        "HOME": "/not/ours",
    }
    merged = load(path, env=env)
    assert merged.server.https_port == 9443
    assert merged.server.http_port is None
    assert merged.server.allowed_origins == ("https://b.example", "https://c.example")
    assert merged.server.tls is False
    assert merged.rate_limit.enabled is False
    assert merged.rate_limit.per_minute == 100  # from the file
    assert merged.simulator.speed == 2.5
    assert merged.database_url == "postgresql://forge@db/forge"
    assert merged.auth.admin_password == "from-the-env-1"
    assert merged.data_dir == Path("/srv/forge")


def test_json_array_env_and_aliases_match_long_names() -> None:
    settings = load(None, env={"PRINTFORGE_SERVER_ALLOWED_ORIGINS": '["https://x.example"]'})
    assert settings.server.allowed_origins == ("https://x.example",)
    short = load(None, env={"PRINTFORGE_JWT_SECRET": "s" * 40})
    long = load(None, env={"PRINTFORGE_AUTH_JWT_SECRET": "s" * 40})
    assert short.auth.jwt_secret == long.auth.jwt_secret == "s" * 40


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ('[server]\nhttps_port = "abc"\n', {}, ["server.https_port", "'abc'", "type"]),
        ("[server]\nhttps_port = 0\n", {}, ["server.https_port", "0", "minimum"]),
        ("[server]\nbogus = 1\n", {}, ["server.bogus", "1", "unknown key", "additionalProperties"]),
        ('colour = "red"\n', {}, ["colour", "'red'", "unknown key", "additionalProperties"]),
        ('[server]\nlog_level = "loud"\n', {}, ["server.log_level", "'loud'", "enum"]),
        ('[auth]\njwt_secret = "short"\n', {}, ["auth.jwt_secret", "minLength"]),
        ('[database]\nurl = "mysql://x"\n', {}, ["database.url", "'mysql://x'", "pattern"]),
        ("", {"PRINTFORGE_SERVER_HTTPS_PORT": "99999"}, ["server.https_port", "99999", "maximum"]),
        ("", {"PRINTFORGE_SERVER_HTTPS_PORT": "many"}, ["server.https_port", "'many'", "type"]),
        ("", {"PRINTFORGE_SERVER_TLS": "perhaps"}, ["server.tls", "'perhaps'", "type"]),
        ("", {"PRINTFORGE_RATE_LIMIT_PER_SECOND": "0"}, ["rate_limit.per_second", "0", "minimum"]),
        ('server = "x"\n', {}, ["server", "'x'", "type"]),
    ],
)
def test_bad_values_name_key_value_and_rule(
    tmp_path: Path, toml: str, env: dict[str, str], expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(_write(tmp_path, toml), env=env)
    message = str(caught.value)
    for part in expected:
        assert part in message, f"{part!r} missing from {message!r}"


@pytest.mark.parametrize(
    "name", ["PRINTFORGE_SERVER_HTTPS", "PRINTFORGE_NOPE", "PRINTFORGE_SERVER", "PRINTFORGE_AUTH_"]
)
def test_unknown_env_var_is_an_error(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(None, env={name: "1"})
    assert name in str(caught.value)


def test_env_section_over_a_non_table_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server"):
        load(_write(tmp_path, 'server = "x"\n'), env={"PRINTFORGE_SERVER_HOST": "h"})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[server\nhttps_port = 1\n")
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert str(path) in str(caught.value)
    assert "TOML" in str(caught.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert str(path) in str(caught.value)


def test_load_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PRINTFORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PRINTFORGE_SERVER_HTTPS_PORT", "4443")
    assert load(None).server.https_port == 4443


def test_concurrent_connects_bound_from_file_and_environment(tmp_path: Path) -> None:
    assert load(None, env={}).printers.max_concurrent_connects == 64
    path = tmp_path / "c.toml"
    path.write_text("[printers]\nmax_concurrent_connects = 8\n", encoding="utf-8")
    assert load(path, env={}).printers.max_concurrent_connects == 8
    env = {"PRINTFORGE_PRINTERS_MAX_CONCURRENT_CONNECTS": "16"}
    assert load(path, env=env).printers.max_concurrent_connects == 16
    with pytest.raises(ConfigError, match=r"printers\.max_concurrent_connects = 0"):
        load(None, env={"PRINTFORGE_PRINTERS_MAX_CONCURRENT_CONNECTS": "0"})
