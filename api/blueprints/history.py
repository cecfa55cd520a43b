"""Print history: filtered pages, one record, notes, CSV export, statistics."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Any

from databases import Database
from quart import Blueprint, Response

from api import schemas
from api.context import hub
from api.errors import ApiError
from api.registry import Ctx, Page, endpoint
from api.timerange import ORDER_RULE, RANGE_PROPERTIES, instant, span_rule, window
from hub.model import rfc3339
from hub.store import history as store
from hub.store.history import (
    CURSOR_PATTERN,
    OUTCOMES,
    RUNNING,
    Filters,
    decode_cursor,
    encode_cursor,
)
from hub.store.history_stats import history_stats
from hub.store.spools import MATERIALS

bp = Blueprint("history", __name__)

MAX_STATS_DAYS = 366

_FILTERS: dict[str, Any] = {
    "printer": {"type": "string", "maxLength": 64},
    "outcome": {"enum": [*OUTCOMES, RUNNING]},
    **RANGE_PROPERTIES,
    "file": {"type": "string", "minLength": 1, "maxLength": 255},
    "material": {"enum": list(MATERIALS)},
}

LIST_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **schemas.PAGE_QUERY["properties"],
        **_FILTERS,
        "cursor": {
            "type": "string",
            "maxLength": 200,
            "pattern": CURSOR_PATTERN,
            "description": "the `next_cursor` of the previous page",
        },
    },
}

FILTER_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": _FILTERS,
}

TRAY_USE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tray": {"type": "integer"},
        "spool_id": {"type": ["string", "null"]},
        "material": {"type": ["string", "null"]},
        "color": {"type": ["string", "null"]},
        "grams": {"type": "number"},
        "mm": {"type": "number"},
        "cost": {"type": ["number", "null"]},
    },
}

RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["id", "printer", "file", "started_at", "outcome", "progress", "filament"],
    "properties": {
        "id": {"type": "string"},
        "job_key": {"type": "string"},
        "printer": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}},
        },
        "file": {"type": "string"},
        "queue_job_id": {"type": ["string", "null"]},
        "started_by": {"type": ["string", "null"]},
        "started_at": schemas.TIMESTAMP,
        "ended_at": schemas.TIMESTAMP_OR_NULL,
        "duration_s": {"type": ["number", "null"]},
        "state": {"type": "string"},
        "outcome": {"enum": [*OUTCOMES, None]},
        "progress": {"type": "number"},
        "layer": {"type": ["integer", "null"]},
        "total_layers": {"type": ["integer", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "filament": {
            "type": "object",
            "properties": {
                "grams": {"type": ["number", "null"]},
                "mm": {"type": ["number", "null"]},
                "trays": {"type": "array", "items": TRAY_USE},
            },
        },
        "cost": {"type": ["number", "null"]},
        "notes": {"type": ["string", "null"]},
    },
}

PAGE: dict[str, Any] = schemas.collection(RECORD, paginated=True)
PAGE["properties"] = {**PAGE["properties"], "next_cursor": {"type": ["string", "null"]}}

NOTES: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["notes"],
    "properties": {"notes": {"type": ["string", "null"], "maxLength": 4000}},
}


def _filters(query: dict[str, Any]) -> Filters:
    return Filters(
        printer_id=query.get("printer"),
        outcome=query.get("outcome"),
        since=instant(query, "since"),
        until=instant(query, "until"),
        file=query.get("file"),
        material=query.get("material"),
    )


def _public(item: dict[str, Any]) -> dict[str, Any]:
    item.pop("_started_at", None)
    return item


@endpoint(
    bp, "GET", "/api/history", role="viewer", summary="List print history", tag="History",
    query=LIST_QUERY, response=PAGE, errors=(400, 401),
)  # fmt: skip
async def list_history(ctx: Ctx) -> dict[str, Any]:
    """Newest first (id breaks ties). `page`/`per_page` as everywhere; for a walk that new prints
    cannot shift, pass each answer's `next_cursor` as `cursor` instead of a page number."""
    page = Page.of(ctx)
    filters = _filters(ctx.query)
    after = None
    if "cursor" in ctx.query:
        try:
            after = decode_cursor(ctx.query["cursor"])
        except ValueError:
            message = "not a cursor this endpoint returned"
            raise ApiError(
                400, "validation_error", f"query field 'cursor' breaks rule 'format': {message}",
                extra={"errors": [{"field": "cursor", "rule": "format", "message": message}]},
            ) from None  # fmt: skip
    items, total = await store.page(
        hub().db, filters, limit=page.per_page,
        offset=0 if after is not None else page.offset, after=after,
    )  # fmt: skip
    next_cursor = None
    if len(items) == page.per_page:
        next_cursor = encode_cursor(items[-1]["_started_at"], items[-1]["id"])
    body = page.envelope([_public(i) for i in items], total or 0)
    body["next_cursor"] = next_cursor
    return body


_GRAMS_BY = {"type": "object", "properties": {"grams": {"type": "number"},
                                               "cost": {"type": "number"}}}  # fmt: skip
STATS: dict[str, Any] = {
    "type": "object",
    "required": ["prints", "by_outcome", "success_rate", "print_hours", "filament", "per_day"],
    "properties": {
        "since": schemas.TIMESTAMP,
        "until": schemas.TIMESTAMP,
        "prints": {"type": "integer"},
        "by_outcome": {"type": "object", "additionalProperties": {"type": "integer"}},
        "success_rate": {"type": ["number", "null"]},
        "print_hours": {"type": "number"},
        "filament": {
            "type": "object",
            "properties": {
                "grams": {"type": "number"},
                "cost": {"type": "number"},
                "by_material": {"type": "array", "items": _GRAMS_BY},
                "by_color": {"type": "array", "items": _GRAMS_BY},
                "by_printer": {"type": "array", "items": _GRAMS_BY},
            },
        },
        "per_day": {
            "type": "array",
            "description": "one entry per UTC day of the window, oldest first",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "description": "the UTC day, YYYY-MM-DD"},
                    **{k: {"type": "integer"} for k in ("prints", *OUTCOMES)},
                    "hours": {"type": "number"},
                    "grams": {"type": "number"},
                    "grams_by_material": {
                        "type": "object",
                        "description": "grams used that day per material",
                        "additionalProperties": {"type": "number"},
                    },
                },
            },
        },
    },
}


@endpoint(
    bp, "GET", "/api/history/stats", role="viewer", summary="Print statistics", tag="History",
    query=FILTER_QUERY, response=STATS, errors=(400, 401),
    rules=(ORDER_RULE, span_rule(MAX_STATS_DAYS)),
)  # fmt: skip
async def stats(ctx: Ctx) -> dict[str, Any]:
    """Over since/until (default: the last 30 days; at most 366 days)."""
    since, until = window(ctx.query, default_days=30, max_days=MAX_STATS_DAYS)
    base = _filters(ctx.query)
    filters = Filters(base.printer_id, base.outcome, since, until, base.file, base.material)
    result = await history_stats(hub().db, filters)
    result["since"], result["until"] = rfc3339(since), rfc3339(until)
    return result


CSV_COLUMNS = (
    "id", "printer_id", "printer_name", "file", "queue_job_id", "started_by", "started_at",
    "ended_at", "duration_s", "outcome", "progress", "layer", "total_layers", "filament_g",
    "filament_mm", "cost", "materials", "errors", "notes",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ tab or CR gets a
    leading apostrophe (numbers we produce are written as they are)."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(item: dict[str, Any]) -> list[str]:
    """One history record as the export's cells."""
    trays = item["filament"]["trays"]
    materials = "; ".join(
        f"{t['material'] or '?'} {t['color'] or ''} {t['grams']} g".replace("  ", " ")
        for t in trays
    )
    errors = "; ".join(
        f"{e.get('code', '')} {e.get('message', '')}".strip() for e in item["errors"]
    )
    values = {
        **item,
        "printer_id": item["printer"]["id"],
        "printer_name": item["printer"]["name"],
        "filament_g": item["filament"]["grams"],
        "filament_mm": item["filament"]["mm"],
        "materials": materials,
        "errors": errors,
    }
    return [safe_cell(values.get(column)) for column in CSV_COLUMNS]


async def _csv_lines(db: Database, filters: Filters) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: quotes doubled, CRLF
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for item in store.export_rows(db, filters):
        writer.writerow(csv_row(item))
        count += 1
        if count % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


@endpoint(
    bp, "GET", "/api/history/export", role="viewer", summary="Export print history as CSV",
    tag="History", query=FILTER_QUERY, content_type="text/csv", errors=(400, 401),
)  # fmt: skip
async def export(ctx: Ctx) -> Response:
    """The same filters as the list; streamed in batches, newest first."""
    filters = _filters(ctx.query)
    name = time.strftime("print-history-%Y%m%d-%H%M%S.csv", time.gmtime())
    # The body is produced after the handler returns, outside the app context: pass the db.
    response = Response(_csv_lines(hub().db, filters), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.timeout = None  # a million rows take longer than the default response timeout
    return response


@endpoint(
    bp, "GET", "/api/history/<uuid:print_id>", role="viewer", summary="Get a print record",
    tag="History", response=RECORD, errors=(401, 404),
)  # fmt: skip
async def get_record(ctx: Ctx, print_id: str) -> dict[str, Any]:
    """One print."""
    found = await store.get(hub().db, print_id)
    if found is None:
        raise ApiError(404, "not_found", f"no print record with id {print_id}")
    return _public(found)


@endpoint(
    bp, "PATCH", "/api/history/<uuid:print_id>", role="operator", summary="Edit a print's notes",
    tag="History", body=NOTES, response=RECORD, errors=(400, 401, 403, 404),
)  # fmt: skip
async def patch_record(ctx: Ctx, print_id: str) -> dict[str, Any]:
    """Set (or clear with null) the notes."""
    if not await store.set_notes(hub().db, print_id, ctx.body["notes"]):
        raise ApiError(404, "not_found", f"no print record with id {print_id}")
    found = await store.get(hub().db, print_id)
    assert found is not None
    return _public(found)
