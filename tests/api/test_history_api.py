"""History API: filters, stable paging, notes, CSV export (escaping, injection), statistics."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from api.blueprints.history import safe_cell
from hub.model import rfc3339
from hub.store import history as history_store
from hub.store import prints as prints_store
from tests.api.conftest import Api, assert_problem

DAY = 86400.0
T0 = 1_790_000_000.0 - (1_790_000_000.0 % DAY)  # a UTC midnight


async def _print(
    api: Api, key: str, printer: str, file: str, started: float, outcome: str | None,
    duration: float = 3600.0, trays: list[tuple[int, str, str, float, float | None]] = (),  # type: ignore[assignment]
) -> str:  # fmt: skip
    db = api.hub.db
    await prints_store.start(
        db, job_key=key, printer_id=printer, file=file, started_at=started, progress=0.0,
        total_layers=10,
    )  # fmt: skip
    if outcome is not None:
        await prints_store.finish(db, key, outcome, started + duration, 100.0)
    record = await prints_store.by_key(db, key)
    assert record is not None
    if trays:
        await history_store.write_usage(
            db, record.id,
            [{"tray": t, "spool_id": None, "material": m, "color": c, "grams": g,
              "mm": g * 330, "cost": cost} for t, m, c, g, cost in trays],
            layer=10, errors=[],
        )  # fmt: skip
    return record.id


async def _get(api: Api, url: str) -> dict[str, Any]:
    r = await api.client.get(url, headers=api.auth("viewer"))
    assert r.status_code == 200, await r.get_data(as_text=True)
    body: dict[str, Any] = await r.get_json()
    return body


async def test_filters_order_record_and_notes(api: Api) -> None:
    a = await _print(api, "a", "p1", "Benchy.gcode", T0 + 100, "finished",
                     trays=[(0, "PLA", "#FF0000", 10.0, 0.2)])  # fmt: skip
    b = await _print(api, "b", "p2", "bracket_v2.3mf", T0 + 200, "failed",
                     trays=[(1, "PETG", "#FFFFFF", 4.0, None)])  # fmt: skip
    c = await _print(api, "c", "p1", "benchy_50%.gcode", T0 + 300, "cancelled")
    d = await _print(api, "d", "p2", "cube.gcode", T0 + 300, None)  # same start as c: id decides
    e = await _print(api, "e", "p1", "cube.gcode", T0 + DAY, "unknown")
    body = await _get(api, "/api/history")
    tie = sorted([c, d], reverse=True)
    assert [i["id"] for i in body["items"]] == [e, *tie, b, a]
    assert body["total"] == 5 and body["page"] == 1

    async def ids(query: str) -> list[str]:
        body = await _get(api, f"/api/history?{query}")
        assert body["total"] == len(body["items"]), query  # counted or from print_counts
        return [i["id"] for i in body["items"]]

    assert await ids("printer=p2") == [d, b]
    assert await ids("outcome=failed") == [b]
    assert await ids("outcome=unknown") == [e]
    assert await ids("outcome=running") == [d]
    assert await ids("file=BENCHY") == [c, a]
    assert await ids("file=50%25") == [c]  # '%' is a character, not a wildcard
    assert await ids("file=_v2") == [b]
    assert await ids("material=PETG") == [b]
    assert await ids(f"since={rfc3339(T0 + 200)}&until={rfc3339(T0 + 300)}") == [b]
    assert await ids("since=1970-01-01&printer=p1&outcome=completed") == [a]
    # History's word is `completed`; the lifecycle's `finished` is not an outcome here.
    r = await api.client.get("/api/history?outcome=finished", headers=api.auth("viewer"))
    await assert_problem(r, 400)
    for query, field in (("outcome=done", "outcome"), ("since=yesterday", "since"),
                         ("material=WOOD", "material"), ("cursor=zz", "cursor"),
                         ("per_page=501", "per_page"), ("colour=red", "colour")):  # fmt: skip
        r = await api.client.get(f"/api/history?{query}", headers=api.auth("viewer"))
        assert (await assert_problem(r, 400))["errors"][0]["field"] == field, query

    record = await _get(api, f"/api/history/{a}")
    assert record["printer"] == {"id": "p1", "name": None} and record["outcome"] == "completed"
    assert record["started_at"] == rfc3339(T0 + 100) and record["duration_s"] == 3600.0
    assert record["filament"]["grams"] == 10.0 and record["cost"] == 0.2
    assert record["filament"]["trays"][0]["material"] == "PLA"
    r = await api.client.patch(f"/api/history/{a}", json={"notes": "warped"},
                               headers=api.auth("viewer"))  # fmt: skip
    await assert_problem(r, 403)
    r = await api.client.patch(f"/api/history/{a}", json={"notes": "warped"},
                               headers=api.auth("operator"))  # fmt: skip
    assert (await r.get_json())["notes"] == "warped"
    r = await api.client.patch(
        "/api/history/nope", json={"notes": "x"}, headers=api.auth("operator")
    )
    await assert_problem(r, 404)
    r = await api.client.patch(f"/api/history/{a}", json={"notes": 5}, headers=api.auth("operator"))
    assert (await assert_problem(r, 400))["errors"][0]["field"] == "notes"
    assert (await _get(api, f"/api/history/{a}"))["notes"] == "warped"

    # Closing a closed print, or the same open one twice at once, moves no count twice.
    assert not await prints_store.finish(api.hub.db, "a", "failed", T0 + 999, 50.0)
    await _print(api, "f", "p3", "x.gcode", T0 + 50, None)
    closes = [prints_store.finish(api.hub.db, "f", "failed", T0 + 60, 10.0) for _ in range(2)]
    assert sorted(await asyncio.gather(*closes)) == [False, True]
    assert await ids("printer=p3&outcome=failed") != []
    assert await ids("printer=p3&outcome=running") == []


async def test_cursor_walk_is_stable_while_new_prints_land(api: Api) -> None:
    ids = [await _print(api, f"k{i}", "p1", f"f{i}.gcode", T0 + i * 10, "finished")
           for i in range(25)]  # fmt: skip
    expected = list(reversed(ids))
    seen: list[str] = []
    body = await _get(api, "/api/history?per_page=10")
    seen += [i["id"] for i in body["items"]]
    landed = 0
    while body["next_cursor"]:
        # New prints start (newest of all) between every two pages.
        await _print(api, f"new{landed}", "p1", "late.gcode", T0 + 10_000 + landed, None)
        landed += 1
        body = await _get(api, f"/api/history?per_page=10&cursor={body['next_cursor']}")
        seen += [i["id"] for i in body["items"]]
    assert seen == expected  # no row twice, none missed
    assert body["total"] == 25 + landed


async def test_csv_export_escapes_and_neutralises(api: Api) -> None:
    evil = ['=HYPERLINK("http://x")', "+1+2", "-cmd", "@SUM(A1)", "\tTAB", "\rCR",
            'a,b "quoted"\nnext line', "plain.gcode"]  # fmt: skip
    for i, name in enumerate(evil):
        await _print(api, f"e{i}", "p1", name, T0 + i, "finished",
                     trays=[(0, "PLA", "#000000", 1.5, None)])  # fmt: skip
    r = await api.client.get("/api/history/export?printer=p1", headers=api.auth("viewer"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].startswith('attachment; filename="print-history-')
    raw = await r.get_data(as_text=True)
    assert raw.endswith("\r\n") and '"a,b ""quoted""\nnext line"' in raw
    rows = list(csv.reader(io.StringIO(raw)))
    header, data = rows[0], rows[1:]
    files = [row[header.index("file")] for row in data]
    assert files == ["'" + n if n[0] in "=+-@\t\r" else n for n in reversed(evil)]
    assert data[0][header.index("filament_g")] == "1.5"
    assert data[0][header.index("materials")] == "PLA #000000 1.5 g"
    assert safe_cell(-3.5) == "-3.5" and safe_cell(None) == "" and safe_cell("-3") == "'-3"
    r = await api.client.get("/api/history/export?outcome=failed", headers=api.auth("viewer"))
    assert (await r.get_data(as_text=True)).count("\r\n") == 1  # the header only


async def test_stats_against_hand_computed_values(api: Api) -> None:
    await _print(api, "s1", "p1", "a", T0 + 10, "finished", duration=7200,
                 trays=[(0, "PLA", "#FF0000", 30.0, 0.6)])  # fmt: skip
    await _print(api, "s2", "p1", "b", T0 + 20, "failed", duration=1800,
                 trays=[(0, "PLA", "#FF0000", 5.0, 0.1), (1, "PETG", "#FFFFFF", 2.0, 0.05)])  # fmt: skip
    await _print(api, "s3", "p2", "c", T0 + DAY + 5, "finished", duration=3600,
                 trays=[(1, "PETG", "#FFFFFF", 12.0, 0.3)])  # fmt: skip
    await _print(api, "s4", "p2", "d", T0 + DAY + 50, "cancelled", duration=900)
    await _print(api, "s5", "p2", "e", T0 + 3 * DAY, "finished")  # outside the window
    since, until = rfc3339(T0), rfc3339(T0 + 2 * DAY)
    s = await _get(api, f"/api/history/stats?since={since}&until={until}")
    assert s["prints"] == 4
    assert s["by_outcome"] == {"completed": 2, "failed": 1, "cancelled": 1, "unknown": 0,
                               "running": 0}  # fmt: skip
    assert s["success_rate"] == 0.5
    assert s["print_hours"] == round((7200 + 1800 + 3600 + 900) / 3600, 4)
    assert s["filament"]["grams"] == 49.0 and s["filament"]["cost"] == 1.05
    assert s["filament"]["by_material"] == [
        {"material": "PETG", "grams": 14.0, "cost": 0.35},
        {"material": "PLA", "grams": 35.0, "cost": 0.7},
    ]
    assert s["filament"]["by_printer"] == [
        {"printer_id": "p1", "grams": 37.0, "cost": 0.75},
        {"printer_id": "p2", "grams": 12.0, "cost": 0.3},
    ]
    assert [c["color"] for c in s["filament"]["by_color"]] == ["#FF0000", "#FFFFFF"]
    day1, day2 = s["per_day"]
    assert (day1["date"], day1["prints"], day1["completed"], day1["failed"]) == (
        rfc3339(T0)[:10], 2, 1, 1)  # fmt: skip
    assert day1["grams"] == 37.0 and day1["hours"] == 2.5
    assert day1["grams_by_material"] == {"PLA": 35.0, "PETG": 2.0}
    assert day2["grams_by_material"] == {"PETG": 12.0}
    assert (day2["prints"], day2["cancelled"], day2["grams"], day2["hours"]) == (2, 1, 12.0, 1.25)
    p1 = await _get(api, f"/api/history/stats?since={since}&until={until}&printer=p1")
    assert p1["prints"] == 2 and p1["filament"]["grams"] == 37.0

    for query, field in ((f"since={rfc3339(T0)}&until={rfc3339(T0 + 367 * DAY)}", "until"),
                         (f"since={until}&until={since}", "since")):  # fmt: skip
        r = await api.client.get(f"/api/history/stats?{query}", headers=api.auth("viewer"))
        assert (await assert_problem(r, 400))["errors"][0]["field"] == field
    ok = await _get(api, f"/api/history/stats?since={rfc3339(T0)}&until={rfc3339(T0 + 366 * DAY)}")
    assert len(ok["per_day"]) == 366
