"""The web dashboard: one HTML page at `/` and its static ES modules, under a strict CSP."""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, send_from_directory

bp = Blueprint("dashboard", __name__)

ROOT = Path(__file__).resolve().parent.parent / "dashboard"

# Scripts and styles only from files of this hub: no inline script or style attribute, no eval,
# nothing from another host. Dynamic styles (progress widths, swatch colours) are set through
# the CSSOM, which style-src does not govern. 'self' covers ws:/wss: to this host in CSP Level 3.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _secure(response: Response) -> Response:
    """Add the dashboard's security headers to a response."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    # Revalidate on every load so an upgraded hub never runs an old module next to a new one.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
async def index() -> Response:
    """The dashboard's single page (routes live after `#`)."""
    return _secure(await send_from_directory(ROOT, "index.html"))


@bp.get("/ui/<path:name>")
async def asset(name: str) -> Response:
    """The dashboard's scripts, styles and vendored libraries."""
    response = await send_from_directory(ROOT, name)
    if name.endswith(".js"):
        # One MIME type for module scripts whatever the host's mimetypes table says.
        response.mimetype = "text/javascript"
    return _secure(response)
