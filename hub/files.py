"""The print file library: uploads streamed to disk, deduplicated by sha256, read for slicer metadata."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from databases import Database

from hub.errors import Conflict, Invalid, NotFound, TooLarge, Unsupported
from hub.slicer_meta import SlicerMeta, UnreadableFile, parse_3mf, parse_gcode
from hub.store import files as store
from hub.store.errors import is_unique_violation
from hub.store.files import FileRow

EXTENSIONS = (".gcode.3mf", ".gcode", ".3mf")
NAME_MAX = 200


def kind_of(name: str) -> str | None:
    """'3mf' or 'gcode' for an accepted file name, None for anything else."""
    lowered = name.lower()
    if lowered.endswith(".3mf"):
        return "3mf"
    if lowered.endswith(".gcode"):
        return "gcode"
    return None


def clean_name(name: str) -> str:
    """The name without any directory part or surrounding spaces; Invalid with control
    characters or when too long, Unsupported when it is not a print file's name."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if any(ord(c) < 32 for c in base):
        raise Invalid("file name must not contain control characters", field="filename")
    if len(base) > NAME_MAX:
        raise Invalid(f"file name must be at most {NAME_MAX} characters", field="filename")
    if kind_of(base) is None:
        raise Unsupported(
            f"file {base!r} is not a print file: accepted are {', '.join(EXTENSIONS)}",
            field="filename",
            rule="type",
        )
    return base


def meta_json(meta: SlicerMeta) -> dict[str, Any]:
    """The metadata as the API shows it (no thumbnail bytes)."""
    return {
        "estimated_time_s": meta.time_s,
        "layers": meta.layers,
        "grams": meta.grams,
        "materials": [dataclasses.asdict(slot) for slot in meta.slots],
        "nozzle_diameter": meta.nozzle_diameter,
        "printer_model": meta.printer_model,
        "plate_count": meta.plate_count,
        "slicer": meta.slicer,
    }


def read_meta(path: Path, kind: str, plate: int = 1) -> SlicerMeta:
    """Slicer metadata of a stored file (blocking: run it in an executor)."""
    if kind == "3mf":
        with path.open("rb") as handle:
            return parse_3mf(handle, plate)
    size = path.stat().st_size
    window = 512 * 1024
    with path.open("rb") as handle:
        if size <= 2 * window:
            return parse_gcode(handle.read())
        head = handle.read(window)
        handle.seek(size - window)
        return parse_gcode(head + b"\n" + handle.read())


class FileLibrary:
    """Stores uploaded print files under `<data_dir>/files/` and their records in the database."""

    def __init__(self, db: Database, data_dir: Path, max_bytes: int) -> None:
        self.db = db
        self.root = Path(data_dir) / "files"
        self.max_bytes = max_bytes

    def path_of(self, row: FileRow) -> Path:
        """Where a file's content lies."""
        return self.root / row.path

    async def save(
        self, name: str, chunks: AsyncIterator[bytes], uploaded_by: str | None
    ) -> tuple[FileRow, bool]:
        """Stream an upload to disk, read its metadata and store it; (record, newly stored)."""
        name = clean_name(name)
        kind = kind_of(name) or "gcode"
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f".upload-{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        try:
            with temp.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(
                            f"file is larger than the limit of {self.max_bytes} bytes "
                            "(configuration key files.max_size_mb)",
                            field="file",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise Unsupported("the file is empty", field="file", rule="type")
            sha = digest.hexdigest()
            existing = await store.by_sha256(self.db, sha)
            if existing is not None:
                return existing, False
            loop = asyncio.get_running_loop()
            try:
                meta = await loop.run_in_executor(None, read_meta, temp, kind, 1)
            except UnreadableFile as exc:
                raise Unsupported(
                    f"{name} cannot be read: {exc}", field="file", rule="type"
                ) from None
            final = f"{sha}.{'gcode.3mf' if name.lower().endswith('.gcode.3mf') else kind}"
            os.replace(temp, self.root / final)
            if meta.thumbnail:
                (self.root / f"{sha}.png").write_bytes(meta.thumbnail)
            row = FileRow(
                id=str(uuid.uuid4()),
                sha256=sha,
                name=name,
                kind=kind,
                size=size,
                path=final,
                meta=meta_json(meta),
                has_thumbnail=meta.thumbnail is not None,
                uploaded_by=uploaded_by,
                created_at=time.time(),
            )
            try:
                await store.insert(self.db, row)
            except Exception as exc:
                # The same content raced in from another upload: that one is the file.
                if is_unique_violation(exc):
                    found = await store.by_sha256(self.db, sha)
                    if found is not None:
                        return found, False
                raise
            return row, True
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[FileRow], int]:
        """A page of files, newest first."""
        return await store.list_page(self.db, limit=limit, offset=offset)

    async def get(self, file_id: str) -> FileRow:
        """One file, or NotFound."""
        row = await store.get(self.db, file_id)
        if row is None:
            raise NotFound(f"no file with id {file_id}")
        return row

    def thumbnail(self, row: FileRow) -> bytes:
        """The file's PNG thumbnail, or NotFound."""
        path = self.root / f"{row.sha256}.png"
        if not row.has_thumbnail or not path.exists():
            raise NotFound(f"file {row.id} has no thumbnail")
        return path.read_bytes()

    async def read(self, row: FileRow) -> bytes:
        """A file's content (for sending it to a printer)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.path_of(row).read_bytes)

    async def plate_meta(self, row: FileRow, plate: int) -> dict[str, Any]:
        """The metadata of one plate of a project (the stored metadata is plate 1's)."""
        if row.kind != "3mf" or plate == 1:
            return row.meta
        count = row.meta.get("plate_count") or 1
        if plate > count:
            raise Invalid(f"file {row.name} has {count} plate(s), not {plate}", field="plate")
        loop = asyncio.get_running_loop()
        meta = await loop.run_in_executor(None, read_meta, self.path_of(row), "3mf", plate)
        return meta_json(meta)

    async def delete(self, row: FileRow, in_use: int) -> None:
        """Remove a file and its content; Conflict while jobs that are not finished use it."""
        if in_use:
            raise Conflict(f"file {row.name} is used by {in_use} queued or running job(s)")
        await store.delete(self.db, row.id)
        for path in (self.path_of(row), self.root / f"{row.sha256}.png"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
