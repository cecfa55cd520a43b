"""`make bench-history`: print history at a million rows on SQLite and PostgreSQL.

Fills N prints (default 1,000,000; `--rows`) with their per-tray filament rows and spool ledger
entries straight into the database in bulk SQL, starts a `printforge serve` process on it, then
measures `GET /api/history` p50/p99 for each filter (sequential requests on one connection) and
the hub's RSS growth while a full CSV export streams. Usage:

    python bench/bench_history.py [--rows N] [--requests R] [--engines sqlite,postgresql]
                                  [--no-export] [--keep DIR]

`--no-export` skips the CSV export (minutes per engine) when only the query figures matter.
`--keep DIR` fills each engine once and keeps it (DIR/history.db, PostgreSQL database
`bench_history_keep`); a later run with the same DIR reuses it (the hub migrates it on start),
so query changes can be measured again without minutes of filling.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from _proc import percentile
from hub_proc import ADMIN_PASSWORD, RATE_PER_MINUTE, RATE_PER_SECOND, HubProcess

from hub.model import rfc3339
from hub.store import db as store

PG_BASE = "postgresql+asyncpg://postgres@127.0.0.1:5432"
PG_ADMIN = f"{PG_BASE}/postgres"
KEEP_PG = "bench_history_keep"  # the database --keep fills once and reuses
PRINTERS = 200
DAY = 86400.0
SPAN_DAYS = 730  # the prints spread over two years, newest now
MATERIALS = ("PLA", "PETG", "ABS", "TPU")

# Rows made by the database itself: x = 0..N-1, deterministic mixes of printer, outcome, file.
_ROWS = """
SELECT
  'p' || {pad_id} AS id,
  'k' || CAST(x AS TEXT) AS job_key,
  'printer-' || CAST((x - (x / {printers}) * {printers}) AS TEXT) AS printer_id,
  CASE (x - (x / 7) * 7) WHEN 0 THEN 'benchy_' ELSE 'part_' END || CAST((x - (x / 5000) * 5000) AS TEXT) || '.gcode' AS file,
  CASE WHEN (x - (x / 10) * 10) < 7 THEN 'completed' WHEN (x - (x / 10) * 10) < 9 THEN 'failed' ELSE 'cancelled' END
    AS state,
  CASE WHEN (x - (x / 10) * 10) < 7 THEN 'completed' WHEN (x - (x / 10) * 10) < 9 THEN 'failed' ELSE 'cancelled' END
    AS outcome,
  100.0 AS progress, 100 AS total_layers,
  {now} - {span} + x * ({span} / {rows}) AS started_at,
  {now} - {span} + x * ({span} / {rows}) + 3600 AS ended_at,
  {now} AS updated_at,
  'Printer ' || CAST((x - (x / {printers}) * {printers}) AS TEXT) AS printer_name,
  100 AS layer,
  12.5 AS filament_g, 4150.0 AS filament_mm, 0.3125 AS cost
FROM {source}
"""


def source(postgres: bool, rows: int) -> str:
    """The row generator of each engine."""
    if postgres:
        return f"generate_series(0, {rows - 1}) AS g(x)"
    return f"(WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {rows - 1}) SELECT x FROM c) AS g"


async def fill(url: str, rows: int) -> float:
    """Migrate and fill the database; return seconds taken."""
    started = time.monotonic()
    db = await store.connect(url)
    postgres = store.is_postgres(db)
    try:
        await store.migrate(db)
        pad = "LPAD(CAST(x AS TEXT), 8, '0')" if postgres else "substr('0000000' || x, -8, 8)"
        now = time.time()
        sql = _ROWS.format(
            pad_id=pad, printers=PRINTERS, now=now, span=SPAN_DAYS * DAY, rows=float(rows),
            source=source(postgres, rows),
        )  # fmt: skip
        columns = (
            "id, job_key, printer_id, file, state, outcome, progress, total_layers, started_at,"
            " ended_at, updated_at, printer_name, layer, filament_g, filament_mm, cost"
        )
        async with db.transaction():
            await db.execute(f"INSERT INTO prints ({columns}) {sql}")
            material = " ".join(f"WHEN {i} THEN '{m}'" for i, m in enumerate(MATERIALS))
            await db.execute(
                "INSERT INTO print_filament (print_id, tray, spool_id, material, color, grams,"
                f" mm, cost) SELECT 'p' || {pad}, (x - (x / 4) * 4), 'spool-' || CAST((x - (x / 50) * 50) AS TEXT),"
                f" CASE (x - (x / {len(MATERIALS)}) * {len(MATERIALS)}) {material} END, '#FF0000', 12.5, 4150.0, 0.3125"
                f" FROM {source(postgres, rows)}"
            )
            await db.execute(
                "INSERT INTO spool_ledger (id, spool_id, kind, delta_g, print_id, printer_id,"
                f" tray, note, created_at) SELECT 'l' || {pad}, 'spool-' || CAST((x - (x / 50) * 50) AS TEXT),"
                f" 'print', -12.5, 'p' || {pad}, 'printer-' || CAST((x - (x / {PRINTERS}) * {PRINTERS}) AS TEXT),"
                f" (x - (x / 4) * 4), NULL, {now} - {SPAN_DAYS * DAY} + x * ({SPAN_DAYS * DAY} / {float(rows)})"
                f" FROM {source(postgres, rows)}"
            )
            # What hub/store/prints.py and print_materials.py keep as they write, made once
            # for the bulk rows.
            await db.execute(
                "INSERT INTO history_files (file, n) SELECT file, COUNT(*) FROM prints GROUP BY file"
            )
            if not postgres:
                await db.execute(
                    "INSERT INTO history_files_fts (rowid, file) SELECT id, file FROM history_files"
                )
            if postgres:  # a join: history_files' key is md5(file), not the name itself
                await db.execute(
                    "UPDATE prints SET file_id = h.id FROM history_files h"
                    " WHERE md5(h.file) = md5(prints.file)"
                )
            else:
                await db.execute(
                    "UPDATE prints SET file_id = (SELECT h.id FROM history_files h"
                    " WHERE h.file = prints.file)"
                )
            await db.execute(
                "INSERT INTO print_materials (print_id, material, printer_id, outcome,"
                " started_at, file_id) SELECT DISTINCT pf.print_id, pf.material, p.printer_id,"
                " COALESCE(p.outcome, 'running'), p.started_at, p.file_id FROM print_filament pf"
                " JOIN prints p ON p.id = pf.print_id WHERE pf.material IS NOT NULL"
            )
            await db.execute(
                "INSERT INTO print_material_counts (printer_id, outcome, material, n)"
                " SELECT printer_id, outcome, material, COUNT(*) FROM print_materials"
                " GROUP BY printer_id, outcome, material"
            )
            await db.execute(
                "INSERT INTO print_file_counts (file_id, printer_id, outcome, n) SELECT file_id,"
                " printer_id, COALESCE(outcome, 'running'), COUNT(*) FROM prints"
                " GROUP BY file_id, printer_id, COALESCE(outcome, 'running')"
            )
            await db.execute(
                "INSERT INTO print_file_material_counts (material, file_id, printer_id, outcome,"
                " n) SELECT material, file_id, printer_id, outcome, COUNT(*) FROM print_materials"
                " GROUP BY material, file_id, printer_id, outcome"
            )
            await db.execute("DELETE FROM print_counts")
            await db.execute(
                "INSERT INTO print_counts (printer_id, outcome, n) SELECT printer_id,"
                " COALESCE(outcome, 'running'), COUNT(*) FROM prints"
                " GROUP BY printer_id, COALESCE(outcome, 'running')"
            )
        # The steady state autovacuum keeps: statistics, and on PostgreSQL the visibility map
        # that lets the history's walks be index-only scans.
        await db.execute("VACUUM ANALYZE" if postgres else "ANALYZE")
    finally:
        await db.disconnect()
    return time.monotonic() - started


async def migrate(url: str) -> float:
    """Bring a kept database to the current schema; return seconds taken (0 when it was)."""
    started = time.monotonic()
    db = await store.connect(url)
    try:
        applied = await store.migrate(db)
        if applied and store.is_postgres(db):
            await db.execute("VACUUM ANALYZE")
    finally:
        await db.disconnect()
    if applied:
        print(f"  migrated {applied} in {time.monotonic() - started:.0f} s", flush=True)
    return time.monotonic() - started if applied else 0.0


def filters() -> dict[str, str]:
    """The queries measured: no filter, each filter alone, then the combinations the dashboard's
    filter bar makes (first page of 50). printer-17 prints only PETG (x mod 4 = 1), so
    `printer-17` with `PLA` matches nothing: the worst case for a plan that scans and checks."""
    week_ago = rfc3339(time.time() - 7 * DAY)
    month = (rfc3339(time.time() - 60 * DAY), rfc3339(time.time() - 30 * DAY))
    span = f"since={month[0]}&until={month[1]}"
    return {
        "none": "",
        "printer": "printer=printer-17",
        "outcome": "outcome=cancelled",
        "since": f"since={week_ago}",
        "since+until": span,
        "file": "file=benchy_42",
        "file (rare)": "file=benchy_4242.",
        "file (common)": "file=part",
        "file (2 chars)": "file=_4",
        "material": "material=TPU",
        "printer+outcome": "printer=printer-17&outcome=failed",
        "printer+material": "printer=printer-17&material=PETG",
        "printer+material (none)": "printer=printer-17&material=PLA",
        "outcome+material": "outcome=failed&material=TPU",
        "material+since+until": f"material=TPU&{span}",
        "outcome+since+until": f"outcome=cancelled&{span}",
        "file+printer": "file=benchy_42&printer=printer-17",
        "file+material": "file=benchy_42&material=PLA",
        "file+outcome+since": f"file=benchy&outcome=failed&since={week_ago}",
        "file(common)+material": "file=part&material=TPU",
        "file(2)+printer+material": "file=_4&printer=printer-17&material=PETG",
        "page 100": "page=100",
    }


class HistoryHub(HubProcess):
    """A hub process on a given database, with no printers."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        super().__init__(workdir)
        self.database_url = database_url

    async def prepare(self, entries: list[dict[str, Any]]) -> None:
        """Write the configuration (the database filled beforehand)."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'data_dir = "{data}"\n'
            "[database]\n"
            f'url = "{self.database_url}"\n'
            "[server]\n"
            f'host = "127.0.0.1"\nhttps_port = {self.port}\ntls = false\n'
            'log_level = "warning"\n'
            "[auth]\n"
            f'admin_password = "{ADMIN_PASSWORD}"\n'
            "[rate_limit]\n"
            f"enabled = true\nper_minute = {RATE_PER_MINUTE}\nper_second = {RATE_PER_SECOND}\n",
            encoding="utf-8",
        )


async def measure(hub: HistoryHub, requests: int, export: bool = True) -> dict[str, Any]:
    """Latency per filter, then RSS during a full export."""
    assert hub.session is not None
    out: dict[str, Any] = {"latency_ms": {}}
    for name, query in filters().items():
        url = f"{hub.base}/api/history?{query}"
        times = []
        total = 0
        for i in range(requests + 5):
            started = time.perf_counter()
            async with hub.session.get(url, headers=hub.headers) as r:
                body = await r.json()
                assert r.status == 200, body
            if i >= 5:  # warm-up
                times.append((time.perf_counter() - started) * 1000)
            total = body["total"]
        out["latency_ms"][name] = {
            "p50": round(percentile(times, 50), 2),
            "p99": round(percentile(times, 99), 2),
            "total": total,
        }
        print(f"  GET /api/history?{query or '(no filter)'}: p50 {out['latency_ms'][name]['p50']} ms,"
              f" p99 {out['latency_ms'][name]['p99']} ms (total {total})", flush=True)  # fmt: skip
    if not export:
        return out
    base_rss = hub.rss_mib()
    peak = base_rss
    size = 0
    lines = 0
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=3600)
    async with hub.session.get(
        f"{hub.base}/api/history/export", headers=hub.headers, timeout=timeout
    ) as r:
        assert r.status == 200
        async for chunk in r.content.iter_chunked(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\r\n")
            peak = max(peak, hub.rss_mib())
    out["export"] = {
        "seconds": round(time.monotonic() - started, 1),
        "mib": round(size / 2**20, 1),
        "lines": lines,
        "rss_before_mib": round(base_rss, 1),
        "rss_peak_mib": round(peak, 1),
        "rss_growth_mib": round(peak - base_rss, 1),
    }
    print(f"  export: {out['export']}", flush=True)
    return out


async def _database(engine: str, workdir: Path, keep: Path | None) -> tuple[str, str, bool]:
    """(url, PostgreSQL database to drop after or '', whether it is filled already)."""
    if engine == "sqlite":
        path = (keep or workdir) / "history.db"
        return f"sqlite+aiosqlite:///{path}", "", keep is not None and path.exists()
    admin = await store.connect(PG_ADMIN)
    try:
        name = KEEP_PG if keep else f"bench_history_{uuid.uuid4().hex[:8]}"
        marker = keep / "postgresql.filled" if keep else None
        exists = await admin.fetch_val(
            "SELECT COUNT(*) FROM pg_database WHERE datname = :n", {"n": name}
        )
        if exists and marker is not None and marker.exists():
            return f"{PG_BASE}/{name}", "", True
        if exists:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.disconnect()
    return f"{PG_BASE}/{name}", "" if keep else name, False


async def run_engine(
    engine: str, rows: int, requests: int, export: bool, keep: Path | None = None
) -> dict[str, Any]:
    """Fill one engine (or reuse a kept one), start a hub on it, measure, clean up."""
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        workdir = Path(tmp)
        if keep is not None:
            await asyncio.to_thread(keep.mkdir, parents=True, exist_ok=True)
        url, pg_name, filled = await _database(engine, workdir, keep)
        try:
            seconds = 0.0
            if filled:
                print(f"{engine}: reusing the kept database {url}", flush=True)
                seconds = await migrate(url)  # before the hub, whose health wait is short
            else:
                print(f"{engine}: filling {rows:,} prints ...", flush=True)
                seconds = await fill(url, rows)
                print(f"{engine}: filled in {seconds:.0f} s", flush=True)
                if keep is not None and engine != "sqlite":
                    (keep / "postgresql.filled").write_text(url, encoding="utf-8")
            hub = HistoryHub(workdir, url)
            await hub.prepare([])
            await hub.start()
            try:
                result = await measure(hub, requests, export)
            finally:
                await hub.stop()
            result["fill_s"] = round(seconds, 1)
            return result
        finally:
            if pg_name:
                admin = await store.connect(PG_ADMIN)
                await admin.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
                await admin.disconnect()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV export")
    parser.add_argument("--keep", type=Path, help="keep the filled databases here and reuse them")
    args = parser.parse_args()
    results = {}
    for engine in args.engines.split(","):
        results[engine] = await run_engine(
            engine, args.rows, args.requests, not args.no_export, args.keep
        )
    print("\nsummary (p50 / p99 ms):")
    names = list(filters())
    print(f"  {'filter':<24}" + "".join(f"{e:>22}" for e in results))
    for name in names:
        cells = "".join(
            f"{r['latency_ms'][name]['p50']:>10} / {r['latency_ms'][name]['p99']:<9}"
            for r in results.values()
        )
        print(f"  {name:<24}{cells}")
    for engine, r in results.items():
        if "export" not in r:
            continue
        e = r["export"]
        print(f"  {engine} export: {e['lines']:,} lines, {e['mib']} MiB in {e['seconds']} s,"
              f" RSS +{e['rss_growth_mib']} MiB (from {e['rss_before_mib']})")  # fmt: skip


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
