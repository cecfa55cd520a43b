"""Quart application factory: blueprints, auth parsing, rate limits, errors, hub lifecycle."""

from __future__ import annotations

from typing import Any

from quart import Quart, Request, Response, g, request

from api import errors, ws
from api.blueprints import (
    auth,
    channels,
    dashboard,
    docs,
    filaments,
    files,
    history,
    metrics,
    notifications,
    printers,
    queue,
    system,
    tokens,
    users,
    webhooks,
)
from api.blueprints.files import MULTIPART_SLACK, UPLOAD_PATH
from api.bodies import JsonBodies
from api.errors import problem
from api.ratelimit import MemoryRateLimitStore, RateLimiter, RateLimitStore
from api.registry import UuidText
from hub.auth import AuthError, Principal
from hub.errors import HubError
from hub.runtime import Hub

BLUEPRINTS = (
    auth.bp,
    tokens.bp,
    users.bp,
    printers.bp,
    files.bp,
    queue.bp,
    notifications.bp,
    webhooks.bp,
    channels.bp,
    filaments.bp,
    history.bp,
    system.bp,
    metrics.bp,
    docs.bp,
    dashboard.bp,
    ws.bp,
)


_BLUEPRINT_NAMES: dict[str | None, list[str]] = {}


class ApiRequest(Request):
    """Quart's request with the matched endpoint's blueprint names worked out once per endpoint
    (Quart derives them on every access: before-request, after-request and teardown), and the
    file upload's own size limit in place of the app-wide one."""

    upload_limit: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.upload_limit is not None and self.method == "POST" and self.path == UPLOAD_PATH:
            self.body = self.body_class(self.content_length, self.upload_limit + MULTIPART_SLACK)

    @property
    def blueprints(self) -> list[str]:
        """The names of the matched endpoint's blueprint and its parents, innermost first."""
        endpoint = self.endpoint
        names = _BLUEPRINT_NAMES.get(endpoint)
        if names is None:
            names = _BLUEPRINT_NAMES[endpoint] = super().blueprints
        return list(names)


def create_app(
    hub: Hub, *, rate_limit_store: RateLimitStore | None = None, manage_hub: bool = True
) -> Quart:
    """Build the app serving `hub`; with manage_hub the app starts and stops the hub."""
    # No static folder: every route is a declared endpoint or a docs asset.
    app = Quart("printforge", static_folder=None)
    app.url_map.converters["uuid"] = UuidText

    class AppRequest(ApiRequest):
        upload_limit = hub.settings.files.max_bytes

    app.request_class = AppRequest
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.config["MAX_JSON_BODY"] = 1_000_000
    app.extensions["printforge.hub"] = hub
    app.extensions["printforge.bodies"] = JsonBodies(app, hub)
    limits = hub.settings.rate_limit
    limiter = (
        RateLimiter(
            rate_limit_store or MemoryRateLimitStore(limits.per_minute, limits.per_second),
            limits.per_minute,
            limits.per_second,
        )
        if limits.enabled
        else None
    )
    app.extensions["printforge.limiter"] = limiter

    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    errors.register(app)

    @app.errorhandler(HubError)
    async def _hub_error(error: HubError) -> Response:
        extra = {"errors": [{"field": error.field, "rule": error.rule, "message": error.detail}]}
        return problem(error.status, error.code, error.detail, extra=extra if error.field else None)

    @app.before_request
    async def _authenticate_and_limit() -> Response | None:
        principal: Principal | None = None
        auth_error: str | None = None
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                auth_error = "the Authorization header must be 'Bearer <token>'"
            else:
                try:
                    principal = await hub.auth.authenticate(token.strip())
                except AuthError as exc:
                    auth_error = exc.reason
        g.principal = principal
        g.auth_error = auth_error
        if limiter is None:
            return None
        key = f"user:{principal.user_id}" if principal else f"addr:{request.remote_addr}"
        decision, headers = limiter.check(key)
        g.rate_headers = headers
        if not decision.allowed:
            return problem(
                429,
                "rate_limited",
                f"rate limit exceeded; retry in {decision.retry_after} s",
                headers=headers,
            )
        return None

    @app.after_request
    async def _headers(response: Response) -> Response:
        # Headers a response already carries win (one scan of them, not one per header).
        headers = response.headers
        present = {key.lower() for key, _ in headers}
        rate_headers: dict[str, str] | None = g.get("rate_headers")
        if rate_headers:
            for key, value in rate_headers.items():
                if key.lower() not in present:
                    headers.add(key, value)
        if "x-content-type-options" not in present:
            headers.add("X-Content-Type-Options", "nosniff")
        return response

    if manage_hub:

        @app.before_serving
        async def _start() -> None:
            await hub.start()

        @app.after_serving
        async def _stop() -> None:
            await hub.stop()

    return app
