"""Protocol facts for the API and the CLI, composed from the printer plug-ins' manifests.

Nothing here lists a protocol, a port or a secret: the printer record's JSON Schemas (and so
the OpenAPI document) are built from the drivers' manifests and config schemas, and the command
body from the one command catalogue (integrations/printers/commands.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from hub.errors import Invalid
from integrations.printers.commands import CATALOGUE
from integrations.printers.registry import DriverManifest, DriverRegistry, default_registry

_SECRET = {"type": ["string", "null"], "minLength": 1, "maxLength": 256, "writeOnly": True}


def secret_fields(manifests: Iterable[DriverManifest]) -> list[str]:
    """Every secret some driver takes (its config schema's `secrets`), in manifest order."""
    names: dict[str, None] = {}
    for manifest in manifests:
        secrets = manifest.config_schema.get("properties", {}).get("secrets", {})
        names.update(dict.fromkeys(secrets.get("properties", {})))
    return list(names)


def printer_fields(manifests: Iterable[DriverManifest]) -> dict[str, Any]:
    """The properties of a printer record: the common ones, the protocols and their secrets."""
    manifests = list(manifests)
    return {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "protocol": {"enum": sorted(m.protocol for m in manifests)},
        "host": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": r"^[A-Za-z0-9.:\[\]_-]+$",
        },
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "serial": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "model": {"type": ["string", "null"], "maxLength": 64},
        "nozzle_diameter": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 2},
        "tags": {
            "type": "array",
            "maxItems": 32,
            "items": {"type": "string", "minLength": 1, "maxLength": 40},
            "uniqueItems": True,
        },
        "enabled": {"type": "boolean"},
        "maintenance": {"type": "boolean"},
        "auto_clear_bed": {"type": "boolean"},
        "ftps_port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
        **{name: dict(_SECRET) for name in secret_fields(manifests)},
    }


def _required_rule(manifest: DriverManifest, secrets: list[str]) -> dict[str, Any]:
    """`if protocol is X then X's required fields are present and not null`."""
    present: dict[str, Any] = {}
    for name in manifest.required_fields:
        present[name] = {"type": "string", **({"writeOnly": True} if name in secrets else {})}
    return {
        "if": {"properties": {"protocol": {"const": manifest.protocol}}},
        "then": {"required": list(manifest.required_fields), "properties": present},
    }


def printer_schemas(manifests: Iterable[DriverManifest]) -> dict[str, dict[str, Any]]:
    """The schemas of a printer record: `create` and `update` bodies and its `fields`."""
    manifests = list(manifests)
    fields = printer_fields(manifests)
    secrets = secret_fields(manifests)
    rules = [_required_rule(m, secrets) for m in manifests if m.required_fields]
    create: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "protocol", "host"],
        "properties": fields,
    }
    if rules:
        create["allOf"] = rules
    return {
        "create": create,
        "update": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": copy.deepcopy(fields),
        },
        "fields": fields,
    }


def command_schema() -> dict[str, Any]:
    """The body of a printer command: its name and its params, per the command catalogue."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["command"],
        "properties": {"command": {"enum": list(CATALOGUE)}, "params": {"type": "object"}},
        "allOf": [
            {
                "if": {"properties": {"command": {"const": name}}},
                "then": {"required": ["params"], "properties": {"params": copy.deepcopy(params)}},
            }
            for name, params in CATALOGUE.items()
            if params["required"]
        ],
    }


def check_required_fields(
    drivers: DriverRegistry, protocol: str, values: Mapping[str, Any]
) -> None:
    """Invalid naming the first field `protocol`'s manifest requires that is missing or empty."""
    for name in drivers.manifest(protocol).required_fields:
        if not values.get(name):
            raise Invalid(f"body field '{name}' breaks rule 'required': a {protocol} printer "
                          "needs it", field=name, rule="required")  # fmt: skip


# The schemas of the drivers shipped with the hub, composed once at start-up.
_SHIPPED = printer_schemas(default_registry().manifests().values())
DEFAULT_PORTS: dict[str, int] = {
    protocol: manifest.default_port for protocol, manifest in default_registry().manifests().items()
}
SECRET_FIELDS: tuple[str, ...] = tuple(secret_fields(default_registry().manifests().values()))
PRINTER_FIELDS: dict[str, Any] = _SHIPPED["fields"]
PRINTER_CREATE: dict[str, Any] = _SHIPPED["create"]
PRINTER_UPDATE: dict[str, Any] = _SHIPPED["update"]
COMMAND: dict[str, Any] = command_schema()
