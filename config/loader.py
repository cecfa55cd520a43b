"""Configuration loader: TOML file plus PRINTFORGE_* environment overrides, validated by JSON Schema."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

ENV_PREFIX = "PRINTFORGE_"
# Short environment names kept for the values people set most often.
ENV_ALIASES = {
    "PRINTFORGE_ADMIN_PASSWORD": ("auth", "admin_password"),
    "PRINTFORGE_DATABASE_URL": ("database", "url"),
    "PRINTFORGE_JWT_SECRET": ("auth", "jwt_secret"),
}
ENV_IGNORED = {"PRINTFORGE_CONFIG"}
# Variables of the command-line tools (e.g. PRINTFORGE_CLI_PASSWORD): never configuration, so
# no section may be named `cli`.
ENV_RESERVED_PREFIX = "PRINTFORGE_CLI_"
SECRET_WORDS = ("password", "secret")


class ConfigError(Exception):
    """A configuration value broke a rule; the message names the key, the value and the rule."""


@dataclass(frozen=True)
class ServerSettings:
    """HTTP(S) listener settings."""

    host: str = "0.0.0.0"
    https_port: int = 3443
    http_port: int | None = 3000
    tls: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "info"


@dataclass(frozen=True)
class AuthSettings:
    """Token and login settings."""

    jwt_secret: str | None = None
    token_ttl_hours: int = 24
    issuer: str = "printforge"
    audience: str = "printforge-api"
    admin_username: str = "admin"
    admin_password: str | None = None
    login_max_failures: int = 5
    login_window_s: int = 900


@dataclass(frozen=True)
class RateLimitSettings:
    """Per-client request limits."""

    enabled: bool = True
    per_minute: int = 200
    per_second: int = 20


@dataclass(frozen=True)
class FileSettings:
    """The print file library."""

    max_size_mb: int = 512

    @property
    def max_bytes(self) -> int:
        """The largest upload accepted, in bytes."""
        return self.max_size_mb * 1024 * 1024


@dataclass(frozen=True)
class PrinterSettings:
    """The printer links as a whole."""

    # Connects (TCP, TLS, handshake, first request) in progress at once, over the whole fleet.
    max_concurrent_connects: int = 64


@dataclass(frozen=True)
class QueueSettings:
    """The print queue's dispatcher."""

    auto_dispatch: bool = True
    start_timeout_s: float = 300.0
    max_attempts: int = 3
    # A printer that refused a start waits this long before the next (doubling per refusal in a
    # row, at most cooldown_max_s; a start it takes ends the cooldown).
    cooldown_s: float = 30.0
    cooldown_max_s: float = 960.0


@dataclass(frozen=True)
class SimulatorSettings:
    """The embedded simulated fleet started with the hub."""

    enabled: bool = False
    bambu: int = 3
    moonraker: int = 1
    prusalink: int = 1
    octoprint: int = 1
    speed: float = 60.0
    subnet: str = "127.0.0.0"
    demo: bool = True


@dataclass(frozen=True)
class MqttSettings:
    """The outbound MQTT integration (integrations/mqtt); off while `url` is unset."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    base_topic: str = "printforge"
    tls_ca: str | None = None
    tls_insecure: bool = False
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    ha_status_topic: str = "homeassistant/status"
    commands: bool = True
    hub_url: str | None = None
    # Non-retained events (lifecycle, notifications, spool, queue) kept while the broker is away.
    event_backlog: int = 10000


@dataclass(frozen=True)
class OutboxSettings:
    """Delivery rules shared by webhooks and notification channels."""

    timeout_s: float = 10.0
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 3600.0
    retry_for_s: float = 86400.0
    disable_after_failures: int = 5
    max_in_flight: int = 50


@dataclass(frozen=True)
class WebhookSettings:
    """The webhooks plug-in."""

    enabled: bool = True
    # A list, not a tuple: the plug-in loader validates this section with JSON Schema.
    allow_networks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotifySettings:
    """The notification channels plug-in."""

    enabled: bool = True
    # Non-public networks channels may connect to (same rules as the webhooks' list).
    allow_networks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    data_dir: Path = Path("./data")
    database_url: str = ""
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    files: FileSettings = field(default_factory=FileSettings)
    printers: PrinterSettings = field(default_factory=PrinterSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)


@cache
def schema() -> dict[str, Any]:
    """The configuration JSON Schema."""
    text = (Path(__file__).parent / "schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _describe(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    key = path or "(top level)"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        unknown = sorted(str(k) for k in error.instance if k not in known)
        if unknown:
            return "\n".join(
                f"config: {f'{path}.{key}' if path else key} = {error.instance[key]!r}:"
                f" unknown key{_did_you_mean(key, known)} (rule: additionalProperties)"
                for key in unknown
            )
    if any(word in key for word in SECRET_WORDS):
        # Never echo a secret into logs or a terminal: name the rule only.
        message = f"breaks rule {error.validator}={error.validator_value!r}"
        return f"config: {key} = (hidden): {message} (rule: {error.validator})"
    return f"config: {key} = {error.instance!r}: {error.message} (rule: {error.validator})"


def _did_you_mean(name: str, known: Mapping[str, Any] | list[str]) -> str:
    """'; did you mean X?' for the closest known name, or nothing when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def env_names() -> list[str]:
    """Every environment variable the loader reads."""
    names = list(ENV_ALIASES)
    for section, spec in schema()["properties"].items():
        if spec.get("type") == "object":
            names += [f"{ENV_PREFIX}{section}_{key}".upper() for key in spec.get("properties", {})]
        else:
            names.append(f"{ENV_PREFIX}{section}".upper())
    return names


def _coerce_env(raw: str, prop: Mapping[str, Any]) -> Any:
    """Turn an environment string into the type the schema expects for that key."""
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if raw == "" and "null" in types:
        return None
    if "boolean" in types:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        return raw
    if "integer" in types:
        try:
            return int(raw)
        except ValueError:
            return raw
    if "number" in types:
        try:
            return float(raw)
        except ValueError:
            return raw
    if "array" in types:
        if raw.strip().startswith("["):
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return raw
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _env_path(name: str) -> tuple[str, ...] | None:
    """Map PRINTFORGE_SECTION_KEY to a path in the schema, or None when it names nothing."""
    if name in ENV_ALIASES:
        return ENV_ALIASES[name]
    rest = name[len(ENV_PREFIX) :].lower()
    props = schema()["properties"]
    if rest in props and props[rest].get("type") != "object":
        return (rest,)
    for section, spec in props.items():
        if spec.get("type") == "object" and rest.startswith(section + "_"):
            key = rest[len(section) + 1 :]
            if key in spec.get("properties", {}):
                return (section, key)
    return None


def _env_errors(data: dict[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Overlay PRINTFORGE_* variables on the file's values; every unknown name is an error."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    props = schema()["properties"]
    problems: list[str] = []
    for name, raw in sorted(env.items()):
        if (
            not name.startswith(ENV_PREFIX)
            or name in ENV_IGNORED
            or name.startswith(ENV_RESERVED_PREFIX)
        ):
            continue
        path = _env_path(name)
        if path is None:
            hint = _did_you_mean(name, env_names())
            problems.append(f"config: environment variable {name} names no configuration key{hint}")
            continue
        if len(path) == 1:
            merged[path[0]] = _coerce_env(raw, props[path[0]])
            continue
        section = merged.setdefault(path[0], {})
        if not isinstance(section, dict):
            problems.append(f"config: {path[0]} must be a table (set by {name})")
            continue
        section[path[1]] = _coerce_env(raw, props[path[0]]["properties"][path[1]])
    return merged, problems


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Overlay PRINTFORGE_* variables on the file's values; unknown names are an error."""
    merged, problems = _env_errors(data, env)
    if problems:
        raise ConfigError("\n".join(problems))
    return merged


def problems_of(data: Mapping[str, Any]) -> list[str]:
    """Every broken rule of the data, one line each (key, value, rule)."""
    validator = Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(error) for error in errors]


def validate(data: Mapping[str, Any]) -> None:
    """Raise ConfigError naming every broken rule at once (key, value, rule), one per line."""
    problems = problems_of(data)
    if problems:
        raise ConfigError("\n".join(problems))


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    spec = schema()["properties"][name]["properties"]
    values = {key: prop.get("default") for key, prop in spec.items()}
    values.update(data.get(name, {}))
    return values


def build(data: Mapping[str, Any]) -> Settings:
    """Validated dict → Settings with defaults filled in."""
    validate(data)
    data_dir = Path(str(data.get("data_dir", "./data")))
    server = _section(data, "server")
    server["allowed_origins"] = tuple(server["allowed_origins"])
    database = _section(data, "database")
    url = database["url"] or f"sqlite+aiosqlite:///{data_dir / 'printforge.db'}"
    webhooks = _section(data, "webhooks")
    notify = _section(data, "notify")
    for name, section in (("webhooks", webhooks), ("notify", notify)):
        section["allow_networks"] = list(section["allow_networks"])
        for network in section["allow_networks"]:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"config: {name}.allow_networks = {network!r}: not a network in CIDR form,"
                    " e.g. 192.168.1.0/24 (rule: cidr)"
                ) from None
    return Settings(
        data_dir=data_dir,
        database_url=url,
        server=ServerSettings(**server),
        auth=AuthSettings(**_section(data, "auth")),
        rate_limit=RateLimitSettings(**_section(data, "rate_limit")),
        simulator=SimulatorSettings(**_section(data, "simulator")),
        mqtt=MqttSettings(**_section(data, "mqtt")),
        outbox=OutboxSettings(**_section(data, "outbox")),
        webhooks=WebhookSettings(**webhooks),
        notify=NotifySettings(**notify),
        files=FileSettings(**_section(data, "files")),
        printers=PrinterSettings(**_section(data, "printers")),
        queue=QueueSettings(**_section(data, "queue")),
    )


def read_file(path: str | Path | None) -> dict[str, Any]:
    """Parse a TOML configuration file (an absent path means an empty configuration)."""
    if path is None:
        return {}
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {file}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {file} is not valid TOML: {exc}") from None


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the file, overlay the environment, validate and return Settings."""
    data = read_file(path)
    merged, problems = _env_errors(data, os.environ if env is None else env)
    problems += problems_of(merged)
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))
    return build(merged)
