"""Slicer metadata (time, layers, grams, temperatures) for the simulator, with defaults filled in.

The reading itself is `hub.slicer_meta` (a leaf shared with the hub's file library); a simulated
printer only needs numbers to run a print, so whatever a file does not say gets a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.slicer_meta import SlicerMeta, UnreadableFile, parse_duration
from hub.slicer_meta import parse_3mf as _read_3mf
from hub.slicer_meta import parse_gcode as _read_gcode

__all__ = ["GcodeMeta", "parse_3mf", "parse_duration", "parse_file", "parse_gcode"]

# Used when a file says nothing about itself: a half-hour, 100-layer, 10 g print.
DEFAULT_TIME_S = 1800.0
DEFAULT_LAYERS = 100
DEFAULT_GRAMS = 10.0


@dataclass(frozen=True, slots=True)
class GcodeMeta:
    """What the simulator needs to know about a print file."""

    time_s: float = DEFAULT_TIME_S
    layers: int = DEFAULT_LAYERS
    grams: float = DEFAULT_GRAMS
    nozzle_temp: float | None = None
    bed_temp: float | None = None


def _with_defaults(meta: SlicerMeta) -> GcodeMeta:
    return GcodeMeta(
        time_s=meta.time_s or DEFAULT_TIME_S,
        layers=meta.layers or DEFAULT_LAYERS,
        grams=meta.grams if meta.grams is not None and meta.grams >= 0 else DEFAULT_GRAMS,
        nozzle_temp=meta.nozzle_temp,
        bed_temp=meta.bed_temp,
    )


def parse_gcode(data: bytes) -> GcodeMeta:
    """Read time, layer count, grams and first temperatures from G-code comments (defaults if absent)."""
    try:
        return _with_defaults(_read_gcode(data))
    except UnreadableFile:
        return GcodeMeta()


def parse_3mf(data: bytes, plate: str = "Metadata/plate_1.gcode") -> GcodeMeta:
    """Metadata of a .3mf project for one plate (`Metadata/plate_N.gcode`), else defaults."""
    found = re.search(r"plate_(\d+)\.gcode$", plate)
    try:
        return _with_defaults(_read_3mf(data, int(found.group(1)) if found else 1))
    except UnreadableFile:
        return GcodeMeta()


def parse_file(name: str, data: bytes, plate: str = "Metadata/plate_1.gcode") -> GcodeMeta:
    """Metadata for an uploaded file, chosen by its extension."""
    if name.lower().endswith(".3mf"):
        return parse_3mf(data, plate)
    return parse_gcode(data)
