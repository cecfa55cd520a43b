"""Printers API: create/read/update/delete, validation, conflicts, secrets, status, commands."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from api.registry import REGISTRY
from hub.store import printers as printers_store
from tests.api.conftest import PASSWORDS, Api, assert_problem
from tests.conftest import ONE_ENGINE

MOONRAKER = {"name": "Voron", "protocol": "moonraker", "host": "127.0.0.2", "port": 7125}


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _create(api: Api, body: dict[str, Any]) -> Any:
    return await api.client.post("/api/printers", headers=api.auth("admin"), json=body)


async def _created(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = await _create(api, body)
    assert r.status_code == 201, await r.get_data(as_text=True)
    printer: dict[str, Any] = await r.get_json()
    return printer


async def test_create_get_list_update_delete(api: Api) -> None:
    body = {**MOONRAKER, "model": "Voron 2.4", "nozzle_diameter": 0.4, "tags": ["abs", "big"]}
    r = await _create(api, body)
    assert r.status_code == 201
    created = await r.get_json()
    assert created["id"]
    assert r.headers["Location"] == f"/api/printers/{created['id']}"
    for key, value in body.items():
        assert created[key] == value
    assert created["enabled"] is True and created["serial"] is None
    assert created["has_secret"] == {}

    got = await api.client.get(r.headers["Location"], headers=api.auth("viewer"))
    assert got.status_code == 200
    assert await got.get_json() == created

    listing = await (await api.client.get("/api/printers", headers=api.auth("viewer"))).get_json()
    assert listing == {"items": [created], "total": 1}

    r = await api.client.put(
        f"/api/printers/{created['id']}",
        headers=api.auth("admin"),
        json={"name": "Voron Two", "tags": [], "enabled": False, "nozzle_diameter": None},
    )
    assert r.status_code == 200
    updated = await r.get_json()
    assert updated["name"] == "Voron Two" and updated["tags"] == [] and updated["enabled"] is False
    assert updated["nozzle_diameter"] is None
    assert updated["host"] == body["host"] and updated["model"] == "Voron 2.4"
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] >= created["updated_at"]
    stored = await printers_store.get(api.hub.db, created["id"])
    assert stored is not None and stored.name == "Voron Two" and stored.enabled is False

    r = await api.client.delete(f"/api/printers/{created['id']}", headers=api.auth("admin"))
    assert r.status_code == 204
    await assert_problem(
        await api.client.get(f"/api/printers/{created['id']}", headers=api.auth("viewer")), 404
    )
    assert await printers_store.get(api.hub.db, created["id"]) is None
    assert created["id"] not in api.hub.printers


async def test_protocol_default_ports(api: Api) -> None:
    expected = {"bambu": 8883, "moonraker": 7125, "prusalink": 80, "octoprint": 80}
    for i, (protocol, port) in enumerate(expected.items()):
        body: dict[str, Any] = {"name": protocol, "protocol": protocol, "host": f"127.0.1.{i + 1}"}
        if protocol == "bambu":
            body.update(serial="01P00A000000001", access_code="12345678")
        printer = await _created(api, body)
        assert printer["port"] == port, protocol
        assert api.hub.printers[printer["id"]].port == port
    # An explicit port wins.
    printer = await _created(api, {**MOONRAKER, "port": 7126})
    assert printer["port"] == 7126


@ONE_ENGINE
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X1", "protocol": "bambu", "host": "127.0.2.1", "access_code": "1234"}, "serial"),
        ({"name": "X1", "protocol": "bambu", "host": "127.0.2.1", "serial": "S1"}, "access_code"),
        (
            {
                "name": "X1",
                "protocol": "bambu",
                "host": "127.0.2.1",
                "serial": None,
                "access_code": "1",
            },
            "serial",
        ),
        (
            {
                "name": "X1",
                "protocol": "bambu",
                "host": "127.0.2.1",
                "serial": "S1",
                "access_code": None,
            },
            "access_code",
        ),
    ],
)
async def test_bambu_needs_serial_and_access_code(api: Api, body: Any, field: str) -> None:
    problem = await assert_problem(await _create(api, body), 400, "validation_error")
    assert problem["errors"][0]["field"] == field
    assert api.hub.printers == {}


@ONE_ENGINE
@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"port": 70000}, "port", "maximum"),
        ({"port": 0}, "port", "minimum"),
        ({"port": "80"}, "port", "type"),
        ({"protocol": "ftp"}, "protocol", "enum"),
        ({"name": None}, "name", "required"),
        ({"name": ""}, "name", "minLength"),
        ({"host": "bad host/x"}, "host", "pattern"),
        ({"colour": "red"}, "colour", "additionalProperties"),
        ({"tags": ["a", "a"]}, "tags", "uniqueItems"),
        ({"nozzle_diameter": 0}, "nozzle_diameter", "exclusiveMinimum"),
        ({"serial": "has space"}, "serial", "pattern"),
        ({"enabled": "yes"}, "enabled", "type"),
    ],
)
async def test_create_validation_names_field_and_rule(
    api: Api, change: dict[str, Any], field: str, rule: str
) -> None:
    body = {**MOONRAKER, **change}
    body = {k: v for k, v in body.items() if not (k == "name" and v is None)}
    problem = await assert_problem(await _create(api, body), 400, "validation_error")
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["rule"] == rule
    assert f"'{field}'" in problem["detail"] and rule in problem["detail"]
    assert api.hub.printers == {}


async def test_update_validation_and_bambu_invariant(api: Api) -> None:
    moon = await _created(api, MOONRAKER)
    bambu = await _created(
        api,
        {
            "name": "X1",
            "protocol": "bambu",
            "host": "127.0.2.2",
            "serial": "S1",
            "access_code": "c",
        },
    )
    admin = api.auth("admin")
    for pid, body, field, rule in [
        (moon["id"], {}, "(body)", "minProperties"),
        (moon["id"], {"port": 65536}, "port", "maximum"),
        (moon["id"], {"id": "other"}, "id", "additionalProperties"),
        # Turning a printer into a Bambu one needs its serial and access code.
        (moon["id"], {"protocol": "bambu"}, "serial", "required"),
        (moon["id"], {"protocol": "bambu", "serial": "S2"}, "access_code", "required"),
        # And a Bambu printer cannot lose them.
        (bambu["id"], {"serial": None}, "serial", "required"),
        (bambu["id"], {"access_code": None}, "access_code", "required"),
    ]:
        r = await api.client.put(f"/api/printers/{pid}", headers=admin, json=body)
        problem = await assert_problem(r, 400, "validation_error")
        assert (problem["errors"][0]["field"], problem["errors"][0]["rule"]) == (field, rule), body
    assert api.hub.printers[moon["id"]].protocol == "moonraker"
    assert api.hub.printers[bambu["id"]].secrets == {"access_code": "c"}
    # With both, the change goes through; the protocol default port follows.
    r = await api.client.put(
        f"/api/printers/{moon['id']}",
        headers=admin,
        json={"protocol": "bambu", "serial": "S2", "access_code": "new-code"},
    )
    assert r.status_code == 200
    assert (await r.get_json())["port"] == 8883


async def test_text_no_database_can_store_is_400(api: Api) -> None:
    headers = {**api.auth("admin"), "Content-Type": "application/json"}
    for raw, field in [
        ('{"name": "a\\u0000b", "protocol": "moonraker", "host": "127.0.3.1"}', "name"),
        ('{"name": "a\\ud800b", "protocol": "moonraker", "host": "127.0.3.1"}', "name"),
        (
            '{"name": "ok", "protocol": "moonraker", "host": "127.0.3.1", "tags": ["\\u0000"]}',
            "tags.0",
        ),
    ]:
        r = await api.client.post("/api/printers", headers=headers, data=raw)
        problem = await assert_problem(r, 400, "invalid_text")
        assert problem["errors"][0]["field"] == field
    r = await api.client.post(
        "/api/auth/login",
        headers={"Content-Type": "application/json"},
        data='{"username": "admin\\u0000", "password": "x"}',
    )
    await assert_problem(r, 400, "invalid_text")
    assert api.hub.printers == {}


async def test_unknown_printer_is_404(api: Api) -> None:
    base = "/api/printers/00000000-0000-0000-0000-000000000000"
    admin = api.auth("admin")
    for method, path, body in [
        ("GET", base, None),
        ("PUT", base, {"name": "x"}),
        ("DELETE", base, None),
        ("GET", f"{base}/status", None),
        ("POST", f"{base}/command", {"command": "pause"}),
    ]:
        kwargs: dict[str, Any] = {"method": method, "headers": admin}
        if body is not None:
            kwargs["json"] = body
        problem = await assert_problem(await api.client.open(path, **kwargs), 404, "not_found")
        assert "00000000-0000-0000-0000-000000000000" in problem["detail"]


async def test_duplicates_are_409_naming_the_field(api: Api) -> None:
    bambu = {
        "name": "A",
        "protocol": "bambu",
        "host": "127.0.4.1",
        "serial": "SER1",
        "access_code": "1",
    }
    first = await _created(api, bambu)
    other = await _created(api, {**MOONRAKER, "host": "127.0.4.2"})

    r = await _create(api, {**bambu, "host": "127.0.4.3"})
    problem = await assert_problem(r, 409, "conflict")
    assert problem["errors"][0]["field"] == "serial"
    assert "SER1" in problem["detail"]

    r = await _create(api, {**bambu, "serial": "SER2"})
    problem = await assert_problem(r, 409, "conflict")
    assert problem["errors"][0]["field"] == "host"
    assert "127.0.4.1:8883" in problem["detail"]

    # The same host on another port is fine.
    await _created(api, {**bambu, "serial": "SER3", "port": 8884})

    admin = api.auth("admin")
    r = await api.client.put(f"/api/printers/{other['id']}", headers=admin, json={"serial": "SER1"})
    assert (await assert_problem(r, 409, "conflict"))["errors"][0]["field"] == "serial"
    r = await api.client.put(
        f"/api/printers/{other['id']}", headers=admin, json={"host": "127.0.4.1", "port": 8883}
    )
    assert (await assert_problem(r, 409, "conflict"))["errors"][0]["field"] == "host"
    # Re-sending a printer's own values is not a clash with itself.
    r = await api.client.put(
        f"/api/printers/{first['id']}", headers=admin, json={"serial": "SER1", "port": 8883}
    )
    assert r.status_code == 200
    assert len(api.hub.printers) == 3


async def test_put_keeps_omitted_secrets_and_replaces_given_ones(api: Api) -> None:
    printer = await _created(
        api,
        {
            "name": "Prusa",
            "protocol": "prusalink",
            "host": "127.0.5.1",
            "username": "maker",
            "password": "pw-original",
            "api_key": "key-original",
        },
    )
    assert printer["has_secret"] == {"username": True, "password": True, "api_key": True}
    pid = printer["id"]
    admin = api.auth("admin")

    r = await api.client.put(f"/api/printers/{pid}", headers=admin, json={"name": "Prusa MK4"})
    assert r.status_code == 200
    expected = {"username": "maker", "password": "pw-original", "api_key": "key-original"}
    assert api.hub.printers[pid].secrets == expected
    stored = await printers_store.get(api.hub.db, pid)
    assert stored is not None and stored.secrets == expected

    r = await api.client.put(
        f"/api/printers/{pid}", headers=admin, json={"password": "pw-new", "api_key": None}
    )
    assert r.status_code == 200
    assert (await r.get_json())["has_secret"] == {"username": True, "password": True}
    expected = {"username": "maker", "password": "pw-new"}
    assert api.hub.printers[pid].secrets == expected
    stored = await printers_store.get(api.hub.db, pid)
    assert stored is not None and stored.secrets == expected


async def test_secrets_never_appear_in_any_response(api: Api) -> None:
    secrets = {
        "access_code": "ACCESS-c0de-7f3a91",
        "api_key": "APIKEY-5be1d0c4e2",
        "username": "USERNAME-q8w7e6",
        "password": "PASSWORD-z9x8c7v6",
    }
    bambu = await _created(
        api,
        {
            "name": "Bambu",
            "protocol": "bambu",
            "host": "127.0.6.1",
            "serial": "SECRETTEST1",
            "access_code": secrets["access_code"],
        },
    )
    octo = await _created(
        api,
        {
            "name": "Octo",
            "protocol": "octoprint",
            "host": "127.0.6.2",
            "api_key": secrets["api_key"],
        },
    )
    prusa = await _created(
        api,
        {
            "name": "Prusa",
            "protocol": "prusalink",
            "host": "127.0.6.3",
            "username": secrets["username"],
            "password": secrets["password"],
        },
    )
    login_secret = "LOGINPW-" + "k" * 1100  # too long: the validation error must not echo it
    user_secret = "Usr-4x"  # too short for a new user's password
    long_secret = "LONG-" + "s" * 300  # over a printer secret's maxLength
    bodies: dict[tuple[str, str], list[Any]] = {
        ("POST", "/api/auth/login"): [
            {"username": "admin", "password": secrets["password"]},
            {"username": "admin", "password": login_secret},
        ],
        ("POST", "/api/users"): [
            {"username": "leaky", "password": user_secret, "role": "viewer"},
            {"username": "leaky", "password": secrets["password"], "role": "viewer"},
        ],
        ("PUT", "/api/users/<user_id>"): [{"password": user_secret}],
        ("POST", "/api/printers"): [
            {**MOONRAKER, "host": "127.0.6.1", "port": 8883, "api_key": secrets["api_key"]},
            {**MOONRAKER, "host": "127.0.6.9", "access_code": long_secret},
            {**MOONRAKER, "port": 0, "password": secrets["password"]},
            ["list", secrets["password"]],
            {
                "name": "dup",
                "protocol": "bambu",
                "host": "127.0.6.8",
                "serial": "SECRETTEST1",
                "access_code": secrets["access_code"],
            },
        ],
        ("PUT", "/api/printers/<printer_id>"): [
            {"name": "renamed"},
            {"access_code": long_secret},
            {"port": 99999, "access_code": secrets["access_code"]},
            {"host": "127.0.6.2", "port": 80, "access_code": secrets["access_code"]},
            {"access_code": secrets["access_code"]},
        ],
        ("POST", "/api/printers/<printer_id>/command"): [
            {"command": "gcode", "params": {"line": "M117 hi"}},
            {"command": "light", "params": {"on": "bright"}},
        ],
    }
    ids = {
        "printer_id": [bambu["id"], octo["id"], prusa["id"]],
        "user_id": [api.users["viewer"].id],
    }
    seen = 0
    leaks: list[str] = []
    for ep in REGISTRY:
        if ep.method not in ("GET", "POST", "PUT"):
            continue
        combos: list[dict[str, str]] = [{}]
        for name in ep.path_params:
            combos = [{**c, name: v} for c in combos for v in ids.get(name, [str(uuid.uuid4())])]
        paths = [ep.fill(c) for c in combos]
        samples: list[Any] = bodies.get((ep.method, ep.rule), [None if ep.body is None else {}])
        for path in paths:
            for body in samples:
                kwargs: dict[str, Any] = {"method": ep.method, "headers": api.fresh_auth("admin")}
                if body is not None:
                    kwargs["json"] = body
                r = await api.client.open(path, **kwargs)
                seen += 1
                text = await r.get_data(as_text=True) + str(dict(r.headers))
                for name, value in {
                    **secrets,
                    "login": login_secret,
                    "user": user_secret,
                    "long": long_secret,
                }.items():
                    # Long secrets: any 12-character piece of them would be a leak too.
                    if value[:12] in text or value in text:
                        leaks.append(f"{ep.method} {path} {body!r:.60}: {name} ({r.status_code})")
    assert seen > 30
    assert leaks == [], "\n".join(leaks)
    # The sweep did not drop the secrets it had no business touching.
    assert api.hub.printers[bambu["id"]].secrets == {"access_code": secrets["access_code"]}
    prusa_secrets = api.hub.printers[prusa["id"]].secrets
    assert prusa_secrets["username"] == secrets["username"]
    assert prusa_secrets["password"] == secrets["password"]
    # The viewer's password is unchanged by the refused attempts to set a short one.
    ok = await api.client.post(
        "/api/auth/login", json={"username": "viewer", "password": PASSWORDS["viewer"]}
    )
    assert ok.status_code == 200


async def test_fresh_printer_status_is_offline(api: Api) -> None:
    printer = await _created(api, {**MOONRAKER, "host": "127.0.0.1", "port": closed_port()})
    r = await api.client.get(f"/api/printers/{printer['id']}/status", headers=api.auth("viewer"))
    assert r.status_code == 200
    status = await r.get_json()
    assert status["printer_id"] == printer["id"]
    assert status["online"] is False
    assert status["state"] == "offline"
    assert status["connection"] != "online"
    assert status["job"] is None


async def test_command_without_a_connected_printer_is_409(api: Api) -> None:
    printer = await _created(api, {**MOONRAKER, "host": "127.0.0.1", "port": closed_port()})
    r = await api.client.post(
        f"/api/printers/{printer['id']}/command",
        headers=api.auth("operator"),
        json={"command": "pause"},
    )
    problem = await assert_problem(r, 409)
    reason = problem["detail"].lower()
    assert "offline" in reason or "not connected" in reason or "no driver" in reason, reason


@ONE_ENGINE
async def test_command_body_is_validated(api: Api) -> None:
    printer = await _created(api, MOONRAKER)
    url = f"/api/printers/{printer['id']}/command"
    for body, field, rule in [
        ({"command": "explode"}, "command", "enum"),
        ({"command": "speed", "params": {"level": 9}}, "params.level", "maximum"),
        ({"command": "light"}, "params", "required"),
        ({}, "command", "required"),
    ]:
        r = await api.client.post(url, headers=api.auth("operator"), json=body)
        problem = await assert_problem(r, 400, "validation_error")
        assert (problem["errors"][0]["field"], problem["errors"][0]["rule"]) == (field, rule)


async def test_a_bed_target_over_the_driver_limit_is_a_400_naming_the_field(api: Api) -> None:
    printer = await _created(api, MOONRAKER)
    r = await api.client.post(
        f"/api/printers/{printer['id']}/command",
        headers=api.auth("operator"),
        json={"command": "set_temperature", "params": {"heater": "bed", "target": 200}},
    )
    problem = await assert_problem(r, 400, "validation_error")
    assert (problem["errors"][0]["field"], problem["errors"][0]["rule"]) == (
        "params.target",
        "maximum",
    )
