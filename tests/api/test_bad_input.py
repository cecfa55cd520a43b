"""Bad input is a clear 4xx problem naming the rule, never a 500, and changes nothing."""

from __future__ import annotations

import json

import pytest

from api.registry import REGISTRY, Endpoint
from api.request_json import MAX_DEPTH
from api.schemas import PAGE_QUERY
from tests.api.conftest import Api, assert_problem
from tests.conftest import ONE_ENGINE

GOOD = {"name": "P", "protocol": "moonraker", "host": "127.0.3.1"}


async def _post(api: Api, raw: bytes | str, content_type: str | None = "application/json"):
    headers = dict(api.auth("admin"))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.client.post("/api/printers", headers=headers, data=raw)


@ONE_ENGINE
async def test_body_that_is_not_utf8_is_400(api: Api) -> None:
    raw = b'{"name": "\xff\xfe", "protocol": "moonraker", "host": "127.0.3.1"}'
    problem = await assert_problem(await _post(api, raw), 400, "invalid_json")
    assert problem["errors"][0]["rule"] == "encoding"
    assert api.hub.printers == {}


@ONE_ENGINE
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


@ONE_ENGINE
async def test_duplicate_keys_and_non_json_numbers_are_400(api: Api) -> None:
    raw = '{"name": "P", "name": "Q", "protocol": "moonraker", "host": "127.0.3.1"}'
    problem = await assert_problem(await _post(api, raw), 400, "invalid_json")
    assert problem["errors"][0]["rule"] == "duplicate_key" and "'name'" in problem["detail"]
    raw = '{"name": "P", "protocol": "moonraker", "host": "127.0.3.1", "nozzle_diameter": NaN}'
    await assert_problem(await _post(api, raw), 400, "invalid_json")
    assert api.hub.printers == {}


@ONE_ENGINE
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_json_without_its_media_type_is_415(api: Api, content_type: str | None) -> None:
    r = await _post(api, json.dumps(GOOD), content_type)
    await assert_problem(r, 415, "unsupported_media_type")
    assert api.hub.printers == {}
    ok = await _post(api, json.dumps(GOOD), "application/json; charset=utf-8")
    assert ok.status_code == 201


# Paging rules every collection applies alike: (query, field named, rule named).
BAD_PAGING = [
    ("page=0", "page", "minimum"),
    ("page=1000001", "page", "maximum"),
    ("page=99999999999999999999999", "page", "maximum"),
    ("per_page=0", "per_page", "minimum"),
    ("per_page=501", "per_page", "maximum"),
    ("per_page=abc", "per_page", "type"),
    ("page=-1", "page", "minimum"),
    ("limit=5", "limit", "additionalProperties"),
    ("offset=10", "offset", "additionalProperties"),
]


def _lists(ep: Endpoint) -> bool:
    return ep.method == "GET" and "items" in (ep.response or {}).get("properties", {})


def test_every_collection_is_paged_with_the_shared_bounds() -> None:
    """Every GET answering a list takes `page`/`per_page` with the same bounds (a `maximum`
    each), refuses unknown query fields and answers the paged envelope."""
    collections = [ep for ep in REGISTRY if _lists(ep)]
    assert len(collections) >= 14
    for ep in collections:
        query = ep.query or {}
        assert query.get("additionalProperties") is False, ep.rule
        for name in ("page", "per_page"):
            assert query["properties"][name] == PAGE_QUERY["properties"][name], (ep.rule, name)
            assert "maximum" in query["properties"][name]
        assert {"page", "per_page"} <= set((ep.response or {})["properties"]), ep.rule


async def _parents(api: Api) -> dict[str, str]:
    """One object of each kind a sub-collection hangs off, by path parameter name."""
    admin = api.auth("admin")
    made: dict[str, str] = {}
    for key, path, body in [
        ("printer_id", "/api/printers", GOOD),
        ("spool_id", "/api/filaments", {"material": "PLA", "color": "#000000"}),
        ("webhook_id", "/api/webhooks", {"url": "https://hooks.example.com/x", "events": ["*"]}),
        ("channel_id", "/api/notifications/channels", {"name": "c", "url": "json://example.com/x"}),
    ]:
        r = await api.client.post(path, headers=admin, json=body)
        assert r.status_code == 201, (path, await r.get_data(as_text=True))
        made[key] = (await r.get_json())["id"]
    return made


async def test_every_collection_applies_the_same_paging_rules(api: Api) -> None:
    admin = api.auth("admin")
    parents = await _parents(api)
    for ep in (ep for ep in REGISTRY if _lists(ep)):
        path = ep.fill(parents)
        for query, field, rule in BAD_PAGING:
            r = await api.client.get(f"{path}?{query}", headers=admin)
            problem = await assert_problem(r, 400, "validation_error")
            named = (problem["errors"][0]["field"], problem["errors"][0]["rule"])
            assert named == (field, rule), (path, query, problem)
        r = await api.client.get(f"{path}?page=1000000&per_page=500", headers=admin)
        body = await r.get_json()
        assert r.status_code == 200, (path, body)
        assert body["items"] == [] and (body["page"], body["per_page"]) == (1000000, 500), path


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
