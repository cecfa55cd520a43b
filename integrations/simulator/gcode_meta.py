"""Slicer metadata (time, layers, grams, temperatures) read from G-code comments and .3mf archives."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

# Used when a file says nothing about itself: a half-hour, 100-layer, 10 g print.
DEFAULT_TIME_S = 1800.0
DEFAULT_LAYERS = 100
DEFAULT_GRAMS = 10.0

# Slicers put the header at the top and (PrusaSlicer) the summary at the bottom: read both ends.
_WINDOW = 512 * 1024

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.I)
_TIME_PATTERNS = (
    re.compile(r"total estimated time\s*[:=]\s*([0-9dhms .]+)", re.I),
    re.compile(r"estimated printing time(?: \(normal mode\))?\s*[:=]\s*([0-9dhms .]+)", re.I),
    re.compile(r"model printing time\s*[:=]\s*([0-9dhms .]+)", re.I),
)
_CURA_TIME = re.compile(r"^;\s*TIME\s*:\s*(\d+(?:\.\d+)?)\s*$", re.I)
_LAYER_PATTERNS = (
    re.compile(r"total layers? (?:number|count)\s*[:=]\s*(\d+)", re.I),
    re.compile(r"^;\s*LAYER_COUNT\s*:\s*(\d+)", re.I),
)
_GRAM_PATTERNS = (
    re.compile(r"total filament weight \[g\]\s*[:=]\s*([0-9.,\s]+)", re.I),
    re.compile(r"filament used \[g\]\s*[:=]\s*([0-9.,\s]+)", re.I),
)
_LAYER_MARKER = re.compile(r"^;\s*(?:LAYER_CHANGE|LAYER:\s*\d+|CHANGE_LAYER)\s*$", re.I)
_NOZZLE_SET = re.compile(r"^M10[49]\b.*?\bS(\d+(?:\.\d+)?)", re.I)
_BED_SET = re.compile(r"^M1[49]0\b.*?\bS(\d+(?:\.\d+)?)", re.I)


@dataclass(frozen=True, slots=True)
class GcodeMeta:
    """What the simulator needs to know about a print file."""

    time_s: float = DEFAULT_TIME_S
    layers: int = DEFAULT_LAYERS
    grams: float = DEFAULT_GRAMS
    nozzle_temp: float | None = None
    bed_temp: float | None = None


def parse_duration(text: str) -> float | None:
    """Seconds in a slicer duration such as `1d 2h 3m 4s` or `2m 3s`; None if there is none."""
    parts = _DURATION_PART.findall(text)
    if not parts:
        return None
    scale = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(value) * scale[unit.lower()] for value, unit in parts)


def _sum_numbers(text: str) -> float | None:
    # Multi-extruder files list one weight per extruder: "1.23, 4.56".
    values = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", text)]
    return sum(values) if values else None


def parse_gcode(data: bytes) -> GcodeMeta:
    """Read time, layer count, grams and first temperatures from G-code comments (defaults if absent)."""
    if len(data) > 2 * _WINDOW:
        data = data[:_WINDOW] + b"\n" + data[-_WINDOW:]
    text = data.decode("utf-8", errors="replace")
    time_s: float | None = None
    layers: int | None = None
    grams: float | None = None
    nozzle: float | None = None
    bed: float | None = None
    markers = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(";"):
            if _LAYER_MARKER.match(line):
                markers += 1
                continue
            if time_s is None:
                for pattern in _TIME_PATTERNS:
                    found = pattern.search(line)
                    if found:
                        time_s = parse_duration(found.group(1))
                        break
                else:
                    cura = _CURA_TIME.match(line)
                    if cura:
                        time_s = float(cura.group(1))
            if layers is None:
                for pattern in _LAYER_PATTERNS:
                    found = pattern.search(line)
                    if found:
                        layers = int(found.group(1))
                        break
            if grams is None:
                for pattern in _GRAM_PATTERNS:
                    found = pattern.search(line)
                    if found:
                        grams = _sum_numbers(found.group(1))
                        break
            continue
        # The first heater commands are the print's targets; later ones (cool-down) are not.
        if nozzle is None:
            found = _NOZZLE_SET.match(line)
            if found and float(found.group(1)) > 0:
                nozzle = float(found.group(1))
        if bed is None:
            found = _BED_SET.match(line)
            if found and float(found.group(1)) > 0:
                bed = float(found.group(1))
    if layers is None and markers:
        layers = markers
    return GcodeMeta(
        time_s=time_s if time_s and time_s > 0 else DEFAULT_TIME_S,
        layers=layers if layers and layers > 0 else DEFAULT_LAYERS,
        grams=grams if grams is not None and grams >= 0 else DEFAULT_GRAMS,
        nozzle_temp=nozzle,
        bed_temp=bed,
    )


def _parse_slice_info(xml: str) -> GcodeMeta | None:
    # Bambu Studio also writes `<metadata key="prediction" value="SECONDS"/>` and `weight`.
    prediction = re.search(r'key="prediction"\s+value="(\d+(?:\.\d+)?)"', xml)
    weight = re.search(r'key="weight"\s+value="(\d+(?:\.\d+)?)"', xml)
    if not prediction and not weight:
        return None
    return GcodeMeta(
        time_s=float(prediction.group(1)) if prediction else DEFAULT_TIME_S,
        grams=float(weight.group(1)) if weight else DEFAULT_GRAMS,
    )


def parse_3mf(data: bytes, plate: str = "Metadata/plate_1.gcode") -> GcodeMeta:
    """Metadata of a .3mf project: its plate G-code if present, else slice_info.config, else defaults."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if plate in names:
                return parse_gcode(archive.read(plate))
            if "Metadata/slice_info.config" in names:
                meta = _parse_slice_info(
                    archive.read("Metadata/slice_info.config").decode("utf-8", errors="replace")
                )
                if meta is not None:
                    return meta
    except (zipfile.BadZipFile, OSError, KeyError):
        pass
    return GcodeMeta()


def parse_file(name: str, data: bytes, plate: str = "Metadata/plate_1.gcode") -> GcodeMeta:
    """Metadata for an uploaded file, chosen by its extension."""
    if name.lower().endswith(".3mf"):
        return parse_3mf(data, plate)
    return parse_gcode(data)
