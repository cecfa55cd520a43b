"""Bambu Studio / OrcaSlicer 3MF projects: slice_info.config, the plate G-code and its PNG."""

from __future__ import annotations

import io
import re
import zipfile
from typing import IO
from xml.etree import ElementTree

from hub.slicer_meta.gcode import parse_gcode_text
from hub.slicer_meta.meta import (
    PNG_MAGIC,
    WINDOW,
    SlicerMeta,
    SlotMeta,
    UnreadableFile,
    first_number,
    model_name,
    normalize_color,
)

SLICE_INFO = "Metadata/slice_info.config"


def _platenumbers_in(names: set[str]) -> list[int]:
    plates = {
        int(m.group(1)) for n in names if (m := re.match(r"^Metadata/plate_(\d+)\.gcode$", n))
    }
    return sorted(plates)


def parse_3mf(source: bytes | IO[bytes], plate: int = 1) -> SlicerMeta:
    """Metadata of a sliced 3MF project for one plate (slice_info.config, plate G-code, PNG)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFile(f"not a 3MF project: the file is not a ZIP archive ({exc})") from None
    with archive:
        names = set(archive.namelist())
        plates = _platenumbers_in(names)
        info = _slice_info(archive.read(SLICE_INFO)) if SLICE_INFO in names else {}
        if not plates and not info:
            raise UnreadableFile(
                "the 3MF project has no sliced plate (no Metadata/plate_N.gcode and no "
                "Metadata/slice_info.config): slice it and export the plate sliced file"
            )
        gcode_name = f"Metadata/plate_{plate}.gcode"
        gcode = SlicerMeta()
        if gcode_name in names:
            with archive.open(gcode_name) as handle:
                head = handle.read(WINDOW)
            gcode = parse_gcode_text(head.decode("utf-8", errors="replace"))
        plate_info = info.get(plate) or (info[min(info)] if info else None)
        png_name = f"Metadata/plate_{plate}.png"
        thumbnail = archive.read(png_name) if png_name in names else gcode.thumbnail
    if thumbnail is not None and not thumbnail.startswith(PNG_MAGIC):
        thumbnail = None
    meta = gcode
    if plate_info is not None:
        meta = SlicerMeta(
            time_s=plate_info.time_s or gcode.time_s,
            layers=gcode.layers,
            grams=plate_info.grams if plate_info.grams is not None else gcode.grams,
            slots=plate_info.slots or gcode.slots,
            nozzle_diameter=plate_info.nozzle_diameter or gcode.nozzle_diameter,
            printer_model=plate_info.printer_model or gcode.printer_model,
            slicer=gcode.slicer,
            nozzle_temp=gcode.nozzle_temp,
            bed_temp=gcode.bed_temp,
        )
    return SlicerMeta(
        time_s=meta.time_s,
        layers=meta.layers,
        grams=meta.grams,
        slots=meta.slots,
        nozzle_diameter=meta.nozzle_diameter,
        printer_model=meta.printer_model,
        plate_count=max(len(plates), len(info)) or None,
        slicer=meta.slicer or ("BambuStudio" if info else None),
        nozzle_temp=meta.nozzle_temp,
        bed_temp=meta.bed_temp,
        thumbnail=thumbnail,
    )


def _slice_info(xml: bytes) -> dict[int, SlicerMeta]:
    """Per plate index: what `Metadata/slice_info.config` says about it."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise UnreadableFile(f"Metadata/slice_info.config is not valid XML ({exc})") from None
    plates: dict[int, SlicerMeta] = {}
    for number, element in enumerate(root.iter("plate"), start=1):
        values = {
            m.get("key", ""): m.get("value", "") for m in element.iter("metadata") if m.get("key")
        }
        index = int(first_number(values.get("index")) or number)
        slots = tuple(
            SlotMeta(
                slot=int(first_number(f.get("id")) or i),
                material=(f.get("type") or "").upper() or None,
                color=normalize_color(f.get("color")),
                grams=first_number(f.get("used_g")),
            )
            for i, f in enumerate(element.iter("filament"), start=1)
        )
        plates[index] = SlicerMeta(
            time_s=first_number(values.get("prediction")),
            grams=first_number(values.get("weight")),
            slots=slots,
            nozzle_diameter=first_number(values.get("nozzle_diameters")),
            printer_model=model_name(values.get("printer_model_id")),
        )
    return plates
