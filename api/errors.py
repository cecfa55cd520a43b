"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from hub.store.errors import is_unavailable

log = logging.getLogger(__name__)

# Seconds a client is asked to wait when the database is away (an outage is usually a restart).
RETRY_AFTER_S = 2

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error answered as a problem document with a machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build an application/problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:printforge:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    try:
        body["instance"] = request.path
    except RuntimeError:  # outside a request context
        pass
    body.update(extra or {})
    response = Response(json.dumps(body), status=status, content_type=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "database_unavailable",
    504: "timeout",
}


def register(app: Quart) -> None:
    """Turn every error, including unknown routes, 405 and 500, into a problem document."""

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return problem(
            error.status, error.code, error.detail, extra=error.extra, headers=error.headers
        )

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        allowed = getattr(error, "valid_methods", None)
        if status == 405 and allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
        detail = {
            404: f"no resource at {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
        }.get(status, error.description or HTTPStatus(status).phrase)
        return problem(status, HTTP_CODES.get(status, "http_error"), detail, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        if is_unavailable(error):
            # An outage, not a bug: one line, and the client is told when to come back.
            log.warning("database unavailable on %s %s: %s", request.method, request.path, error)
            return problem(
                503,
                "database_unavailable",
                "the database cannot be reached right now; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal_error", "the server hit an unexpected error")
