"""Printers: configuration CRUD, live status and commands."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import bodies, hub
from api.registry import Ctx, Page, endpoint

bp = Blueprint("printers", __name__)


@endpoint(
    bp,
    "GET",
    "/api/printers",
    role="viewer",
    summary="List printers (a page with page/per_page, else all of them)",
    tag="Printers",
    query=schemas.PAGE_QUERY,
    response=schemas.collection(schemas.PRINTER, paginated=True),
    errors=(400, 401),
)
async def list_printers(ctx: Ctx) -> Response:
    """Printers by name, secrets never included: the page asked for with `page`/`per_page`
    (the collections' convention), or the whole fleet when neither is given."""
    if "page" in ctx.query or "per_page" in ctx.query:
        return bodies().listing_page(Page.of(ctx))
    return bodies().listing()


@endpoint(
    bp,
    "POST",
    "/api/printers",
    role="admin",
    summary="Add a printer",
    tag="Printers",
    body=schemas.PRINTER_CREATE,
    response=schemas.PRINTER,
    status=201,
    errors=(400, 401, 403, 409),
)
async def create_printer(ctx: Ctx) -> Response:
    """Store a printer and start its driver."""
    row = await hub().add_printer(ctx.body)
    response = jsonify(row.public())
    response.status_code = 201
    response.headers["Location"] = f"/api/printers/{row.id}"
    return response


@endpoint(
    bp,
    "GET",
    "/api/printers/<printer_id>",
    role="viewer",
    summary="Get a printer",
    tag="Printers",
    response=schemas.PRINTER,
    errors=(401, 404),
)
async def get_printer(ctx: Ctx, printer_id: str) -> dict[str, Any]:
    """One printer's configuration."""
    return hub().printer(printer_id).public()


@endpoint(
    bp,
    "PUT",
    "/api/printers/<printer_id>",
    role="admin",
    summary="Update a printer",
    tag="Printers",
    body=schemas.PRINTER_UPDATE,
    response=schemas.PRINTER,
    errors=(400, 401, 403, 404, 409),
)
async def update_printer(ctx: Ctx, printer_id: str) -> dict[str, Any]:
    """Change fields; omitted secrets are kept; the driver restarts when needed."""
    return (await hub().update_printer(printer_id, ctx.body)).public()


@endpoint(
    bp,
    "DELETE",
    "/api/printers/<printer_id>",
    role="admin",
    summary="Delete a printer",
    tag="Printers",
    status=204,
    errors=(401, 403, 404),
)
async def delete_printer(ctx: Ctx, printer_id: str) -> tuple[str, int]:
    """Remove a printer and stop its driver."""
    await hub().delete_printer(printer_id)
    return "", 204


@endpoint(
    bp,
    "GET",
    "/api/printers/<printer_id>/status",
    role="viewer",
    summary="Real-time status",
    tag="Printers",
    response=schemas.PRINTER_STATUS,
    errors=(401, 404),
)
async def printer_status(ctx: Ctx, printer_id: str) -> Response:
    """Live normalized state plus connection facts."""
    return bodies().status(printer_id)


@endpoint(
    bp,
    "POST",
    "/api/printers/<printer_id>/command",
    role="operator",
    summary="Send a command",
    tag="Printers",
    body=schemas.COMMAND,
    response=schemas.COMMAND_RESULT,
    errors=(400, 401, 403, 404, 409, 504),
)
async def printer_command(ctx: Ctx, printer_id: str) -> dict[str, Any]:
    """Run a command; answers once the printer acknowledged it."""
    params: dict[str, Any] = ctx.body.get("params") or {}
    return await hub().command(printer_id, ctx.body["command"], params)


@endpoint(
    bp,
    "POST",
    "/api/printers/<printer_id>/bed-cleared",
    role="operator",
    summary="Confirm the bed is clear (the queue may start the next job)",
    tag="Printers",
    response=schemas.PRINTER,
    errors=(401, 403, 404),
)
async def bed_cleared(ctx: Ctx, printer_id: str) -> dict[str, Any]:
    """The printer's bed is empty: it is ready for the queue again (also after printing by hand)."""
    hub().printer(printer_id)
    return (await hub().dispatcher.ready.bed_cleared(printer_id)).public()
