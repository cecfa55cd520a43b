"""Health of the hub."""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint

from api import schemas
from api.context import hub
from api.registry import Ctx, endpoint
from hub.runtime import package_version

bp = Blueprint("system", __name__)


@endpoint(
    bp,
    "GET",
    "/api/health",
    role=None,
    summary="Health: database, version, uptime",
    tag="System",
    response=schemas.HEALTH,
)
async def health(ctx: Ctx) -> tuple[dict[str, Any], int]:
    """Whether the hub and its database answer."""
    h = hub()
    ok = await h.db_ok()
    body = {
        "status": "ok" if ok else "degraded",
        "database": "ok" if ok else "unreachable",
        "version": package_version(),
        "uptime_s": round(time.time() - h.started_at, 3),
    }
    return body, 200 if ok else 503
