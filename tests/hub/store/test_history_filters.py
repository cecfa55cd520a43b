"""History filters on both engines: every filter and combination gives the rows and total that a
plain check of each record gives (trigram search, material relation, counts tables)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

import pytest
from databases import Database

from hub.store import history, history_query, prints
from hub.store.db import is_postgres
from hub.store.history_query import Filters

FILES = ["Benchy_v2.gcode", "benchy.3mf", "Part_100%.gcode", 'odd "name".gcode', "ab.gcode",
         "Großes Teil.gcode", "x_1.3mf"]  # fmt: skip
MATERIALS = [["PLA"], ["PETG"], ["PLA", "PETG"], [], ["TPU"]]
OUTCOMES = ["finished", "failed", "cancelled", None]  # lifecycle kinds, as telemetry closes


async def _fill(db: Database) -> list[dict[str, Any]]:
    """35 prints over 3 printers; materials written before or after the close, once rewritten."""
    made = []
    for i in range(35):
        key, printer = f"k{i}", f"p{i % 3}"
        file, mats, outcome = FILES[i % 7], MATERIALS[i % 5], OUTCOMES[i % 4]
        await prints.start(db, job_key=key, printer_id=printer, file=file,
                           started_at=1000.0 + i * 10, progress=0.0, total_layers=None)  # fmt: skip
        record = await prints.by_key(db, key)
        assert record is not None
        early = i % 2 == 0
        if early:  # noted while running (an AMS report), then closed
            for tray, m in enumerate(mats):
                await history.note_tray(db, record.id, tray, None, m, "#FFFFFF")
        if outcome is not None:
            await prints.finish(db, key, outcome, 2000.0 + i, 50.0)
        if not early or i % 6 == 0:  # written at the end (a rewrite drops and adds materials)
            trays = [
                {"tray": t, "spool_id": None, "material": m, "color": None, "grams": 1.0,
                 "mm": 330.0, "cost": None}
                for t, m in enumerate(mats)
            ]  # fmt: skip
            await history.write_usage(db, record.id, trays, layer=None, errors=[])
        made.append({"id": record.id, "printer": printer, "file": file, "materials": set(mats),
                     "outcome": {"finished": "completed"}.get(outcome or "running", outcome or "running"), "at": 1000.0 + i * 10})  # fmt: skip
    return made


def _keeps(f: Filters, row: dict[str, Any]) -> bool:
    return (
        (f.printer_id is None or row["printer"] == f.printer_id)
        and (f.outcome is None or row["outcome"] == f.outcome)
        and (f.since is None or row["at"] >= f.since)
        and (f.until is None or row["at"] < f.until)
        and (f.file is None or f.file.lower() in row["file"].lower())
        and (f.material is None or f.material in row["materials"])
    )


async def test_every_filter_and_combination_matches_a_plain_check(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await _fill(db)
    choices: dict[str, list[Any]] = {
        "printer_id": [None, "p1"],
        "outcome": [None, "completed", "failed", "running"],
        "since": [None, 1100.0],
        "until": [None, 1250.0],
        "file": [None, "BENCHY", "ab", "AB", "_1", "%", '"name"', "groß", "nothing"],
        "material": [None, "PLA", "TPU", "ABS"],
    }
    # Each value alone and every pair of filters (the dashboard combines any of them), plus
    # a few of three and more.
    combos: list[dict[str, Any]] = [{}]
    for a, b in itertools.combinations(choices, 2):
        combos += [{a: x, b: y} for x in choices[a][1:] for y in choices[b][1:]]
    combos += [{k: v} for k, vs in choices.items() for v in vs[1:]]
    combos += [
        {"printer_id": "p1", "outcome": "failed", "material": "PLA", "file": "benchy"},
        {"since": 1100.0, "until": 1250.0, "material": "PETG", "file": "gcode"},
        {"outcome": "running", "since": 1100.0, "file": "ab", "printer_id": "p0"},
    ]
    # A file filter reads from the matching names (few matches) or walks another index
    # checking names (many): both walks, every combination.
    # On PostgreSQL, many names are checked through a bitmap of their ids (ARRAY_MAX 0 here).
    for combo, drive_max, array_max in itertools.product(
        combos, (history_query.DRIVE_MAX, 0), (history_query.ARRAY_MAX, 0)
    ):
        if (drive_max == 0 or array_max == 0) and "file" not in combo:
            continue
        monkeypatch.setattr(history_query, "DRIVE_MAX", drive_max)
        monkeypatch.setattr(history_query, "ARRAY_MAX", array_max)
        filters = Filters(**combo)
        want = sorted((r for r in made if _keeps(filters, r)), key=lambda r: -r["at"])
        items, total = await history.page(db, filters, limit=4)
        assert total == len(want), filters
        assert [i["id"] for i in items] == [r["id"] for r in want[:4]], filters
        # A page past the end has no row to carry the total: it is counted on its own.
        beyond, total = await history.page(db, filters, limit=4, offset=len(want))
        assert (beyond, total) == ([], len(want)), filters
        if len(want) > 4:  # the keyset continuation of the same walk
            after = (items[-1]["_started_at"], items[-1]["id"])
            rest, _ = await history.page(db, filters, limit=100, after=after, count=False)
            assert [i["id"] for i in rest] == [r["id"] for r in want[4:]], filters
    # The material counts followed every note, rewrite and close.
    rows = await db.fetch_all(
        "SELECT printer_id, outcome, material, n FROM print_material_counts WHERE n <> 0"
    )
    got = {(r["printer_id"], r["outcome"], r["material"]): int(r["n"]) for r in rows}
    want: dict[tuple[str, str, str], int] = {}
    for r in made:
        for m in r["materials"]:
            k = (r["printer"], r["outcome"], m)
            want[k] = want.get(k, 0) + 1
    assert got == want


@pytest.mark.parametrize("array_max", [200, 0])
async def test_totals_equal_a_plain_count_on_random_data(
    db: Database, monkeypatch: pytest.MonkeyPatch, array_max: int
) -> None:
    """Random prints (names, printers, materials, outcomes, the order of tray notes, rewrites
    and closes): every total equals a count of the records, and the per-name counts tables
    (migration 0021) equal a grouping of the records."""
    if array_max == 0 and not is_postgres(db):
        pytest.skip("the bitmap of names is PostgreSQL's")
    monkeypatch.setattr(history_query, "ARRAY_MAX", array_max)  # array or bitmap of names
    rng = random.Random(14)
    names = ["cube.gcode", "Cube_2.gcode", "benchy.3mf", "gear_10.gcode", "gear_11.gcode",
             "clip.gcode"]  # fmt: skip
    made = []
    for i in range(60):
        key, printer, file = f"r{i}", f"p{rng.randrange(4)}", rng.choice(names)
        mats = rng.sample(["PLA", "PETG", "TPU"], rng.randrange(3))
        outcome = rng.choice(["finished", "failed", "cancelled", None])
        at = 1000.0 + rng.randrange(500)
        await prints.start(db, job_key=key, printer_id=printer, file=file, started_at=at,
                           progress=0.0, total_layers=None)  # fmt: skip
        record = await prints.by_key(db, key)
        assert record is not None
        trays = [{"tray": t, "spool_id": None, "material": m, "color": None, "grams": 1.0,
                  "mm": 330.0, "cost": None} for t, m in enumerate(mats)]  # fmt: skip
        if rng.random() < 0.5:  # seen while running, then perhaps rewritten with other trays
            for t in trays:
                await history.note_tray(db, record.id, t["tray"], None, t["material"], None)
        if outcome is not None:
            await prints.finish(db, key, outcome, at + 100, 50.0)
        if rng.random() < 0.7:
            await history.write_usage(db, record.id, trays, layer=None, errors=[])
        else:  # only the noted trays stay
            mats = [r["material"] for r in await history.noted_trays(db, record.id)]
        made.append({"id": record.id, "printer": printer, "file": file, "materials": set(mats),
                     "outcome": {"finished": "completed"}.get(outcome or "running", outcome or "running"), "at": at})  # fmt: skip
    for printer, outcome, file, material, since in itertools.product(
        [None, "p1"], [None, "completed", "running"], [None, "cube", "gear_1", "zzz"],
        [None, "PLA", "TPU"], [None, 1250.0],
    ):  # fmt: skip
        filters = Filters(printer_id=printer, outcome=outcome, file=file, material=material,
                          since=since)  # fmt: skip
        _, total = await history.page(db, filters, limit=1)
        assert total == sum(1 for r in made if _keeps(filters, r)), filters
    rows = await db.fetch_all(
        "SELECT h.file, c.printer_id, c.outcome, c.n FROM print_file_counts c"
        " JOIN history_files h ON h.id = c.file_id WHERE c.n <> 0"
    )
    got = {(r["file"], r["printer_id"], r["outcome"]): int(r["n"]) for r in rows}
    assert got == dict(Counter((r["file"], r["printer"], r["outcome"]) for r in made))
    rows = await db.fetch_all(
        "SELECT h.file, c.material, c.printer_id, c.outcome, c.n FROM print_file_material_counts c"
        " JOIN history_files h ON h.id = c.file_id WHERE c.n <> 0"
    )
    got_m = {(r["file"], r["material"], r["printer_id"], r["outcome"]): int(r["n"]) for r in rows}
    want_m = Counter(
        (r["file"], m, r["printer"], r["outcome"]) for r in made for m in r["materials"]
    )
    assert got_m == dict(want_m)


async def test_page_trays_and_lower_names_equal_the_plain_queries(db: Database) -> None:
    """A page's trays (read in the page's statement) equal `trays_of`'s, for prints with
    several trays written out of order, awkward floats, and none; on PostgreSQL each name's
    stored lower-cased copy (migration 0022) equals LOWER(file) after inserts and updates."""
    grams = [1 / 3, 0.1 + 0.2, 12.5, 1e-7, 123456.789012]
    for i, file in enumerate(FILES):
        key = f"t{i}"
        await prints.start(db, job_key=key, printer_id="p0", file=file,
                           started_at=1000.0 + i, progress=0.0, total_layers=None)  # fmt: skip
        record = await prints.by_key(db, key)
        assert record is not None
        trays = [
            {"tray": t, "spool_id": f"s{t}" if t else None, "material": "PLA" if t else None,
             "color": "#00FF00", "grams": grams[(i + t) % 5], "mm": grams[t % 5] * 330,
             "cost": None if t == 1 else grams[t % 5] / 7}
            for t in reversed(range(i % 4))
        ]  # fmt: skip
        await history.write_usage(db, record.id, trays, layer=None, errors=[])
    items, total = await history.page(db, Filters(), limit=50)
    assert total == len(FILES) == len(items)
    plain = await history.trays_of(db, [i["id"] for i in items])
    for item in items:
        assert item["filament"]["trays"] == plain.get(item["id"], []), item["file"]
    assert sum(len(i["filament"]["trays"]) for i in items) == sum(i % 4 for i in range(7))
    if is_postgres(db):
        await db.execute("UPDATE history_files SET file = file || 'X' WHERE file = 'ab.gcode'")
        rows = await db.fetch_all("SELECT file, file_lower, LOWER(file) AS l FROM history_files")
        assert len(rows) == len(FILES)
        assert all(r["file_lower"] == r["l"] for r in rows)
        assert {r["file_lower"] for r in rows} >= {"großes teil.gcode", "ab.gcodex"}
