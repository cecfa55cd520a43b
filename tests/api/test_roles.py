"""Every registered endpoint enforces its declared role; no route escapes the registry."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from api.registry import REGISTRY, ROLES, Endpoint
from tests.api.conftest import PASSWORDS, Api, assert_problem
from tests.conftest import ONE_ENGINE

# Public routes outside the registry: the interactive docs page and its static assets.
DOCS_ROUTES = {
    ("GET", "/api/docs"),
    ("GET", "/api/docs/init.js"),
    ("GET", "/api/docs/assets/<path:name>"),
    # The dashboard's page and static files: public, like any login page; its data comes
    # from the role-checked API.
    ("GET", "/"),
    ("GET", "/ui/<path:name>"),
}

# WebSocket routes authenticate on their own (Bearer header or a first `auth` message).
WEBSOCKET_ROUTES = {"/ws"}

# A minimal valid body per endpoint that takes one (checked against the endpoint's schema).
SAMPLE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/auth/login"): {"username": "viewer", "password": PASSWORDS["viewer"]},
    ("POST", "/api/users"): {
        "username": "role-probe",
        "password": "probe-pass-1",
        "role": "viewer",
    },
    ("PUT", "/api/users/<user_id>"): {"role": "viewer"},
    ("POST", "/api/printers"): {"name": "probe", "protocol": "moonraker", "host": "127.0.0.9"},
    ("PUT", "/api/printers/<printer_id>"): {"name": "renamed"},
    ("POST", "/api/printers/<printer_id>/command"): {"command": "pause"},
    ("POST", "/api/filaments"): {"material": "PLA", "color": "#FF8800"},
    ("PUT", "/api/filaments/<spool_id>"): {"name": "probe"},
    ("POST", "/api/webhooks"): {"url": "https://example.com/hook", "events": ["*"]},
    ("PUT", "/api/webhooks/<webhook_id>"): {"description": "probe"},
    ("POST", "/api/notifications/channels"): {"name": "probe", "url": "ntfy://probe"},
}


def _minimal(schema: dict[str, Any]) -> Any:
    """A small instance for schemas nobody wrote a sample for (required properties only)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = list(schema.get("required", []))
        if not required and schema.get("minProperties") and props:
            required = [next(iter(props))]
        return {name: _minimal(props.get(name, {})) for name in required}
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return None


def _body(ep: Endpoint) -> Any:
    if ep.body is None:
        return None
    body = SAMPLE_BODIES.get((ep.method, ep.rule))
    if body is None:
        body = _minimal(ep.body)
    errors = list(Draft202012Validator(ep.body).iter_errors(body))
    assert not errors, f"sample body for {ep.method} {ep.rule} is invalid: {errors[0].message}"
    return body


def _path(ep: Endpoint) -> str:
    return ep.fill({name: "00000000-0000-0000-0000-000000000000" for name in ep.path_params})


async def _call(api: Api, ep: Endpoint, headers: dict[str, str]) -> Any:
    body = _body(ep)
    kwargs: dict[str, Any] = {"method": ep.method, "headers": headers}
    if body is not None:
        kwargs["json"] = body
    return await api.client.open(_path(ep), **kwargs)


def _label(ep: Endpoint) -> str:
    return f"{ep.method} {ep.rule}"


@ONE_ENGINE
async def test_every_endpoint_enforces_its_role(api: Api) -> None:
    assert len(REGISTRY) >= 15
    failures: list[str] = []
    for ep in REGISTRY:
        # No token at all.
        r = await _call(api, ep, {})
        if ep.role is None:
            if r.status_code in (401, 403):
                failures.append(f"{_label(ep)}: public but answered {r.status_code} without token")
        else:
            if r.status_code != 401:
                failures.append(f"{_label(ep)}: no token gave {r.status_code}, not 401")
            else:
                await assert_problem(r, 401, "unauthorized")
        least = ROLES.index(ep.role) if ep.role else 0
        for rank, role in enumerate(ROLES):
            # A fresh token per call: logout revokes the token it is called with.
            r = await _call(api, ep, api.fresh_auth(role))
            if rank < least:
                if r.status_code != 403:
                    failures.append(f"{_label(ep)}: role {role} gave {r.status_code}, not 403")
                else:
                    await assert_problem(r, 403, "forbidden")
            elif r.status_code in (401, 403):
                text = await r.get_data(as_text=True)
                failures.append(f"{_label(ep)}: role {role} refused ({r.status_code}): {text}")
    assert failures == [], "\n".join(failures)


@ONE_ENGINE
async def test_every_declared_role_is_known_and_documented(api: Api) -> None:
    r = await api.client.get("/api/openapi.json")
    doc = await r.get_json()
    for ep in REGISTRY:
        assert ep.role in (None, *ROLES)
        op = doc["paths"][ep.openapi_path][ep.method.lower()]
        assert op["x-required-role"] == (ep.role or "public")
        assert op["security"] == ([] if ep.role is None else [{"bearerAuth": []}])


@ONE_ENGINE
def test_no_route_escapes_the_registry(api: Api) -> None:
    registered = {(ep.method, ep.rule) for ep in REGISTRY}
    assert len(registered) == len(REGISTRY), "an endpoint is registered twice"
    served: set[tuple[str, str]] = set()
    for rule in api.app.url_map.iter_rules():
        if rule.websocket:
            assert rule.rule in WEBSOCKET_ROUTES, f"unexpected WebSocket route {rule.rule}"
            continue
        for method in rule.methods or ():
            if method in ("HEAD", "OPTIONS"):
                continue
            served.add((method, rule.rule))
    unknown = served - registered - DOCS_ROUTES
    assert unknown == set(), f"routes without a declared role: {sorted(unknown)}"
    # And every registered endpoint is actually routed.
    assert registered - served == set()
