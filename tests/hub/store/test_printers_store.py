"""Printer repository functions on both engines, with property-based round trips."""

from __future__ import annotations

from typing import Any

import pytest
from databases import Database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from api import schemas
from hub.store import printers as printers_store
from hub.store.printers import SECRET_FIELDS
from integrations.printers.registry import available_protocols

# Text the API accepts (its validator refuses NUL and unpaired surrogates in every string).
chars = st.characters(codec="utf-8", exclude_characters="\x00")
text = st.text(alphabet=chars, min_size=1, max_size=40)
required: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(alphabet=chars, min_size=1, max_size=100),
    "protocol": st.sampled_from(available_protocols()),
    "host": st.from_regex(r"\A[A-Za-z0-9.:_-]{1,60}\Z"),
    "port": st.integers(min_value=1, max_value=65535),
    "serial": st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
    "access_code": text,
}
optional: dict[str, st.SearchStrategy[Any]] = {
    "model": st.none() | st.text(alphabet=chars, max_size=64),
    "nozzle_diameter": st.none()
    | st.floats(min_value=0.01, max_value=2, allow_nan=False, allow_infinity=False),
    "tags": st.lists(text, max_size=5, unique=True),
    "enabled": st.booleans(),
    "api_key": text,
    "username": text,
    "password": text,
}
printer_fields = st.fixed_dictionaries(required, optional=optional)
CREATE = Draft202012Validator(schemas.PRINTER_CREATE)


def _same(row: printers_store.PrinterRow, data: dict[str, Any]) -> None:
    assert row.name == data["name"]
    assert row.protocol == data["protocol"]
    assert row.host == data["host"]
    assert row.port == data["port"]
    assert row.serial == data.get("serial")
    assert row.model == data.get("model")
    assert row.nozzle_diameter == data.get("nozzle_diameter")
    assert row.tags == data.get("tags", [])
    assert row.enabled is data.get("enabled", True)
    assert row.secrets == {k: data[k] for k in SECRET_FIELDS if data.get(k) is not None}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=printer_fields)
async def test_round_trip(db: Database, data: dict[str, Any]) -> None:
    assert not list(CREATE.iter_errors(data)), "the strategy must produce API-valid printers"
    created = await printers_store.create(db, data)
    try:
        _same(created, data)
        fetched = await printers_store.get(db, created.id)
        assert fetched == created
        assert await printers_store.list_all(db) == [created]
        public = created.public()
        assert not set(SECRET_FIELDS) & set(public)
        assert public["has_secret"] == {k: True for k in created.secrets}
    finally:
        await printers_store.delete(db, created.id)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=printer_fields, second=printer_fields)
async def test_replace_round_trip(
    db: Database, first: dict[str, Any], second: dict[str, Any]
) -> None:
    created = await printers_store.create(db, first)
    try:
        replaced = await printers_store.replace(db, created, second)
        expected_secrets = {
            **created.secrets,
            **{k: second[k] for k in SECRET_FIELDS if k in second},
        }
        assert replaced.secrets == expected_secrets
        assert replaced.id == created.id and replaced.created_at == created.created_at
        assert await printers_store.get(db, created.id) == replaced
        for key in ("name", "protocol", "host", "port", "serial", "tags", "enabled"):
            if key in second:
                assert getattr(replaced, key) == second[key]
            else:
                assert getattr(replaced, key) == getattr(created, key)
    finally:
        await printers_store.delete(db, created.id)


async def test_replace_keeps_and_clears_secrets(db: Database) -> None:
    row = await printers_store.create(
        db,
        {
            "name": "p",
            "protocol": "prusalink",
            "host": "h",
            "port": 80,
            "password": "a",
            "api_key": "b",
        },
    )
    kept = await printers_store.replace(db, row, {"name": "q"})
    assert kept.secrets == {"password": "a", "api_key": "b"}
    changed = await printers_store.replace(db, kept, {"password": "c", "api_key": None})
    assert changed.secrets == {"password": "c"}
    stored = await printers_store.get(db, row.id)
    assert stored is not None and stored.secrets == {"password": "c"} and stored.name == "q"


async def test_list_orders_by_name(db: Database) -> None:
    for i, name in enumerate(("zeta", "alpha", "mid")):
        await printers_store.create(
            db, {"name": name, "protocol": "octoprint", "host": f"h{i}", "port": 80}
        )
    assert [p.name for p in await printers_store.list_all(db)] == ["alpha", "mid", "zeta"]


async def test_conflicts(db: Database) -> None:
    a = await printers_store.create(
        db, {"name": "a", "protocol": "bambu", "host": "h", "port": 8883, "serial": "S1"}
    )
    assert await printers_store.conflict(db, serial="S1", host="x", port=1) == "serial"
    assert await printers_store.conflict(db, serial="S2", host="h", port=8883) == "host"
    assert await printers_store.conflict(db, serial=None, host="h", port=8883) == "host"
    assert await printers_store.conflict(db, serial="S2", host="h", port=8884) is None
    assert (
        await printers_store.conflict(db, serial="S1", host="h", port=8883, exclude_id=a.id) is None
    )
    # The database enforces the same rules if two writers race past the check.
    with pytest.raises(Exception):  # noqa: B017
        await printers_store.create(
            db, {"name": "b", "protocol": "bambu", "host": "other", "port": 1, "serial": "S1"}
        )
    with pytest.raises(Exception):  # noqa: B017
        await printers_store.create(
            db, {"name": "c", "protocol": "octoprint", "host": "h", "port": 8883}
        )


async def test_delete(db: Database) -> None:
    row = await printers_store.create(
        db, {"name": "d", "protocol": "moonraker", "host": "h", "port": 1}
    )
    assert await printers_store.delete(db, row.id) is True
    assert await printers_store.delete(db, row.id) is False
    assert await printers_store.get(db, row.id) is None
