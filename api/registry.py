"""Route registry: each endpoint declares its role and JSON Schemas once; auth, validation and OpenAPI follow."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from quart import Blueprint, Response, current_app, g, request
from werkzeug.routing import BaseConverter

from api import request_json
from api.errors import ApiError
from hub.auth import Principal
from hub.store.users import ROLES
from hub.validation import validation_errors


@dataclass(frozen=True)
class Rule:
    """A rule no JSON Schema can state (relative to the current time, across two fields, or the
    caller's own secret): published with the operation, answered as `status` naming `field`."""

    status: int
    field: str
    rule: str
    text: str


@dataclass(frozen=True)
class Endpoint:
    """One declared API operation."""

    method: str
    rule: str
    role: str | None
    summary: str
    tag: str
    body: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    upload: bool = False  # the body is a file (multipart `file` or raw), read by the handler
    optional_body: bool = False  # an empty body stands for `{}`
    rules: tuple[Rule, ...] = ()

    @property
    def openapi_path(self) -> str:
        """The rule with `<id>` written as `{id}`."""
        return _PARAM.sub(r"{\2}", self.rule)

    @property
    def path_params(self) -> list[str]:
        """Names of the path parameters."""
        return [name for _, name in _PARAM.findall(self.rule)]

    def path_schema(self, name: str) -> dict[str, Any]:
        """The JSON Schema of one path parameter (a UUID for `<uuid:name>`)."""
        converters = {param: conv for conv, param in _PARAM.findall(self.rule)}
        if converters.get(name) == "uuid":
            return {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
        return {"type": "string"}

    def fill(self, values: dict[str, str]) -> str:
        """The rule with each path parameter replaced by its value in `values`."""
        return _PARAM.sub(lambda m: values[m.group(2)], self.rule)


@dataclass
class Ctx:
    """What a handler gets: the caller, the validated body and query."""

    principal: Principal | None
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)


REGISTRY: list[Endpoint] = []

_PARAM = re.compile(r"<(?:([a-z]+):)?([a-z_]+)>")
UUID_PATTERN = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


class UuidText(BaseConverter):
    """`<uuid:name>`: a path segment shaped like a UUID, kept as text. Ids of collections that
    also have fixed sub-paths (`/api/queue/dispatch`, `/api/history/stats`) use it, so those
    paths never match the id route and `Allow` lists only what the path really takes."""

    regex = UUID_PATTERN[1:-1]


@dataclass(frozen=True)
class Page:
    """The page a paginated collection request asked for (`page`, `per_page` query fields)."""

    page: int
    per_page: int

    @classmethod
    def of(cls, ctx: Ctx) -> Page:
        """The validated paging fields of a request, with their defaults."""
        return cls(int(ctx.query.get("page", 1)), int(ctx.query.get("per_page", 50)))

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.per_page

    def envelope(self, items: list[Any], total: int) -> dict[str, Any]:
        """The `{"items", "total", "page", "per_page"}` answer."""
        return {"items": items, "total": total, "page": self.page, "per_page": self.per_page}


Handler = Callable[..., Awaitable[Any]]


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def unstorable_text(data: Any, path: str = "") -> str | None:
    """The field of the first string (or key) holding NUL or a lone surrogate, which no
    database column can store; None when every string is fine."""
    if isinstance(data, str):
        return (path or "(body)") if _UNSTORABLE.search(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if _UNSTORABLE.search(str(key)):
                return where
            found = unstorable_text(value, where)
            if found:
                return found
    if isinstance(data, list):
        for index, value in enumerate(data):
            found = unstorable_text(value, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def _raise_invalid(where: str, errors: list[dict[str, str]]) -> None:
    first = errors[0]
    raise ApiError(
        400,
        "validation_error",
        f"{where} field '{first['field']}' breaks rule '{first['rule']}': {first['message']}",
        extra={"errors": errors},
    )


def _coerce_query(schema: dict[str, Any], args: Any) -> dict[str, Any]:
    """Query strings → the types the query schema declares."""
    out: dict[str, Any] = {}
    props = schema.get("properties", {})
    for key in args:
        raw = args.get(key)
        kind = props.get(key, {}).get("type")
        if kind == "integer":
            try:
                out[key] = int(raw)
            except ValueError:
                out[key] = raw
        elif kind == "boolean":
            out[key] = {"true": True, "1": True, "false": False, "0": False}.get(raw.lower(), raw)
        else:
            out[key] = raw
    return out


def current_principal() -> Principal:
    """The caller of an authenticated request, or 401."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        reason = (
            g.get("auth_error") or "authentication required: send 'Authorization: Bearer <token>'"
        )
        raise ApiError(401, "unauthorized", reason, headers={"WWW-Authenticate": "Bearer"})
    return principal


def endpoint(
    bp: Blueprint,
    method: str,
    rule: str,
    *,
    role: str | None,
    summary: str,
    tag: str,
    body: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    content_type: str = "application/json",
    upload: bool = False,
    optional_body: bool = False,
    rules: tuple[Rule, ...] = (),
) -> Callable[[Handler], Handler]:
    """Declare and register an endpoint: `role` None means public; `rules` lists what the
    schemas cannot say."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    spec = Endpoint(
        method, rule, role, summary, tag, body, query, response, status, errors, content_type,
        upload, optional_body, rules,
    )  # fmt: skip
    REGISTRY.append(spec)
    body_validator = Draft202012Validator(body) if body is not None else None
    query_validator = Draft202012Validator(query) if query is not None else None

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def view(**path: Any) -> Any:
            principal = None
            if role is not None:
                principal = current_principal()
                if not principal.allows(role):
                    raise ApiError(
                        403, "forbidden", f"this operation needs role '{role}' or higher"
                    )
            ctx = Ctx(principal=principal)
            if query_validator is not None:
                ctx.query = _coerce_query(query or {}, request.args)
                errs = validation_errors(query_validator, ctx.query)
                if errs:
                    _raise_invalid("query", errs)
            if body_validator is not None:
                max_body = current_app.config.get("MAX_JSON_BODY", 1_000_000)
                if (
                    optional_body
                    and not request.content_length
                    and not (await request.get_data()).strip()
                ):
                    data = {}
                else:
                    data = await request_json.read(request, max_body)
                bad = unstorable_text(data)
                if bad is not None:
                    message = "text must not contain NUL (U+0000) or unpaired surrogates"
                    raise ApiError(
                        400,
                        "invalid_text",
                        f"body field '{bad}': {message}",
                        extra={"errors": [{"field": bad, "rule": "text", "message": message}]},
                    )
                errs = validation_errors(body_validator, data)
                if errs:
                    _raise_invalid("body", errs)
                ctx.body = data
            result = await handler(ctx, **path)
            if isinstance(result, Response | tuple):
                return result
            return result, status

        endpoint_name = f"{method.lower()}_{handler.__name__}"
        bp.add_url_rule(rule, endpoint_name, view, methods=[method])
        return view

    return decorate
