"""The shapes of slicer metadata and the small readers every slicer layout shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Slicers put the header at the top and (PrusaSlicer) the summary and config at the bottom.
WINDOW = 512 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Bambu's printer_model_id in slice_info.config -> the model name printers report.
BAMBU_MODEL_IDS = {
    "BL-P001": "X1C",
    "BL-P002": "X1",
    "C13": "X1E",
    "C11": "P1P",
    "C12": "P1S",
    "N1": "A1 mini",
    "N2S": "A1",
    "O1D": "H2D",
}
# Slicer `printer_model` / machine names -> the short model name (others are kept as written).
MODEL_NAMES = {
    "bambu lab x1 carbon": "X1C",
    "bambu lab x1": "X1",
    "bambu lab x1e": "X1E",
    "bambu lab p1p": "P1P",
    "bambu lab p1s": "P1S",
    "bambu lab a1": "A1",
    "bambu lab a1 mini": "A1 mini",
    "bambu lab h2d": "H2D",
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.I)
_HEX_COLOUR = re.compile(r"^#?([0-9A-Fa-f]{6})(?:[0-9A-Fa-f]{2})?$")


class UnreadableFile(ValueError):
    """The data is not a print file this hub can read; the message says why."""


@dataclass(frozen=True, slots=True)
class SlotMeta:
    """One filament the file uses: its 1-based slot in the slicer, material, colour, grams."""

    slot: int
    material: str | None = None
    color: str | None = None  # "#RRGGBB"
    grams: float | None = None


@dataclass(frozen=True, slots=True)
class SlicerMeta:
    """Everything read from one print file (or one plate of a project); None when not stated."""

    time_s: float | None = None
    layers: int | None = None
    grams: float | None = None
    slots: tuple[SlotMeta, ...] = ()
    nozzle_diameter: float | None = None
    printer_model: str | None = None
    plate_count: int | None = None
    slicer: str | None = None
    nozzle_temp: float | None = None
    bed_temp: float | None = None
    thumbnail: bytes | None = field(default=None, repr=False)


def parse_duration(text: str) -> float | None:
    """Seconds in a slicer duration such as `1d 2h 3m 4s` or `2m 3s`; None if there is none."""
    parts = _DURATION_PART.findall(text)
    if not parts:
        return None
    scale = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(value) * scale[unit.lower()] for value, unit in parts)


def numbers_in(text: str) -> list[float]:
    """Every decimal number in the text, in order."""
    return [float(v) for v in re.findall(r"\d+(?:\.\d+)?", text)]


def first_number(text: str | None) -> float | None:
    """The first decimal number in the text, or None."""
    values = numbers_in(text or "")
    return values[0] if values else None


def normalize_color(text: str | None) -> str | None:
    """`#RRGGBB` (upper case) from `#rrggbb`, `RRGGBBAA` and the like; None when not a colour."""
    found = _HEX_COLOUR.match((text or "").strip())
    return f"#{found.group(1).upper()}" if found else None


def model_name(text: str | None) -> str | None:
    """The short model name for a slicer's printer model or Bambu model id."""
    if not text:
        return None
    clean = text.strip().strip('"')
    return BAMBU_MODEL_IDS.get(clean) or MODEL_NAMES.get(clean.lower()) or clean or None
