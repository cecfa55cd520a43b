"""History filters as SQL: the index each filter reads, and the filtered total.

Every list is newest first, id as tie-break. Which index serves what (migrations 0003, 0014,
0015):
- printer, outcome, since/until: `prints` indexes ending in (started_at, id);
- material: the walk starts in `print_materials` (material, [printer | outcome,] started_at,
  print_id) and joins the page's prints by id;
- file substring of 3+ characters: a trigram index (SQLite FTS5 `prints_file`, PostgreSQL
  pg_trgm GIN on LOWER(file)); shorter substrings cannot use one and are checked row by row
  along whichever other index the query walks (docs/api.md states the rule).
Totals: `print_counts` / `print_material_counts` when only printer, outcome and material filter,
else a count over the same index the page reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.store.db import is_postgres

RUNNING = "running"  # the outcome filter's name for prints not yet ended
MIN_TRIGRAM = 3  # characters a substring needs to use the trigram index


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Filters:
    """What a history query keeps (every field optional)."""

    printer_id: str | None = None
    outcome: str | None = None
    since: float | None = None
    until: float | None = None
    file: str | None = None
    material: str | None = None

    def _file(self, postgres: bool, params: dict[str, Any]) -> list[str]:
        if not self.file:
            return []
        if postgres:
            params["f_file"] = _like(self.file)  # backslash is PostgreSQL's default escape
            return ["LOWER(prints.file) LIKE :f_file"]
        if len(self.file) >= MIN_TRIGRAM:
            params["f_fts"] = '"' + self.file.replace('"', '""') + '"'
            return [
                "prints.id IN (SELECT print_id FROM prints_file WHERE prints_file MATCH :f_fts)"
            ]
        params["f_file"] = _like(self.file)
        return ["LOWER(prints.file) LIKE :f_file ESCAPE '\\'"]

    def _common(self, table: str, params: dict[str, Any]) -> list[str]:
        conds: list[str] = []
        if self.printer_id is not None:
            conds.append(f"{table}.printer_id = :f_printer")
            params["f_printer"] = self.printer_id
        if self.outcome is not None:
            conds.append(f"{table}.outcome = :f_outcome")
            params["f_outcome"] = self.outcome
        if self.since is not None:
            conds.append(f"{table}.started_at >= :f_since")
            params["f_since"] = self.since
        if self.until is not None:
            conds.append(f"{table}.started_at < :f_until")
            params["f_until"] = self.until
        return conds

    def where(self, postgres: bool) -> tuple[list[str], dict[str, Any]]:
        """SQL conditions on `prints` (no other table in FROM) and their parameters."""
        params: dict[str, Any] = {}
        conds = self._common("prints", params)
        if self.outcome == RUNNING:
            conds = [c for c in conds if not c.startswith("prints.outcome")]
            conds.append("prints.outcome IS NULL")
            params.pop("f_outcome")
        if self.material is not None:
            conds.append(
                "prints.id IN (SELECT print_id FROM print_materials WHERE material = :f_material)"
            )
            params["f_material"] = self.material
        return conds + self._file(postgres, params), params

    def query(self, postgres: bool) -> Query:
        """The FROM, conditions and order of a page (and of its count)."""
        if self.material is None:
            conds, params = self.where(postgres)
            return Query("prints", conds, params, "prints.started_at", "prints.id", [])
        params = {"f_material": self.material}
        # print_materials carries printer, outcome ('running' while open) and start itself.
        pm_conds = ["pm.material = :f_material", *self._common("pm", params)]
        file_conds = self._file(postgres, params)
        source = "print_materials pm JOIN prints ON prints.id = pm.print_id"
        return Query(source, pm_conds + file_conds, params, "pm.started_at", "pm.print_id",
                     file_conds)  # fmt: skip


@dataclass(frozen=True)
class Query:
    """A history query's FROM, WHERE conditions, parameters and order columns."""

    source: str
    conds: list[str]
    params: dict[str, Any]
    at: str
    id: str
    needs_prints: list[str]  # conditions on `prints` when the walk is in print_materials

    def where(self, extra: list[str] | None = None) -> str:
        """The WHERE clause (with extra conditions)."""
        conds = self.conds + (extra or [])
        return f" WHERE {' AND '.join(conds)}" if conds else ""


async def total(db: Database, filters: Filters) -> int:
    """The filtered count, read from the counts tables or the index the page reads."""
    postgres = is_postgres(db)
    params: dict[str, Any] = {}
    if (filters.since, filters.until, filters.file) == (None, None, None):
        table = "print_counts"
        conds = []
        if filters.material is not None:
            table = "print_material_counts"
            conds.append("material = :m")
            params["m"] = filters.material
        if filters.printer_id is not None:
            conds.append("printer_id = :p")
            params["p"] = filters.printer_id
        if filters.outcome is not None:
            conds.append("outcome = :o")
            params["o"] = filters.outcome  # 'running' is a row of its own there
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return int(await db.fetch_val(f"SELECT SUM(n) FROM {table}{where}", params) or 0)
    query = filters.query(postgres)
    source = query.source
    if filters.material is not None and not query.needs_prints:
        source = "print_materials pm"  # every condition is on pm: no join
    value = await db.fetch_val(f"SELECT COUNT(*) FROM {source}{query.where()}", query.params)
    return int(value or 0)
