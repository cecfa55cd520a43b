"""G-code headers, summaries and config comments (Bambu Studio / OrcaSlicer, PrusaSlicer, Cura)."""

from __future__ import annotations

import base64
import binascii
import re

from hub.slicer_meta.meta import (
    PNG_MAGIC,
    WINDOW,
    SlicerMeta,
    SlotMeta,
    UnreadableFile,
    first_number,
    model_name,
    normalize_color,
    numbers_in,
    parse_duration,
)

_TIME_PATTERNS = (
    re.compile(r"total estimated time\s*[:=]\s*([0-9dhms .]+)", re.I),
    re.compile(r"estimated printing time(?: \(normal mode\))?\s*[:=]\s*([0-9dhms .]+)", re.I),
    re.compile(r"model printing time\s*[:=]\s*([0-9dhms .]+)", re.I),
)
_SECONDS_PATTERNS = (
    re.compile(r"^;\s*TIME\s*:\s*(\d+(?:\.\d+)?)\s*$", re.I),
    re.compile(r"^;\s*PRINT\.TIME\s*:\s*(\d+(?:\.\d+)?)\s*$", re.I),
)
_LAYER_PATTERNS = (
    re.compile(r"total layers? (?:number|count)\s*[:=]\s*(\d+)", re.I),
    re.compile(r"^;\s*LAYER_COUNT\s*:\s*(\d+)", re.I),
)
_GRAM_TOTAL = re.compile(r"total filament weight \[g\]\s*[:=]\s*([0-9.,\s]+)", re.I)
_GRAM_PER_SLOT = re.compile(r"^;\s*filament used \[g\]\s*[:=]\s*([0-9.,\s]+)", re.I)
_LAYER_MARKER = re.compile(r"^;\s*(?:LAYER_CHANGE|LAYER:\s*\d+|CHANGE_LAYER)\s*$", re.I)
_NOZZLE_SET = re.compile(r"^M10[49]\b.*?\bS(\d+(?:\.\d+)?)", re.I)
_BED_SET = re.compile(r"^M1[49]0\b.*?\bS(\d+(?:\.\d+)?)", re.I)
_COMMAND = re.compile(r"^[GMT]\d", re.I)
_CONFIG_LINE = re.compile(r"^;\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_CURA_LINE = re.compile(r"^;\s*([A-Z_]+(?:\.[A-Z0-9_]+)+)\s*:\s*(.*)$")
_THUMB_BEGIN = re.compile(r"^;\s*thumbnail(?:_PNG)? begin (\d+)x(\d+)", re.I)
_THUMB_END = re.compile(r"^;\s*thumbnail(?:_PNG)? end", re.I)


def _split(value: str | None) -> list[str]:
    # PrusaSlicer and Bambu list per-extruder values with ';', some fields with ','.
    if not value:
        return []
    return [part.strip().strip('"') for part in re.split(r"[;,]", value)]


def _slots(types: list[str], colours: list[str], grams: list[float]) -> tuple[SlotMeta, ...]:
    count = max(len(types), len(grams))
    slots = []
    for i in range(count):
        material = types[i] if i < len(types) and types[i] else None
        colour = normalize_color(colours[i]) if i < len(colours) else None
        weight = grams[i] if i < len(grams) else None
        # Slots a multi-extruder profile defines but the print never uses are left out.
        if weight is not None and weight <= 0 and count > 1:
            continue
        slots.append(SlotMeta(i + 1, material.upper() if material else None, colour, weight))
    return tuple(slots)


def _window(data: bytes) -> str:
    if len(data) > 2 * WINDOW:
        data = data[:WINDOW] + b"\n" + data[-WINDOW:]
    return data.decode("utf-8", errors="replace")


def parse_gcode(data: bytes) -> SlicerMeta:
    """Read a G-code file's header, summary and config comments (both ends of a large file)."""
    if b"\x00" in data[:4096]:
        raise UnreadableFile("not G-code: the file is binary (binary G-code is not supported)")
    return parse_gcode_text(_window(data))


def parse_gcode_text(text: str) -> SlicerMeta:
    """Metadata from G-code text already cut to the parts slicers write comments in."""
    time_s: float | None = None
    layers: int | None = None
    total_grams: float | None = None
    slot_grams: list[float] = []
    nozzle: float | None = None
    bed: float | None = None
    config: dict[str, str] = {}
    thumbs: list[tuple[int, list[str]]] = []
    thumb: list[str] | None = None
    slicer: str | None = None
    markers = commands = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith(";"):
            if _COMMAND.match(line):
                commands += 1
            # The first heater commands are the print's targets; later ones (cool-down) are not.
            if nozzle is None:
                found = _NOZZLE_SET.match(line)
                if found and float(found.group(1)) > 0:
                    nozzle = float(found.group(1))
            if bed is None:
                found = _BED_SET.match(line)
                if found and float(found.group(1)) > 0:
                    bed = float(found.group(1))
            continue
        if thumb is not None:
            if _THUMB_END.match(line):
                thumb = None
            else:
                thumb.append(line.lstrip(";").strip())
            continue
        begin = _THUMB_BEGIN.match(line)
        if begin:
            thumb = []
            thumbs.append((int(begin.group(1)) * int(begin.group(2)), thumb))
            continue
        if _LAYER_MARKER.match(line):
            markers += 1
            continue
        if slicer is None:
            slicer = _slicer_name(line)
        if time_s is None:
            time_s = _time_of(line)
        if layers is None:
            for pattern in _LAYER_PATTERNS:
                found = pattern.search(line)
                if found:
                    layers = int(found.group(1))
                    break
        if total_grams is None:
            found = _GRAM_TOTAL.search(line)
            if found:
                total_grams = sum(numbers_in(found.group(1)))
        if not slot_grams:
            found = _GRAM_PER_SLOT.match(line)
            if found:
                slot_grams = numbers_in(found.group(1))
        pair = _CONFIG_LINE.match(line) or _CURA_LINE.match(line)
        if pair:
            config.setdefault(pair.group(1).lower(), pair.group(2).strip())
    if layers is None and markers:
        layers = markers
    if commands == 0 and time_s is None and not config:
        raise UnreadableFile("not G-code: no commands and no slicer header found")
    types = _split(config.get("filament_type")) or _split(
        config.get("extruder_train.0.material.type")
    )
    colours = _split(config.get("filament_colour") or config.get("extruder_colour"))
    if total_grams is None and slot_grams:
        total_grams = sum(slot_grams)
    if not slot_grams and total_grams is not None and len(types) <= 1:
        slot_grams = [total_grams]
    nozzle_text = config.get("nozzle_diameter") or config.get("extruder_train.0.nozzle.diameter")
    return SlicerMeta(
        time_s=time_s if time_s and time_s > 0 else None,
        layers=layers if layers and layers > 0 else None,
        grams=total_grams,
        slots=_slots(types, colours, slot_grams),
        nozzle_diameter=first_number(nozzle_text),
        printer_model=model_name(config.get("printer_model") or config.get("target_machine.name")),
        plate_count=1,
        slicer=slicer,
        nozzle_temp=nozzle,
        bed_temp=bed,
        thumbnail=_largest_png(thumbs),
    )


def _slicer_name(line: str) -> str | None:
    text = line.lstrip("; ").strip()
    for name in ("BambuStudio", "OrcaSlicer", "PrusaSlicer", "SuperSlicer", "Cura"):
        if name.lower() in text.lower() and (
            text.lower().startswith(name.lower()) or "generated by" in text.lower()
        ):
            return name
    if text.upper().startswith("FLAVOR:"):
        return "Cura"
    return None


def _time_of(line: str) -> float | None:
    for pattern in _TIME_PATTERNS:
        found = pattern.search(line)
        if found:
            return parse_duration(found.group(1))
    for pattern in _SECONDS_PATTERNS:
        found = pattern.match(line)
        if found:
            return float(found.group(1))
    return None


def _largest_png(thumbs: list[tuple[int, list[str]]]) -> bytes | None:
    for _, lines in sorted(thumbs, key=lambda t: -t[0]):
        try:
            data = base64.b64decode("".join(lines), validate=False)
        except (binascii.Error, ValueError):
            continue
        if data.startswith(PNG_MAGIC):
            return data
    return None
