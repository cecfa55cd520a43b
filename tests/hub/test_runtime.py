"""Hub runtime: the printers table's version, which caches of printer data are keyed on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from hub.runtime import PrinterTable
from hub.store.printers import PrinterRow


def _row(printer_id: str, name: str = "p") -> PrinterRow:
    return PrinterRow(
        id=printer_id, name=name, protocol="moonraker", host="127.0.0.2", port=7125,
        serial=None, model=None, nozzle_diameter=None, tags=[], enabled=True, secrets={},
        created_at=0.0, updated_at=0.0,
    )  # fmt: skip


def _table() -> PrinterTable:
    return PrinterTable([("a", _row("a")), ("b", _row("b"))])


CHANGES: dict[str, Callable[[PrinterTable], object]] = {
    "set": lambda t: t.__setitem__("c", _row("c")),
    "replace": lambda t: t.__setitem__("a", replace(t["a"], name="q")),
    "del": lambda t: t.__delitem__("a"),
    "pop": lambda t: t.pop("a"),
    "pop missing": lambda t: t.pop("zz", None),
    "popitem": lambda t: t.popitem(),
    "clear": lambda t: t.clear(),
    "setdefault": lambda t: t.setdefault("c", _row("c")),
    "update": lambda t: t.update({"c": _row("c")}),
    "ior": lambda t: t.__ior__({"c": _row("c")}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_moves_the_version(change: str) -> None:
    table = _table()
    before = table.version
    CHANGES[change](table)
    assert table.version != before


def test_reads_keep_the_version_and_versions_never_repeat() -> None:
    table = _table()
    before = table.version
    assert table["a"].id == "a" and table.get("zz") is None and len(table) == 2
    assert sorted(table) == ["a", "b"] and "b" in table
    assert table.version == before
    seen = {before}
    for _ in range(3):
        table = _table()  # a table replacing another never reuses a version
        assert table.version not in seen
        seen.add(table.version)
