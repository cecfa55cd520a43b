"""Protocol facts come from the manifests: printer schemas, secrets, ports and the command catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from api import schemas
from hub.protocols import command_schema, printer_schemas, secret_fields
from integrations.loader import Catalog
from integrations.printers.commands import CATALOGUE, InvalidParams, validate_params
from integrations.printers.registry import DriverRegistry, default_registry

TOY = Path(__file__).parents[1] / "integrations" / "toy"


def test_the_api_printer_schema_is_composed_from_the_shipped_manifests() -> None:
    manifests = default_registry().manifests()
    assert schemas.PRINTER_CREATE["properties"]["protocol"]["enum"] == sorted(manifests)
    for protocol, manifest in manifests.items():
        secrets = manifest.config_schema.get("properties", {}).get("secrets", {})
        for name in secrets.get("properties", {}):
            assert schemas.PRINTER_CREATE["properties"][name]["writeOnly"] is True
            assert name not in schemas.PRINTER["properties"], f"{protocol} secret {name} shown"
    validator = Draft202012Validator(schemas.PRINTER_CREATE)
    bambu = {"name": "X1", "protocol": "bambu", "host": "h"}
    assert [e.message for e in validator.iter_errors(bambu)] == [
        "'serial' is a required property",
        "'access_code' is a required property",
    ]
    assert not list(validator.iter_errors({**bambu, "serial": "S", "access_code": "c"}))


def test_a_new_printer_plug_in_joins_the_schema_with_its_own_facts() -> None:
    registry = DriverRegistry(catalog=Catalog().with_root(TOY, "tests.integrations.toy"))
    composed = printer_schemas(registry.manifests().values())
    assert "toy" in composed["create"]["properties"]["protocol"]["enum"]
    assert secret_fields(registry.manifests().values()) == [
        "access_code", "api_key", "username", "password",
    ]  # fmt: skip
    assert registry.manifest("toy").default_port == 4242


@pytest.mark.parametrize(
    ("heater", "target", "ok"),
    [("bed", 150, True), ("bed", 151, False), ("bed", 350, False), ("nozzle", 350, True),
     ("nozzle", 351, False)],
)  # fmt: skip
def test_one_limit_for_the_api_and_the_driver(heater: str, target: float, ok: bool) -> None:
    body = {"command": "set_temperature", "params": {"heater": heater, "target": target}}
    api_errors = list(Draft202012Validator(command_schema()).iter_errors(body))
    assert (api_errors == []) is ok
    if ok:
        assert validate_params("set_temperature", body["params"])["target"] == target
    else:
        assert api_errors[0].validator == "maximum"
        with pytest.raises(InvalidParams, match="'target'"):
            validate_params("set_temperature", body["params"])


def test_every_catalogued_command_is_in_the_api_body() -> None:
    schema = command_schema()
    assert schema["properties"]["command"]["enum"] == list(CATALOGUE)
    with_params = {rule["if"]["properties"]["command"]["const"] for rule in schema["allOf"]}
    assert with_params == {name for name, params in CATALOGUE.items() if params["required"]}
    for params in CATALOGUE.values():
        Draft202012Validator.check_schema(params)
