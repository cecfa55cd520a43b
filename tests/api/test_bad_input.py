"""Bad input is a clear 4xx problem naming the rule, never a 500, and changes nothing."""

from __future__ import annotations

import json

import pytest

from api.request_json import MAX_DEPTH
from tests.api.conftest import Api, assert_problem

GOOD = {"name": "P", "protocol": "moonraker", "host": "127.0.3.1"}


async def _post(api: Api, raw: bytes | str, content_type: str | None = "application/json"):
    headers = dict(api.auth("admin"))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.client.post("/api/printers", headers=headers, data=raw)


async def test_body_that_is_not_utf8_is_400(api: Api) -> None:
    raw = b'{"name": "\xff\xfe", "protocol": "moonraker", "host": "127.0.3.1"}'
    problem = await assert_problem(await _post(api, raw), 400, "invalid_json")
    assert problem["errors"][0]["rule"] == "encoding"
    assert api.hub.printers == {}


async def test_nesting_beyond_the_limit_is_400(api: Api) -> None:
    for depth in (MAX_DEPTH + 1, 100_000):
        raw = json.dumps({**GOOD, "tags": []})[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
        problem = await assert_problem(await _post(api, raw), 400, "invalid_json")
        assert problem["errors"][0]["rule"] == "max_depth"
    # Right at the limit the body parses and the schema decides (no such field).
    raw = json.dumps({**GOOD, "x": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))})
    problem = await assert_problem(await _post(api, raw), 400, "validation_error")
    assert problem["errors"][0]["field"] == "x"
    assert api.hub.printers == {}


async def test_duplicate_keys_and_non_json_numbers_are_400(api: Api) -> None:
    raw = '{"name": "P", "name": "Q", "protocol": "moonraker", "host": "127.0.3.1"}'
    problem = await assert_problem(await _post(api, raw), 400, "invalid_json")
    assert problem["errors"][0]["rule"] == "duplicate_key" and "'name'" in problem["detail"]
    raw = '{"name": "P", "protocol": "moonraker", "host": "127.0.3.1", "nozzle_diameter": NaN}'
    await assert_problem(await _post(api, raw), 400, "invalid_json")
    assert api.hub.printers == {}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_json_without_its_media_type_is_415(api: Api, content_type: str | None) -> None:
    r = await _post(api, json.dumps(GOOD), content_type)
    await assert_problem(r, 415, "unsupported_media_type")
    assert api.hub.printers == {}
    ok = await _post(api, json.dumps(GOOD), "application/json; charset=utf-8")
    assert ok.status_code == 201


@pytest.mark.parametrize("path", ["/api/users", "/api/notifications", "/api/printers"])
async def test_every_collection_applies_the_same_paging_rules(api: Api, path: str) -> None:
    admin = api.auth("admin")
    for query, field, rule in [
        ("page=0", "page", "minimum"),
        ("page=1000001", "page", "maximum"),
        ("page=99999999999999999999999", "page", "maximum"),
        ("per_page=501", "per_page", "maximum"),
        ("per_page=abc", "per_page", "type"),
        ("limit=5", "limit", "additionalProperties"),
    ]:
        r = await api.client.get(f"{path}?{query}", headers=admin)
        problem = await assert_problem(r, 400, "validation_error")
        assert problem["errors"][0]["field"] == field and problem["errors"][0]["rule"] == rule
    r = await api.client.get(f"{path}?page=1000000&per_page=500", headers=admin)
    body = await r.get_json()
    assert r.status_code == 200 and body["items"] == [] and body["page"] == 1000000


async def test_printers_are_paged_or_listed_whole(api: Api) -> None:
    admin = api.auth("admin")
    for i in range(5):
        body = {
            "name": f"P{i}",
            "protocol": "octoprint",
            "host": f"127.0.3.{i + 1}",
            "enabled": False,
        }
        assert (await api.client.post("/api/printers", headers=admin, json=body)).status_code == 201
    r = await api.client.get("/api/printers?page=2&per_page=2", headers=admin)
    body = await r.get_json()
    assert [p["name"] for p in body["items"]] == ["P2", "P3"]
    assert (body["total"], body["page"], body["per_page"]) == (5, 2, 2)
    whole = await (await api.client.get("/api/printers", headers=admin)).get_json()
    assert [p["name"] for p in whole["items"]] == [f"P{i}" for i in range(5)]
    assert whole["total"] == 5
