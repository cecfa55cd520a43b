"""OpenAPI 3.1 document built from the route registry and the same JSON Schemas that validate requests."""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from api import schemas
from api.registry import REGISTRY, Endpoint
from hub.runtime import package_version

ERROR_TEXT = {
    400: "Bad request: the body or query breaks a rule (the problem names the field)",
    401: "Not authenticated",
    403: "Not authorized for this role",
    404: "Not found",
    409: "Conflict with the current state",
    413: "The body is larger than the API takes",
    415: "Unsupported media type: a JSON body sent without Content-Type: application/json,"
    " or an upload that is not a print file",
    429: "Too many requests (see Retry-After)",
    503: "The database is unreachable for now (see Retry-After)",
    504: "The printer did not answer in time",
}


UPLOAD_TEXT = (
    "A print file: G-code (`.gcode`) or a 3MF project (`.3mf`, `.gcode.3mf`), as the multipart"
    " part `file` (its file name gives the type) or as the raw body with `?filename=`. Any other"
    " type, or content that is not what its name says, is answered 415."
)

# Text the API refuses whatever the field (no database column can store it): NUL. Stated in
# the document so clients and generators know the rule the server applies.
NO_NUL = "^[^\\u0000]*$"


def storable(schema: Any) -> Any:
    """A copy of a request schema whose string fields carry the no-NUL pattern."""
    if isinstance(schema, list):
        return [storable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: storable(v) for k, v in schema.items()}
    kind = out.get("type")
    is_text = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_text and "pattern" not in out and "enum" not in out and "const" not in out:
        out["pattern"] = NO_NUL
    if kind == "object" and out.get("additionalProperties") is not False:
        out.setdefault("propertyNames", {"pattern": NO_NUL})
        out.setdefault("additionalProperties", {"$ref": "#/components/schemas/JsonValue"})
    return out


# Any JSON value the API can store: strings and keys without NUL, all the way down.
JSON_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        },
    ]
}


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": f"{ep.method.lower()}_{ep.openapi_path.strip('/').replace('/', '_')}".replace(
            "{", ""
        ).replace("}", ""),
        "tags": [ep.tag],
        "x-required-role": ep.role or "public",
    }
    if ep.role is not None:
        op["security"] = [{"bearerAuth": []}]
    else:
        op["security"] = []
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": ep.path_schema(name)}
        for name in ep.path_params
    ]
    if ep.query:
        for name, prop in ep.query.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": not ep.optional_body,
            "content": {"application/json": {"schema": storable(ep.body)}},
        }
    if ep.upload:
        binary = {"type": "string", "format": "binary"}
        op["requestBody"] = {
            "required": True,
            "description": UPLOAD_TEXT,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": binary},
                    }
                },
                "application/octet-stream": {"schema": binary},
            },
        }
    success: dict[str, Any] = {"description": HTTPStatus(ep.status).phrase}
    if ep.response is not None and ep.status != 204:
        success["content"] = {ep.content_type: {"schema": copy.deepcopy(ep.response)}}
    responses: dict[str, Any] = {str(ep.status): success}
    if ep.rules:
        op["description"] = "Rules beyond the schemas:\n" + "\n".join(
            f"- {r.status} naming `{r.field}` (rule `{r.rule}`): {r.text}" for r in ep.rules
        )
        op["x-rules"] = [
            {"status": r.status, "field": r.field, "rule": r.rule, "description": r.text}
            for r in ep.rules
        ]
    codes = set(ep.errors) | {r.status for r in ep.rules} | {429, 500, 503}
    if ep.role is not None:
        codes |= {401, 403}
    if ep.body is not None:
        codes |= {400, 413, 415}
    if ep.query is not None:
        codes.add(400)
    for code in sorted(codes):
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    op["responses"] = responses
    return op


def build() -> dict[str, Any]:
    """The whole OpenAPI document."""
    paths: dict[str, Any] = {}
    for ep in sorted(REGISTRY, key=lambda e: (e.openapi_path, e.method)):
        paths.setdefault(ep.openapi_path, {})[ep.method.lower()] = _operation(ep)
    problem_content = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    error_responses = {
        f"E{code}": {
            "description": ERROR_TEXT.get(code, HTTPStatus(code).phrase),
            "content": problem_content,
        }
        for code in (400, 401, 403, 404, 409, 413, 415, 429, 500, 503, 504)
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "3DPrintForge API",
            "version": package_version(),
            "description": (
                "REST API of the 3DPrintForge print-farm hub. Authenticate with "
                "`POST /api/auth/login` and send `Authorization: Bearer <token>`. "
                "Each operation's `x-required-role` names the least role allowed. "
                "Rate limit: 200 requests per minute, 20 per second per client."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": sorted(({"name": t} for t in {e.tag for e in REGISTRY}), key=lambda t: t["name"]),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Problem": schemas.PROBLEM, "JsonValue": JSON_VALUE},
            "responses": error_responses,
        },
    }
