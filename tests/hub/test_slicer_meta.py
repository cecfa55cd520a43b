"""Slicer metadata from hand-written files in the real layouts (see tests/slicer_files.py)."""

from __future__ import annotations

import io
import zipfile

import pytest

from hub.slicer_meta import PNG_MAGIC, UnreadableFile, parse_3mf, parse_bytes, parse_gcode
from tests.slicer_files import bambu_3mf, cura_gcode, prusaslicer_gcode


def test_prusaslicer_two_materials() -> None:
    data = prusaslicer_gcode(
        materials=("PETG", "PLA"), colours=("#ff8000", "#1E90FF"), grams=(10.0, 2.5)
    )
    meta = parse_gcode(data)
    assert meta.time_s == 3723
    assert meta.layers == 3  # counted from ;LAYER_CHANGE markers
    assert meta.grams == 12.5
    assert [(s.slot, s.material, s.color, s.grams) for s in meta.slots] == [
        (1, "PETG", "#FF8000", 10.0),
        (2, "PLA", "#1E90FF", 2.5),
    ]
    assert meta.nozzle_diameter == 0.4
    assert meta.printer_model == "MK4"
    assert meta.slicer == "PrusaSlicer"
    assert meta.thumbnail is not None and meta.thumbnail.startswith(PNG_MAGIC)
    assert (meta.nozzle_temp, meta.bed_temp) == (240, 85)


def test_superslicer_is_read_like_prusaslicer() -> None:
    meta = parse_gcode(prusaslicer_gcode(slicer="SuperSlicer 2.5.59", model="Voron 2.4"))
    assert meta.slicer == "SuperSlicer"
    assert meta.printer_model == "Voron 2.4"
    assert meta.slots[0].material == "PETG"


def test_cura_header_missing_fields_are_none() -> None:
    meta = parse_gcode(cura_gcode(seconds=6000, layers=80))
    assert (meta.time_s, meta.layers) == (6000, 80)
    assert meta.printer_model == "Creality Ender-3"
    assert meta.slicer == "Cura"
    # Cura's Marlin header states neither grams, material nor nozzle: null, not an error.
    assert meta.grams is None and meta.slots == () and meta.nozzle_diameter is None
    assert meta.thumbnail is None


def test_bambu_project_plates_and_slots() -> None:
    data = bambu_3mf(
        plates=(
            (("PLA", "#FFFFFF", 11.86), ("PETG", "#1E90FF", 3.0)),
            (("ABS", "#000000", 5.0),),
        ),
        model_id="C12",
    )
    meta = parse_3mf(data)
    assert meta.plate_count == 2
    assert meta.time_s == 3603  # slice_info prediction wins over the G-code header
    assert meta.layers == 50
    assert meta.printer_model == "P1S"
    assert meta.nozzle_diameter == 0.4
    assert [(s.slot, s.material, s.color, s.grams) for s in meta.slots] == [
        (1, "PLA", "#FFFFFF", 11.86),
        (2, "PETG", "#1E90FF", 3.0),
    ]
    assert meta.thumbnail is not None and meta.thumbnail.startswith(PNG_MAGIC)
    second = parse_3mf(data, plate=2)
    assert second.time_s == 7206 and [s.material for s in second.slots] == ["ABS"]


def test_unreadable_files_say_why() -> None:
    with pytest.raises(UnreadableFile, match="not a ZIP"):
        parse_bytes("x.3mf", b"hello")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("3D/3dmodel.model", "<model/>")
    with pytest.raises(UnreadableFile, match="no sliced plate"):
        parse_bytes("model.3mf", buf.getvalue())
    with pytest.raises(UnreadableFile, match="binary"):
        parse_bytes("x.gcode", b"\x00\x01\x02" * 100)
    with pytest.raises(UnreadableFile, match="not G-code"):
        parse_bytes("x.gcode", b"just some words\n")
