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

from hub.slicer_meta.gcode import parse_gcode
from hub.slicer_meta.meta import (
    BAMBU_MODEL_IDS,
    MODEL_NAMES,
    PNG_MAGIC,
    WINDOW,
    SlicerMeta,
    SlotMeta,
    UnreadableFile,
    model_name,
    normalize_color,
    parse_duration,
)
from hub.slicer_meta.threemf import SLICE_INFO, parse_3mf

__all__ = [
    "BAMBU_MODEL_IDS",
    "MODEL_NAMES",
    "PNG_MAGIC",
    "SLICE_INFO",
    "WINDOW",
    "SlicerMeta",
    "SlotMeta",
    "UnreadableFile",
    "model_name",
    "normalize_color",
    "parse_3mf",
    "parse_bytes",
    "parse_duration",
    "parse_gcode",
]


def parse_bytes(name: str, data: bytes, plate: int = 1) -> SlicerMeta:
    """Metadata of a print file held in memory, chosen by its extension."""
    if name.lower().endswith(".3mf"):
        return parse_3mf(data, plate)
    return parse_gcode(data)
