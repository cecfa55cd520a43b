"""Reading a Bambu print's figures back from the printer: cached, bounded, and saying why not."""

from __future__ import annotations

from databases import Database

from hub.file_figures import FileFigures
from integrations.printers.base import CommandRejected, CommandTimeout
from integrations.simulator.cli import demo_gcode, demo_project


class Card:
    """A printer's SD card as the driver's read_file sees it; counts the reads."""

    def __init__(self, files: dict[str, bytes], hang: bool = False) -> None:
        self.files = files
        self.hang = hang
        self.reads: list[str] = []

    async def read(self, printer_id: str, path: str, within_s: float, limit: int) -> bytes:
        self.reads.append(path)
        if self.hang:
            raise CommandTimeout(f"reading {path} took longer than {within_s:g}s")
        if path not in self.files:
            raise CommandRejected(f"reading {path} failed: 550 Failed to open file.")
        return self.files[path]


async def test_project_read_once_then_cached(db: Database) -> None:
    card = Card({"part.3mf": demo_project(60, 10, 7.5)})
    figures = FileFigures(db, card.read)
    for _ in range(2):
        found = await figures.from_printer("p1", "part")
        assert (found.grams, found.source) == (7.5, "file_slice_info")
    assert card.reads == ["part.3mf"]
    # Another printer's file of the same name is its own.
    await figures.from_printer("p2", "part")
    assert card.reads == ["part.3mf", "part.3mf"]


async def test_no_figure_says_why(db: Database) -> None:
    card = Card({"plain": demo_gcode(60, 10, 7.5)})
    found = await FileFigures(db, card.read).from_printer("p1", "plain")
    assert found.grams is None
    assert card.reads == ["plain.3mf", "plain"]
    assert "plain" in found.why and "3MF" in found.why.upper()


async def test_a_hanging_printer_is_asked_once(db: Database) -> None:
    card = Card({}, hang=True)
    found = await FileFigures(db, card.read).from_printer("p1", "part")
    assert found.grams is None and "longer than" in found.why
    assert card.reads == ["part.3mf"]
