"""What slicers write into their output: G-code headers and Bambu Studio / OrcaSlicer 3MF projects.

A leaf like `hub.model`: the hub's file library and the simulator both read files with it.
Every field a file does not state is None; `UnreadableFile` says why a file is no print file.

Layouts read (see tests/hub/test_slicer_meta.py for the sources of each):
- Bambu Studio / OrcaSlicer plate G-code: `; HEADER_BLOCK_START` (`total estimated time`,
  `total layer number`, `total filament weight [g]`), thumbnail block, `; CONFIG_BLOCK_START`
  with `key = value` lines (`filament_type = PLA;PETG`, `filament_colour`, `nozzle_diameter`,
  `printer_model`, `filament used [g]`).
- Their 3MF project: `Metadata/slice_info.config` (XML, one `<plate>` per sliced plate with
  `prediction`, `weight`, `printer_model_id`, `nozzle_diameters` and `<filament id type color
  used_g>`), `Metadata/plate_N.gcode`, `Metadata/plate_N.png`.
- PrusaSlicer / SuperSlicer: `; thumbnail begin WxH LEN` base64 PNG blocks, the summary
  (`; filament used [g] = 1.2, 3.4`, `; estimated printing time (normal mode) = 1h 2m 3s`) and the
  config block at the end (`; filament_type = PETG;PLA`, `; filament_colour`, `; nozzle_diameter`,
  `; printer_model`).
- Cura: `;TIME:`, `;LAYER_COUNT:`, `;TARGET_MACHINE.NAME:`, Griffin `;EXTRUDER_TRAIN.0.*` lines.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import IO
from xml.etree import ElementTree

# Slicers put the header at the top and (PrusaSlicer) the summary and config at the bottom.
WINDOW = 512 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SLICE_INFO = "Metadata/slice_info.config"

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


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"\d+(?:\.\d+)?", text)]


def _float(text: str | None) -> float | None:
    values = _numbers(text or "")
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
    return _parse_gcode_text(_window(data))


def _parse_gcode_text(text: str) -> SlicerMeta:
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
                total_grams = sum(_numbers(found.group(1)))
        if not slot_grams:
            found = _GRAM_PER_SLOT.match(line)
            if found:
                slot_grams = _numbers(found.group(1))
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
        nozzle_diameter=_float(nozzle_text),
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


def _plate_numbers(names: set[str]) -> list[int]:
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
        plates = _plate_numbers(names)
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
            gcode = _parse_gcode_text(head.decode("utf-8", errors="replace"))
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
        index = int(_float(values.get("index")) or number)
        slots = tuple(
            SlotMeta(
                slot=int(_float(f.get("id")) or i),
                material=(f.get("type") or "").upper() or None,
                color=normalize_color(f.get("color")),
                grams=_float(f.get("used_g")),
            )
            for i, f in enumerate(element.iter("filament"), start=1)
        )
        plates[index] = SlicerMeta(
            time_s=_float(values.get("prediction")),
            grams=_float(values.get("weight")),
            slots=slots,
            nozzle_diameter=_float(values.get("nozzle_diameters")),
            printer_model=model_name(values.get("printer_model_id")),
        )
    return plates


def parse_bytes(name: str, data: bytes, plate: int = 1) -> SlicerMeta:
    """Metadata of a print file held in memory, chosen by its extension."""
    if name.lower().endswith(".3mf"):
        return parse_3mf(data, plate)
    return parse_gcode(data)
