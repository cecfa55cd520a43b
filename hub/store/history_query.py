"""History filters as SQL: the index each filter reads, and the filtered total.

Every list is newest first, id as tie-break. Which index serves what (migrations 0003, 0014,
0015, 0016):
- printer, outcome, since/until: `prints` indexes ending in (started_at, id);
- material: the walk starts in `print_materials` (material, [printer | outcome,] started_at,
  print_id) and joins the page's prints by id;
- file substring: searched among the distinct names (`history_files`, with their print counts):
  3+ characters through a trigram index (SQLite FTS5 `history_files_fts`, PostgreSQL pg_trgm GIN
  on LOWER(file)), shorter ones by a scan of the names (docs/api.md states the rule). The sum of
  the names' counts is how many prints match; up to DRIVE_MAX the page is read from those names
  through the (file, started_at, id) index, above it along the other filters' index.
Totals: `print_counts` / `print_material_counts` when only printer, outcome and material filter,
the names' sum for a file filter alone, else a count over the same walk as the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.store.db import is_postgres

RUNNING = "running"  # the outcome filter's name for prints not yet ended
MIN_TRIGRAM = 3  # characters a substring needs to use the trigram index
# A file filter matching up to this many prints walks from the matching names (cost follows
# the matches); above it, along the newest-first index, where matches are dense enough.
DRIVE_MAX = 20_000


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

    def matched(self, postgres: bool, params: dict[str, Any]) -> str:
        """A subquery of the distinct file names (`history_files`) the substring matches."""
        assert self.file
        if postgres:
            params["f_file"] = _like(self.file)  # backslash is PostgreSQL's default escape
            return "SELECT file FROM history_files WHERE LOWER(file) LIKE :f_file"
        if len(self.file) >= MIN_TRIGRAM:
            params["f_fts"] = '"' + self.file.replace('"', '""') + '"'
            return "SELECT file FROM history_files_fts WHERE history_files_fts MATCH :f_fts"
        params["f_file"] = _like(self.file)
        return "SELECT file FROM history_files WHERE LOWER(file) LIKE :f_file ESCAPE '\\'"

    def _file(self, postgres: bool, params: dict[str, Any]) -> list[str]:
        if not self.file:
            return []
        # '+' keeps SQLite from reading the file index for it: the walk is the other index's.
        column = "prints.file" if postgres else "+prints.file"
        return [f"{column} IN ({self.matched(postgres, params)})"]

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

    def _on_prints(self, params: dict[str, Any]) -> list[str]:
        """`_common` on `prints`, where a running print has no outcome yet (NULL)."""
        conds = self._common("prints", params)
        if self.outcome == RUNNING:
            conds = [c for c in conds if not c.startswith("prints.outcome")]
            conds.append("prints.outcome IS NULL")
            params.pop("f_outcome")
        return conds

    def where(self, postgres: bool) -> tuple[list[str], dict[str, Any]]:
        """SQL conditions on `prints` (no other table in FROM) and their parameters."""
        params: dict[str, Any] = {}
        conds = self._on_prints(params)
        if self.material is not None:
            conds.append(
                "prints.id IN (SELECT print_id FROM print_materials WHERE material = :f_material)"
            )
            params["f_material"] = self.material
        return conds + self._file(postgres, params), params

    def query(self, postgres: bool, file_matches: int | None = None) -> Query:
        """The FROM, conditions and order of a page (and of its count). `file_matches` (the
        prints whose file name matches, `matches`) chooses the walk for a file filter: up to
        DRIVE_MAX, from the matching names through the file index; above, along the other
        filters' index (newest first), checking each print's name against the matching ones."""
        if self.file and file_matches is not None and file_matches <= DRIVE_MAX:
            return self._driven(postgres)
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

    def _driven(self, postgres: bool) -> Query:
        params: dict[str, Any] = {}
        names = self.matched(postgres, params)
        if postgres:  # the file index is on md5(file): any length of name fits a btree
            join = f"({names}) m JOIN prints ON md5(prints.file) = md5(m.file) AND prints.file = m.file"
        else:
            join = f"({names}) m CROSS JOIN prints ON prints.file = m.file"
        conds = self._on_prints(params)
        if self.material is not None:
            conds.append(
                "EXISTS (SELECT 1 FROM print_materials pm WHERE pm.print_id = prints.id"
                " AND pm.material = :f_material)"
            )
            params["f_material"] = self.material
        return Query(join, conds, params, "prints.started_at", "prints.id", conds)


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


async def matches(db: Database, filters: Filters) -> int | None:
    """How many prints have a file name the substring matches (None without a file filter):
    a sum over the matching distinct names, whose `n` hub/store/prints.py keeps."""
    if not filters.file:
        return None
    params: dict[str, Any] = {}
    names = filters.matched(is_postgres(db), params)
    if names.startswith("SELECT file FROM history_files WHERE "):
        # The names are this table's own rows: no join back by name.
        query = "SELECT SUM(n) FROM history_files WHERE " + names.split(" WHERE ", 1)[1]
    else:
        query = f"SELECT SUM(n) FROM history_files WHERE file IN ({names})"
    return int(await db.fetch_val(query, params) or 0)


async def total(db: Database, filters: Filters, file_matches: int | None = None) -> int:
    """The filtered count, read from the counts tables or the index the page reads."""
    postgres = is_postgres(db)
    params: dict[str, Any] = {}
    if file_matches is not None and filters == Filters(file=filters.file):
        return file_matches
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
    query = filters.query(postgres, file_matches)
    source = query.source
    if source.startswith("print_materials") and not query.needs_prints:
        source = "print_materials pm"  # every condition is on pm: no join
    value = await db.fetch_val(f"SELECT COUNT(*) FROM {source}{query.where()}", query.params)
    return int(value or 0)
