"""The OpenAPI document matches the route registry and validates; the docs page is self-hosted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from api import openapi, openapi_dump
from api.blueprints.docs import ASSETS
from api.registry import REGISTRY
from tests.api.conftest import Api
from tests.conftest import ONE_ENGINE

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build()


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_endpoint_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    registered = {(ep.openapi_path, ep.method.lower()) for ep in REGISTRY}
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == registered


@ONE_ENGINE
def test_documented_operations_are_served(api: Api, document: dict[str, Any]) -> None:
    adapter = api.app.url_map.bind("localhost")
    for path, item in document["paths"].items():
        # A value every path parameter takes (some are UUID-shaped only).
        concrete = re.sub(r"\{[a-z_]+\}", "0b6f2c1e-4d3a-4e5f-8a9b-1c2d3e4f5a6b", path)
        for method in item:
            endpoint, _ = adapter.match(concrete, method=method.upper())
            assert endpoint, (method, path)


def test_schemas_are_the_validating_schemas(document: dict[str, Any]) -> None:
    for ep in REGISTRY:
        op = document["paths"][ep.openapi_path][ep.method.lower()]
        assert op["summary"] == ep.summary
        assert op["tags"] == [ep.tag]
        if ep.upload:
            content = op["requestBody"]["content"]
            assert set(content) == {"multipart/form-data", "application/octet-stream"}
        elif ep.body is None:
            assert "requestBody" not in op
        else:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            # The validating schema plus the no-NUL rule the server checks on every body.
            assert schema == openapi.storable(ep.body)
            Draft202012Validator.check_schema(schema)
        if ep.response is not None and ep.status != 204:
            assert op["responses"][str(ep.status)]["content"][ep.content_type]["schema"] == (
                ep.response
            )
        query = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
        assert query == (ep.query or {}).get("properties", {})
        path_params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert path_params == ep.path_params
        for p in op.get("parameters", []):
            if p["in"] == "path":
                assert p["schema"] == ep.path_schema(p["name"])
        # Rules no schema can state are published with the operation, with their status.
        assert op.get("x-rules", []) == [
            {"status": r.status, "field": r.field, "rule": r.rule, "description": r.text}
            for r in ep.rules
        ]
        for r in ep.rules:
            assert str(r.status) in op["responses"] and r.text in op["description"]
        assert str(ep.status) in op["responses"]
        for code in ep.errors:
            assert str(code) in op["responses"], f"{ep.method} {ep.rule} does not document {code}"


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target: Any = document
                for part in ref.removeprefix("#/").split("/"):
                    assert part in target, f"dangling $ref {ref}"
                    target = target[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


@ONE_ENGINE
async def test_served_document_is_the_built_one(api: Api, document: dict[str, Any]) -> None:
    r = await api.client.get("/api/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert await r.get_json() == document


def test_committed_document_is_current(document: dict[str, Any]) -> None:
    assert COMMITTED.exists(), "docs/openapi.json is missing"
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == document, (
        "docs/openapi.json is stale: regenerate it with `python -m api.openapi_dump docs/openapi.json`"
    )


def test_dump_writes_the_document(tmp_path: Path, document: dict[str, Any]) -> None:
    out = tmp_path / "openapi.json"
    assert openapi_dump.main([str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert json.loads(text) == document
    assert text.endswith("}\n")
    assert openapi_dump.main(["a", "b"]) == 2


@ONE_ENGINE
async def test_docs_page_uses_only_local_assets(api: Api) -> None:
    r = await api.client.get("/api/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    html = await r.get_data(as_text=True)
    assert not re.search(r"(https?:)?//[a-z0-9]", html, re.I), "the page references another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        assert len(await asset.get_data()) > 0
    init = await (await api.client.get("/api/docs/init.js")).get_data(as_text=True)
    assert "'/api/openapi.json'" in init
    # Swagger UI's default online validator badge would call validator.swagger.io.
    assert "validatorUrl: null" in init
    assert not re.search(r"https?://", init)


@ONE_ENGINE
async def test_docs_assets_cannot_escape_their_folder(api: Api) -> None:
    for path in ("/api/docs/assets/../../../pyproject.toml", "/api/docs/assets/%2e%2e/x"):
        r = await api.client.get(path)
        assert r.status_code == 404


def test_bundled_swagger_ui_renders_openapi_31(document: dict[str, Any]) -> None:
    # Swagger UI learned OpenAPI 3.1 in its major version 5 (the `isOAS31` selector).
    bundle = (ASSETS / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    assert document["openapi"].startswith("3.1.")
    assert "isOAS31" in bundle
