"""Print queue: jobs (list with why each waits, add, change, remove) and dispatch on demand."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from api import schemas
from api.context import hub
from api.registry import Ctx, Page, endpoint
from hub.queue.service import job_json, parse_states
from hub.store import queue as queue_store
from hub.store.queue import STATES, JobRow

bp = Blueprint("queue", __name__)

_ONE_STATE = f"(?:{'|'.join(STATES)})"

QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **schemas.PAGE_QUERY["properties"],
        "state": {
            "type": "string",
            "maxLength": 100,
            "pattern": f"^(?:{_ONE_STATE}(?:,{_ONE_STATE})*)?$",
            "description": "comma-separated states; default: queued, held, dispatching, printing",
        },
    },
}


async def _public(jobs: list[JobRow], *, runs_detail: bool) -> list[dict[str, Any]]:
    the_hub = hub()
    runs = await queue_store.runs_of(the_hub.db, [j.id for j in jobs])
    await the_hub.dispatcher.refresh_spools()  # waiting reasons see the spools as they are
    files = [await the_hub.queue.file_of(job) for job in jobs]
    # Jobs with the same needs share one look at the fleet.
    waiting = [job for job in jobs if job.state in ("queued", "held")]
    reasons = the_hub.dispatcher.ready.waiting_reasons(waiting, the_hub.dispatcher)
    items = []
    for job, file in zip(jobs, files, strict=True):
        body = job_json(job, file, runs.get(job.id, []))
        if not runs_detail:
            body.pop("runs")
        if job.id in reasons:
            body["waiting_reason"] = reasons[job.id]
        items.append(body)
    return items


@endpoint(
    bp,
    "GET",
    "/api/queue",
    role="viewer",
    summary="Get queue",
    tag="Queue",
    query=QUERY,
    response=schemas.collection(schemas.QUEUE_JOB, paginated=True),
    errors=(400, 401),
)
async def list_queue(ctx: Ctx) -> dict[str, Any]:
    """Jobs in dispatch order; each waiting job says why it waits."""
    page = Page.of(ctx)
    states = parse_states(ctx.query.get("state"))
    jobs, total = await hub().queue.page(states, page.per_page, page.offset)
    return page.envelope(await _public(jobs, runs_detail=False), total)


@endpoint(
    bp,
    "POST",
    "/api/queue",
    role="operator",
    summary="Add job",
    tag="Queue",
    body=schemas.JOB_CREATE,
    response=schemas.QUEUE_JOB,
    status=201,
    errors=(400, 401, 403, 404),
)
async def add_job(ctx: Ctx) -> Response:
    """Queue a stored file (materials from the file unless given)."""
    assert ctx.principal is not None
    job = await hub().queue.create(ctx.body, ctx.principal.username)
    response = jsonify((await _public([job], runs_detail=True))[0])
    response.status_code = 201
    response.headers["Location"] = f"/api/queue/{job.id}"
    hub().dispatcher.wake()
    return response


@endpoint(
    bp,
    "GET",
    "/api/queue/<uuid:job_id>",
    role="viewer",
    summary="Get one job with its dispatch runs and prints",
    tag="Queue",
    response=schemas.QUEUE_JOB,
    errors=(401, 404),
)
async def get_job(ctx: Ctx, job_id: str) -> dict[str, Any]:
    """One job, any state."""
    return (await _public([await hub().queue.get(job_id)], runs_detail=True))[0]


@endpoint(
    bp,
    "PUT",
    "/api/queue/<uuid:job_id>",
    role="operator",
    summary="Update job",
    tag="Queue",
    body=schemas.JOB_UPDATE,
    response=schemas.QUEUE_JOB,
    errors=(400, 401, 403, 404, 409),
)
async def update_job(ctx: Ctx, job_id: str) -> dict[str, Any]:
    """Priority, position, target, materials, copies; `hold` true/false."""
    job = await hub().queue.update(job_id, ctx.body)
    hub().dispatcher.wake()
    return (await _public([job], runs_detail=True))[0]


@endpoint(
    bp,
    "DELETE",
    "/api/queue/<uuid:job_id>",
    role="operator",
    summary="Remove job",
    tag="Queue",
    status=204,
    errors=(401, 403, 404, 409),
)
async def remove_job(ctx: Ctx, job_id: str) -> tuple[str, int]:
    """Cancel a job that is not on a printer (409 while printing: stop the printer first)."""
    await hub().queue.cancel(job_id)
    return "", 204


@endpoint(
    bp,
    "POST",
    "/api/queue/dispatch",
    role="operator",
    summary="Force dispatch",
    tag="Queue",
    body=schemas.DISPATCH,
    optional_body=True,
    response=schemas.DISPATCH_RESULT,
    errors=(400, 401, 403, 404, 409),
)
async def dispatch(ctx: Ctx) -> dict[str, Any]:
    """Dispatch now; with `job_id` and/or `printer_id` just that (409 with the reason if it
    does not fit). A dispatch to a named printer counts as a person confirming its bed."""
    assert ctx.principal is not None
    started = await hub().dispatcher.dispatch_now(
        ctx.body.get("job_id"), ctx.body.get("printer_id"), ctx.principal.username
    )
    return {
        "dispatched": [
            {
                "job_id": job.id,
                "printer_id": run.printer_id,
                "run_id": run.id,
                "filename": run.filename,
                "ams_mapping": run.ams_mapping,
            }
            for job, run in started
        ]
    }
