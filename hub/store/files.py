"""Print file records: explicit SQL over the `print_files` table (content lives on disk)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.model import rfc3339


@dataclass(frozen=True)
class FileRow:
    """One stored print file: its name, content hash, where it lies and what the slicer said."""

    id: str
    sha256: str
    name: str
    kind: str  # "gcode" | "3mf"
    size: int
    path: str
    meta: dict[str, Any]
    has_thumbnail: bool
    uploaded_by: str | None
    created_at: float

    def public(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256,
            "metadata": self.meta,
            "thumbnail_url": f"/api/files/{self.id}/thumbnail" if self.has_thumbnail else None,
            "uploaded_by": self.uploaded_by,
            "created_at": rfc3339(self.created_at),
        }


def _row(row: Any) -> FileRow:
    return FileRow(
        id=row["id"],
        sha256=row["sha256"],
        name=row["name"],
        kind=row["kind"],
        size=int(row["size"]),
        path=row["path"],
        meta=json.loads(row["meta"]),
        has_thumbnail=bool(row["has_thumbnail"]),
        uploaded_by=row["uploaded_by"],
        created_at=float(row["created_at"]),
    )


async def insert(db: Database, row: FileRow) -> None:
    """Store a new file record (the sha256 is unique: a clash raises the engine's error)."""
    await db.execute(
        "INSERT INTO print_files (id, sha256, name, kind, size, path, meta, has_thumbnail,"
        " uploaded_by, created_at) VALUES (:id, :sha, :name, :kind, :size, :path, :meta, :thumb,"
        " :by, :at)",
        {
            "id": row.id,
            "sha": row.sha256,
            "name": row.name,
            "kind": row.kind,
            "size": row.size,
            "path": row.path,
            "meta": json.dumps(row.meta),
            "thumb": 1 if row.has_thumbnail else 0,
            "by": row.uploaded_by,
            "at": row.created_at,
        },
    )


async def get(db: Database, file_id: str) -> FileRow | None:
    """One file by id."""
    row = await db.fetch_one("SELECT * FROM print_files WHERE id = :id", {"id": file_id})
    return None if row is None else _row(row)


async def by_sha256(db: Database, sha256: str) -> FileRow | None:
    """The file with this content, if stored."""
    row = await db.fetch_one("SELECT * FROM print_files WHERE sha256 = :s", {"s": sha256})
    return None if row is None else _row(row)


async def list_page(db: Database, *, limit: int, offset: int) -> tuple[list[FileRow], int]:
    """A page of files, newest first."""
    rows = await db.fetch_all(
        "SELECT * FROM print_files ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset",
        {"limit": limit, "offset": offset},
    )
    total = await db.fetch_val("SELECT COUNT(*) FROM print_files")
    return [_row(r) for r in rows], int(total or 0)


async def delete(db: Database, file_id: str) -> None:
    """Remove a file record."""
    await db.execute("DELETE FROM print_files WHERE id = :id", {"id": file_id})
