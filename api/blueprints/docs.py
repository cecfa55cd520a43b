"""The OpenAPI document and interactive docs served from local assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui
from quart import Blueprint, Response, send_from_directory

from api import openapi
from api.registry import Ctx, endpoint

bp = Blueprint("docs", __name__)

# Swagger UI 5 (OpenAPI 3.1 capable), shipped inside the swagger-ui-py wheel.
ASSETS = Path(swagger_ui.__file__).parent / "static"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3DPrintForge API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""

INIT = """window.addEventListener('load', function () {
  // validatorUrl null: Swagger UI would otherwise send the document's URL to validator.swagger.io.
  window.ui = SwaggerUIBundle({url: '/api/openapi.json', dom_id: '#docs', deepLinking: true,
    persistAuthorization: true, validatorUrl: null});
});
"""


@endpoint(bp, "GET", "/api/openapi.json", role=None, summary="OpenAPI 3.1 document", tag="System")
async def openapi_json(ctx: Ctx) -> dict[str, Any]:
    """This API described as OpenAPI 3.1."""
    return openapi.build()


@bp.get("/api/docs")
async def docs_page() -> Response:
    """Interactive API documentation (no internet needed)."""
    return Response(PAGE, content_type="text/html; charset=utf-8")


@bp.get("/api/docs/init.js")
async def docs_init() -> Response:
    """Start-up script of the docs page (kept out of the page for a strict CSP)."""
    return Response(INIT, content_type="application/javascript")


@bp.get("/api/docs/assets/<path:name>")
async def docs_assets(name: str) -> Response:
    """Swagger UI's static files, shipped with the package."""
    return await send_from_directory(ASSETS, name)
