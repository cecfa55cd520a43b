"""History filters as SQL: the index each filter reads, and the filtered total.

Every list is newest first, id as tie-break. Which index serves what (migrations 0003, 0014,
0015, 0016, 0019, 0021, 0022):
- file substring: searched among the distinct names (`history_files`, with their ids and print
  counts): 3+ characters through a trigram index (SQLite FTS5 `history_files_fts`, whose rowid is
  the name's id; PostgreSQL pg_trgm GIN on the stored lower-cased copy `file_lower`), shorter
  ones by a scan of the names (docs/api.md states the rule). The sum of the names' counts is
  how many prints match; up to DRIVE_MAX the walk starts at those names' ids (`file_id`) in
  prints_file_cover, or in print_materials_file with a material; above it, along the other
  filters' index;
- printer, outcome, since/until: `prints` indexes (…, started_at, id);
- material: `print_materials` (material, [printer | outcome | file_id,] started_at, print_id),
  which carries the print's printer, outcome, start and file id: no join to prints.
Each index holds the columns the other filters check (file_id, printer, outcome), so a page's
keys and a count are read from the index alone; the page's rows are then fetched by id.
Totals: `print_counts` / `print_material_counts` when only printer, outcome and material filter,
the names' sum for a file filter alone, `print_file_counts` / `print_file_material_counts` (per
name, migration 0021) for a file filter with those, else a count over the same walk as the page.
The names are matched once per request (`match_names`); the page and the total name their ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from databases import Database

from hub.store.db import is_postgres
from hub.store.prints import SQLITE_HAS_JSON_UPDATE

RUNNING = "running"  # the outcome filter's name for prints not yet ended
MIN_TRIGRAM = 3  # characters a substring needs to use the trigram index
# A file filter matching up to this many prints walks from the matching names (cost follows
# the matches); above it, along the newest-first index, where matches are dense enough.
DRIVE_MAX = 20_000
# PostgreSQL: up to this many matching names are passed as an array (which the planner
# estimates element by element: ~10 ms for 5,000 ids under load); more, as a bitmap.
ARRAY_MAX = 200


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
        """A subquery of the ids of the distinct file names (`history_files`) the substring
        matches."""
        assert self.file
        if postgres:
            # The stored lower-cased copy (migration 0022): no LOWER per name.
            params["f_file"] = _like(self.file)  # backslash is PostgreSQL's default escape
            return "SELECT id FROM history_files WHERE file_lower LIKE :f_file"
        if len(self.file) >= MIN_TRIGRAM:
            params["f_fts"] = '"' + self.file.replace('"', '""') + '"'
            return "SELECT rowid FROM history_files_fts WHERE history_files_fts MATCH :f_fts"
        # SQLite's LIKE ignores ASCII case and its LOWER folds nothing more: the same names as
        # LOWER(file) LIKE, without a LOWER per name (migration 0022's note).
        params["f_file"] = _like(self.file)
        return "SELECT id FROM history_files WHERE file LIKE :f_file ESCAPE '\\'"

    def _file(
        self, table: str, postgres: bool, params: dict[str, Any], drive: bool,
        names: Names | None = None,
    ) -> list[str]:  # fmt: skip
        if not self.file:
            return []
        # '+' keeps SQLite from reading the file index when another index is the walk.
        column = f"{table}.file_id" if postgres or drive else f"+{table}.file_id"
        if names is None:
            return [f"{column} IN ({self.matched(postgres, params)})"]
        if postgres and not drive and len(names.ids) > ARRAY_MAX:
            # Many names, checked along another walk: a bitmap of the ids, one bit test per
            # entry, where an array of thousands of ids costs the planner milliseconds.
            params["f_bits"], params["f_nbits"] = names.bitmap()
            bit = f"get_bit(CAST(:f_bits AS BYTEA), CAST({column} AS INTEGER))"
            return [f"(CASE WHEN {column} < :f_nbits THEN {bit} ELSE 0 END) = 1"]
        if postgres:
            params["f_ids"] = names.ids
            return [f"{column} = ANY(CAST(:f_ids AS BIGINT[]))"]
        return [f"{column} IN ({names.sqlite(params)})"]

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
        return conds + self._file("prints", postgres, params, False), params

    def query(self, postgres: bool, names: Names | None = None) -> Query:
        """The FROM, conditions and order of a page (and of its count). `names` (the matching
        file names, `match_names`) chooses the walk for a file filter: up to DRIVE_MAX
        matching prints, from the names' ids through the file index; above, along the other
        filters' index (newest first), checking each entry's file id against the names'."""
        drive = bool(self.file) and names is not None and names.prints <= DRIVE_MAX
        params: dict[str, Any] = {}
        if self.material is None:
            table, at, key = "prints", "prints.started_at", "prints.id"
            conds = self._on_prints(params)
        else:
            # print_materials carries printer, outcome ('running' while open), start, file id.
            table, at, key = "print_materials pm", "pm.started_at", "pm.print_id"
            params["f_material"] = self.material
            conds = ["pm.material = :f_material", *self._common("pm", params)]
        alias = table.split()[-1]
        files = self._file(alias, postgres, params, drive, names)
        per_name = None
        if drive and postgres:  # a page is the newest of each name's newest (lateral, below)
            per_name = "SELECT unnest(CAST(:f_ids AS BIGINT[])) AS id"
        elif drive:  # SQLite: the file index, whatever the planner guesses of the order
            table += " INDEXED BY " + ("prints_file_cover" if alias == "prints" else
                                       "print_materials_file")  # fmt: skip
        return Query(table, conds + files, params, at, key, per_name)


@dataclass(frozen=True)
class Names:
    """The distinct file names a substring matches (`history_files` ids), matched once per
    request, and how many prints carry them."""

    ids: list[int]
    prints: int

    def bitmap(self) -> tuple[bytes, int]:
        """The ids as a bitmap (bit i of byte i // 8, least significant first, as PostgreSQL's
        get_bit reads it) and its length in bits."""
        bits = bytearray(max(self.ids, default=0) // 8 + 1)
        for i in self.ids:
            bits[i >> 3] |= 1 << (i & 7)
        return bytes(bits), len(bits) * 8

    def sqlite(self, params: dict[str, Any]) -> str:
        """The ids as a SQLite subquery (one JSON parameter; literals without JSON functions)."""
        if SQLITE_HAS_JSON_UPDATE:
            params["f_ids"] = json.dumps(self.ids)
            return "SELECT value FROM json_each(:f_ids)"
        return ", ".join(str(int(i)) for i in self.ids) or "NULL"


@dataclass(frozen=True)
class Query:
    """A history query's FROM, WHERE conditions (a file filter's last), parameters, order
    columns, and for PostgreSQL's walk from the matching names their subquery."""

    source: str
    conds: list[str]
    params: dict[str, Any]
    at: str
    id: str
    per_name: str | None = None

    def where(self, extra: list[str] | None = None) -> str:
        """The WHERE clause (with extra conditions)."""
        conds = self.conds + (extra or [])
        return f" WHERE {' AND '.join(conds)}" if conds else ""

    def keys(self, extra: list[str]) -> str:
        """A page's keys (k_id, k_at), newest first, read from the walk's index alone; takes
        :limit and :offset. From the names, PostgreSQL takes each name's newest limit+offset
        (index order, file_id first) and merges those: its planner, misjudging how the names'
        prints spread over time, would otherwise walk every print newest first."""
        order = f" ORDER BY {self.at} DESC, {self.id} DESC"
        if self.per_name is None:
            return (f"SELECT {self.id} AS k_id, {self.at} AS k_at FROM {self.source}"
                    f"{self.where(extra)}{order} LIMIT :limit OFFSET :offset")  # fmt: skip
        alias = self.source.split()[-1]
        conds = [f"{alias}.file_id = m.id", *self.conds[:-1], *extra]
        newest = (f"SELECT {self.id} AS k_id, {self.at} AS k_at FROM {self.source}"
                  f" WHERE {' AND '.join(conds)}{order} LIMIT CAST(:limit AS BIGINT) + CAST(:offset AS BIGINT)")  # fmt: skip
        return (f"SELECT k.k_id, k.k_at FROM ({self.per_name}) m CROSS JOIN LATERAL ({newest}) k"
                " ORDER BY k.k_at DESC, k.k_id DESC LIMIT :limit OFFSET :offset")  # fmt: skip


async def match_names(db: Database, filters: Filters) -> Names | None:
    """The file names the substring matches, with the sum of their print counts (`n`, kept by
    hub/store/prints.py); None without a file filter. One statement: the page and the total
    then name the ids, so the names are searched once per request."""
    if not filters.file:
        return None
    postgres = is_postgres(db)
    params: dict[str, Any] = {}
    names = filters.matched(postgres, params)
    ids = "array_agg(id)" if postgres else "json_group_array(id)"
    if names.startswith("SELECT id FROM history_files WHERE "):
        # The names are this table's own rows: no join back by id.
        query = f"SELECT {ids}, SUM(n) FROM history_files WHERE " + names.split(" WHERE ", 1)[1]
    else:
        query = f"SELECT {ids}, SUM(n) FROM history_files WHERE id IN ({names})"
    row = await db.fetch_one(query, params)
    assert row is not None  # an aggregate answers one row
    found = row[0] if postgres else json.loads(row[0] or "[]")
    return Names([int(i) for i in found or []], int(row[1] or 0))


def total_statement(
    postgres: bool, filters: Filters, names: Names | None = None
) -> int | tuple[str, dict[str, Any]]:
    """The filtered count: the number itself when the names' sum gives it, else a statement
    (SELECT of one value) reading the counts tables or the index the page reads."""
    params: dict[str, Any] = {}
    if names is not None:
        if names.prints == 0:
            return 0
        if filters == Filters(file=filters.file):
            return names.prints
    if (filters.since, filters.until) == (None, None):
        table = "print_counts"
        conds = []
        if filters.material is not None:
            table = "print_material_counts"
            conds.append("material = :m")
            params["m"] = filters.material
        if filters.file is not None:
            # Per name (migration 0021): a sum over the matching names' rows.
            table = (
                "print_file_counts" if filters.material is None else "print_file_material_counts"
            )
            probe = not postgres or names is None or len(names.ids) <= ARRAY_MAX
            conds += filters._file(table, postgres, params, probe, names)
        if filters.printer_id is not None:
            conds.append("printer_id = :p")
            params["p"] = filters.printer_id
        if filters.outcome is not None:
            conds.append("outcome = :o")
            params["o"] = filters.outcome  # 'running' is a row of its own there
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return f"SELECT SUM(n) FROM {table}{where}", params
    query = filters.query(postgres, names)
    return f"SELECT COUNT(*) FROM {query.source}{query.where()}", query.params


async def total(db: Database, filters: Filters, names: Names | None = None) -> int:
    """The filtered count, read from the counts tables or the index the page reads."""
    statement = total_statement(is_postgres(db), filters, names)
    if isinstance(statement, int):
        return statement
    return int(await db.fetch_val(*statement) or 0)
