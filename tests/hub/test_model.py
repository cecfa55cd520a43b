"""The normalized model's JSON form: exactly what dataclasses.asdict gives, built faster."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import pytest

from hub.model import (
    AmsTray,
    AmsUnit,
    HmsError,
    Job,
    PrinterState,
    PrintState,
    Temperatures,
    offline_state,
    parse_rfc3339,
    plain,
    rfc3339,
)


def _reference(state: PrinterState) -> dict[str, Any]:
    data = asdict(state)
    data["state"] = state.state.value
    del data["ended"]  # prints ended unobserved are for the print tracker, never shown
    return data


def test_to_dict_matches_asdict() -> None:
    trays = [
        tuple(AmsTray(u * 4 + s, "PLA", "FF00FFFF", 50 + s) for s in range(4)) for u in range(4)
    ]
    units = (
        *(AmsUnit(u, 30 + u, 24.5, trays[u]) for u in range(4)),
        AmsUnit(254, trays=(AmsTray(254, empty=True),)),
    )
    state = PrinterState(
        "p1", True, PrintState.PRINTING, Job("a.gcode", 12.0, 3, 100, 3600, 1e9, "task"),
        Temperatures(220.1, 220.0, 60.0, 60.0, None), {"part": 100, "aux": 50}, 2, units, 1,
        (HmsError("HMS_0300_0100_0001_0007", "motion controller error"),), -44, True, 123.5,
    )  # fmt: skip
    for s in (state, offline_state("p2")):
        got = s.to_dict()
        assert got == _reference(s)
        assert repr(got) == repr(_reference(s))  # same key order and container types
        assert type(got["state"]) is str


def test_plain_copies_what_it_holds() -> None:
    class Point(NamedTuple):
        x: int
        y: list[int]

    @dataclass
    class Box:
        items: list[dict[str, Any]] = field(default_factory=list)
        where: Point = field(default_factory=lambda: Point(1, [2]))
        extra: set[int] = field(default_factory=set)

    box = Box([{"a": [1, 2]}], Point(3, [4]), {5})
    got = plain(box)
    assert got == asdict(box)
    assert repr(got) == repr(asdict(box))
    got["items"][0]["a"].append(3)
    got["extra"].add(6)
    assert box.items == [{"a": [1, 2]}] and box.extra == {5}


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(None) is None
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1795903046.8977363) == "2026-11-28T21:57:26.898Z"
    assert rfc3339(59.9996) == "1970-01-01T00:01:00.000Z"  # rounding carries into seconds
    # Years before 1000 keep four digits (a query may ask for them; found by the API fuzz run).
    early = parse_rfc3339("0403-09-09T14:33:29Z")
    assert rfc3339(early) == "0403-09-09T14:33:29.000Z"
    assert parse_rfc3339("2026-11-28T21:57:26.898Z") == pytest.approx(1795903046.898)
    assert parse_rfc3339("2026-11-28T23:57:26.898+02:00") == pytest.approx(1795903046.898)
    assert parse_rfc3339("1970-01-02") == 86400.0
    # RFC 3339 allows lower-case `t`/`z` and a leap second (JSON Schema's date-time takes both).
    assert parse_rfc3339("2026-11-28t21:57:26.898z") == pytest.approx(1795903046.898)
    assert parse_rfc3339("2016-12-31T23:59:60Z") == parse_rfc3339("2017-01-01T00:00:00Z")
    for bad in ("2026-11-28T21:57:26", "yesterday", "2026-13-01"):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)
