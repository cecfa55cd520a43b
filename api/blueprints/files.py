"""Print files: upload (multipart or raw body, streamed to disk), list, get, thumbnail, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from api import schemas
from api.context import hub
from api.errors import ApiError
from api.registry import Ctx, Page, Rule, endpoint
from hub.errors import TooLarge

bp = Blueprint("files", __name__)

UPLOAD_PATH = "/api/files"
# Room for the multipart envelope around the file itself.
MULTIPART_SLACK = 64 * 1024

UPLOAD_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "filename": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": "^[^\\x00-\\x1f]*$",
            "description": "the file's name (a directory part is dropped); required for a raw body",
        }
    },
}


async def _body_chunks() -> AsyncIterator[bytes]:
    try:
        async for chunk in request.body:
            yield chunk
    except RequestEntityTooLarge:
        limit = hub().files.max_bytes
        raise TooLarge(f"file is larger than the limit of {limit} bytes", field="file") from None


async def _multipart_file(boundary: bytes) -> tuple[str, AsyncIterator[bytes]]:
    """The `file` part's name and a stream of its bytes, decoded as the body arrives."""
    decoder = MultipartDecoder(boundary, max_form_memory_size=MULTIPART_SLACK)
    body = _body_chunks()
    filename: str | None = None

    async def feed() -> bool:
        try:
            decoder.receive_data(await body.__anext__())
        except StopAsyncIteration:
            decoder.receive_data(None)
            return False
        return True

    def next_event() -> Any:
        try:
            return decoder.next_event()
        except ValueError as exc:  # werkzeug's parser on a malformed body
            raise ApiError(400, "bad_request", f"the multipart body is malformed: {exc}") from None

    more = True
    while filename is None:
        event = next_event()
        if isinstance(event, NeedData):
            if not more:
                break
            more = await feed()
        elif isinstance(event, Epilogue):
            break
        elif isinstance(event, File) and event.name == "file":
            filename = event.filename
    if filename is None:
        raise ApiError(
            400,
            "validation_error",
            "multipart body field 'file' breaks rule 'required': send the print file as 'file'",
            extra={"errors": [{"field": "file", "rule": "required", "message": "missing"}]},
        )

    async def stream() -> AsyncIterator[bytes]:
        nonlocal more
        while True:
            event = next_event()
            if isinstance(event, Data):
                if event.data:
                    yield event.data
                if not event.more_data:
                    return
            elif isinstance(event, NeedData):
                if not more:
                    raise ApiError(400, "bad_request", "the multipart body ended inside 'file'")
                more = await feed()
            else:
                return

    return filename, stream()


@endpoint(
    bp,
    "POST",
    UPLOAD_PATH,
    role="operator",
    summary="Upload a print file (.gcode, .gcode.3mf, .3mf)",
    tag="Files",
    query=UPLOAD_QUERY,
    response=schemas.FILE,
    status=201,
    errors=(400, 401, 403, 413, 415),
    upload=True,
    rules=(
        Rule(400, "filename", "required", "a raw body (not multipart) names its file"),
        Rule(415, "filename", "type", "the file name ends in .gcode, .3mf or .gcode.3mf"),
        Rule(415, "file", "type", "the content is the G-code or 3MF its name says"),
    ),
)
async def upload_file(ctx: Ctx) -> Response:
    """Stream the file to disk, read its slicer metadata; the same content again is the same file."""
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    if mimetype == "multipart/form-data":
        boundary = options.get("boundary", "").encode("latin-1")
        if not boundary:
            raise ApiError(400, "bad_request", "multipart body without a boundary")
        name, chunks = await _multipart_file(boundary)
    else:
        name = ctx.query.get("filename", "")
        if not name:
            raise ApiError(
                400,
                "validation_error",
                "query field 'filename' breaks rule 'required': a raw upload names its file",
                extra={"errors": [{"field": "filename", "rule": "required", "message": "missing"}]},
            )
        chunks = _body_chunks()
    assert ctx.principal is not None
    row, created = await hub().files.save(name, chunks, ctx.principal.username)
    response = jsonify(row.public())
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/files/{row.id}"
    return response


@endpoint(
    bp,
    "GET",
    "/api/files",
    role="viewer",
    summary="List print files",
    tag="Files",
    query=schemas.PAGE_QUERY,
    response=schemas.collection(schemas.FILE, paginated=True),
    errors=(400, 401),
)
async def list_files(ctx: Ctx) -> dict[str, Any]:
    """Newest first."""
    page = Page.of(ctx)
    items, total = await hub().files.list_page(limit=page.per_page, offset=page.offset)
    return page.envelope([f.public() for f in items], total)


@endpoint(
    bp,
    "GET",
    "/api/files/<file_id>",
    role="viewer",
    summary="Get a print file's record and metadata",
    tag="Files",
    response=schemas.FILE,
    errors=(401, 404),
)
async def get_file(ctx: Ctx, file_id: str) -> dict[str, Any]:
    """One file."""
    return (await hub().files.get(file_id)).public()


@endpoint(
    bp,
    "GET",
    "/api/files/<file_id>/thumbnail",
    role="viewer",
    summary="A print file's thumbnail (PNG)",
    tag="Files",
    response={"type": "string", "format": "binary"},
    errors=(401, 404),
    content_type="image/png",
)
async def file_thumbnail(ctx: Ctx, file_id: str) -> Response:
    """The slicer's preview picture."""
    library = hub().files
    data = library.thumbnail(await library.get(file_id))
    return Response(data, mimetype="image/png")


@endpoint(
    bp,
    "DELETE",
    "/api/files/<file_id>",
    role="operator",
    summary="Delete a print file",
    tag="Files",
    status=204,
    errors=(401, 403, 404, 409),
)
async def delete_file(ctx: Ctx, file_id: str) -> tuple[str, int]:
    """Remove a file (409 while a queued or running job uses it)."""
    await hub().delete_file(file_id)
    return "", 204
