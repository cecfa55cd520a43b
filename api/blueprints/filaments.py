"""Filament spools: CRUD, ledger, statistics, and spools on printer trays."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.errors import ApiError
from api.registry import Ctx, Page, endpoint
from api.timerange import ORDER_RULE, RANGE_PROPERTIES, window
from hub.filament import trays_with_spools
from hub.store import filament_stats
from hub.store import spools as store
from hub.store.spools import MATERIALS

bp = Blueprint("filaments", __name__)

_TEXT = {"type": ["string", "null"], "maxLength": 100}
_GRAMS = {"type": "number", "minimum": 0, "maximum": 100000}
_TRAY = {"type": "integer", "minimum": 0, "maximum": 254}

_FIELDS: dict[str, Any] = {
    "material": {"enum": list(MATERIALS)},
    "color": {"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"},
    "brand": _TEXT,
    "name": _TEXT,
    "diameter_mm": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
    "density_g_cm3": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
    "weight_total_g": _GRAMS,
    "weight_remaining_g": _GRAMS,
    "spool_weight_g": {"type": ["number", "null"], "minimum": 0, "maximum": 10000},
    "price_per_kg": {"type": ["number", "null"], "minimum": 0, "maximum": 100000},
    "location": _TEXT,
    "lot": _TEXT,
    "notes": {"type": ["string", "null"], "maxLength": 4000},
    "low_threshold_g": _GRAMS,
    "archived": {"type": "boolean"},
}

ASSIGNED_TO: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["printer_id", "tray"],
    "properties": {"printer_id": {"type": "string"}, "tray": _TRAY},
}

SPOOL_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["material", "color"],
    "properties": _FIELDS,
}

SPOOL_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {**_FIELDS, "measured_gross_g": _GRAMS, "assigned_to": ASSIGNED_TO},
}

SPOOL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "material", "color", "weight_total_g", "weight_remaining_g", "used_g"],
    "properties": {
        "id": {"type": "string"},
        **_FIELDS,
        "weight_remaining_g": {"type": "number"},
        "used_g": {"type": "number", "readOnly": True},
        "assigned_to": ASSIGNED_TO,
        "created_at": schemas.TIMESTAMP,
        "updated_at": schemas.TIMESTAMP,
    },
}

LIST_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **schemas.PAGE_QUERY["properties"],
        "material": {"enum": list(MATERIALS)},
        "archived": {"type": "boolean"},
        "assigned": {"type": "boolean"},
    },
}

LEDGER_ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["initial", "print", "correction", "weighing"]},
        "delta_g": {"type": "number"},
        "print_id": {"type": ["string", "null"]},
        "printer_id": {"type": ["string", "null"]},
        "tray": {"type": ["integer", "null"]},
        "note": {"type": ["string", "null"]},
        "created_at": schemas.TIMESTAMP,
    },
}

LEDGER: dict[str, Any] = {
    **schemas.collection(LEDGER_ENTRY, paginated=True),
}
LEDGER["properties"] = {**LEDGER["properties"], "sum_g": {"type": "number"}}

STATS_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": RANGE_PROPERTIES,
}

TRAY_ASSIGN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["spool_id"],
    "properties": {"spool_id": {"type": ["string", "null"]}},
}

TRAY_SPOOL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tray": _TRAY,
        "spool_id": {"type": "string"},
        "material": {"type": "string"},
        "color": {"type": "string"},
        "remaining_g": {"type": "number"},
    },
}

DELETE_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"force": {"type": "boolean"}},
}


@endpoint(
    bp, "GET", "/api/filaments", role="viewer", summary="List spools", tag="Filament",
    query=LIST_QUERY, response=schemas.collection(SPOOL, paginated=True), errors=(400, 401),
)  # fmt: skip
async def list_spools(ctx: Ctx) -> dict[str, Any]:
    """Oldest first; filter by material, archived, assigned."""
    page = Page.of(ctx)
    found = await store.list_all(
        hub().db,
        material=ctx.query.get("material"),
        archived=ctx.query.get("archived"),
        assigned=ctx.query.get("assigned"),
    )
    chosen = found[page.offset : page.offset + page.per_page]
    return page.envelope([s.public() for s in chosen], len(found))


@endpoint(
    bp, "POST", "/api/filaments", role="operator", summary="Add a spool", tag="Filament",
    body=SPOOL_CREATE, response=SPOOL, status=201, errors=(400, 401, 403),
)  # fmt: skip
async def create_spool(ctx: Ctx) -> Response:
    """Store a spool; its remaining weight opens its ledger."""
    spool = await hub().filament.create(ctx.body)
    response = jsonify(spool.public())
    response.status_code = 201
    response.headers["Location"] = f"/api/filaments/{spool.id}"
    return response


@endpoint(
    bp, "GET", "/api/filaments/stats", role="viewer", summary="Filament statistics",
    tag="Filament", query=STATS_QUERY, response={"type": "object"}, errors=(400, 401),
    rules=(ORDER_RULE,),
)  # fmt: skip
async def spool_stats(ctx: Ctx) -> dict[str, Any]:
    """Consumption over since/until (default: the last 30 days), inventory, low stock."""
    since, until = window(ctx.query, default_days=30)
    return await filament_stats.filament_stats(hub().db, since, until)


@endpoint(
    bp, "GET", "/api/filaments/<uuid:spool_id>", role="viewer", summary="Get a spool",
    tag="Filament", response=SPOOL, errors=(401, 404),
)  # fmt: skip
async def get_spool(ctx: Ctx, spool_id: str) -> dict[str, Any]:
    """One spool."""
    return (await hub().filament.spool(spool_id)).public()


@endpoint(
    bp, "PUT", "/api/filaments/<uuid:spool_id>", role="operator", summary="Update a spool",
    tag="Filament", body=SPOOL_UPDATE, response=SPOOL, errors=(400, 401, 403, 404),
)  # fmt: skip
async def update_spool(ctx: Ctx, spool_id: str) -> dict[str, Any]:
    """Partial update; `weight_remaining_g` corrects, `measured_gross_g` weighs, `assigned_to`
    puts the spool on a tray (null takes it off)."""
    h = hub()
    data = dict(ctx.body)
    if "assigned_to" in data:
        where = data.pop("assigned_to")
        if where is not None:
            h.printer(where["printer_id"])
    spool = await h.filament.spool(spool_id)
    if data:
        spool = await h.filament.update(spool_id, data)
    if "assigned_to" in ctx.body:
        where = ctx.body["assigned_to"]
        if where is None:
            spool = await h.filament.unassign(spool_id)
        else:
            await h.filament.assign(where["printer_id"], where["tray"], spool_id)
            spool = await h.filament.spool(spool_id)
    return spool.public()


@endpoint(
    bp, "DELETE", "/api/filaments/<uuid:spool_id>", role="operator", summary="Delete a spool",
    tag="Filament", query=DELETE_QUERY, status=204, errors=(401, 403, 404, 409),
)  # fmt: skip
async def delete_spool(ctx: Ctx, spool_id: str) -> tuple[str, int]:
    """409 while the spool is on a tray, unless `force=true` (which takes it off first)."""
    await hub().filament.delete(spool_id, force=bool(ctx.query.get("force", False)))
    return "", 204


@endpoint(
    bp, "GET", "/api/filaments/<uuid:spool_id>/ledger", role="viewer", summary="A spool's ledger",
    tag="Filament", query={"type": "object", "additionalProperties": False,
                           "properties": schemas.PAGE_QUERY["properties"]},
    response=LEDGER, errors=(400, 401, 404),
)  # fmt: skip
async def spool_ledger(ctx: Ctx, spool_id: str) -> dict[str, Any]:
    """Every weight movement, oldest first; `sum_g` equals the spool's remaining weight."""
    h = hub()
    await h.filament.spool(spool_id)
    page = Page.of(ctx)
    items, total, sum_g = await store.ledger(
        h.db, spool_id, limit=page.per_page, offset=page.offset
    )
    return {**page.envelope(items, total), "sum_g": round(sum_g, 3)}


def _tray_number(tray: str) -> int:
    if not tray.isdigit() or not 0 <= int(tray) <= 254:
        message = "tray must be an integer from 0 to 254 (254: external spool / single extruder)"
        raise ApiError(
            400,
            "validation_error",
            f"path field 'tray' breaks rule 'range': {message}",
            extra={"errors": [{"field": "tray", "rule": "range", "message": message}]},
        )
    return int(tray)


@endpoint(
    bp, "GET", "/api/printers/<printer_id>/trays", role="viewer",
    summary="Spools on a printer's trays", tag="Filament",
    query=schemas.PAGE_QUERY, response=schemas.collection(TRAY_SPOOL, paginated=True),
    errors=(400, 401, 404),
)  # fmt: skip
async def list_trays(ctx: Ctx, printer_id: str) -> dict[str, Any]:
    """Per tray holding a spool (a page of them, by tray): its id, material, colour and grams."""
    h = hub()
    h.printer(printer_id)
    page = Page.of(ctx)
    trays = await trays_with_spools(h.db, printer_id)
    items = [
        {"tray": t.tray, "spool_id": t.spool_id, "material": t.material, "color": t.color,
         "remaining_g": round(t.remaining_g, 3)}
        for t in trays[page.offset : page.offset + page.per_page]
    ]  # fmt: skip
    return page.envelope(items, len(trays))


@endpoint(
    bp, "PUT", "/api/printers/<printer_id>/trays/<tray>", role="operator",
    summary="Put a spool on a tray (null frees it)", tag="Filament", body=TRAY_ASSIGN,
    response={"type": "object"}, errors=(400, 401, 403, 404),
)  # fmt: skip
async def assign_tray(ctx: Ctx, printer_id: str, tray: str) -> dict[str, Any]:
    """Assign a spool to a tray, moving it from any other; `spool_id: null` frees the tray."""
    h = hub()
    h.printer(printer_id)
    number = _tray_number(tray)
    spool = await h.filament.assign(printer_id, number, ctx.body["spool_id"])
    return {
        "printer_id": printer_id,
        "tray": number,
        "spool": None if spool is None else spool.public(),
    }
