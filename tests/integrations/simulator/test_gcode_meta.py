"""Slicer metadata parsing: PrusaSlicer, Bambu Studio, Cura, .3mf, defaults."""

from __future__ import annotations

import io
import zipfile

from hypothesis import given
from hypothesis import strategies as st

from integrations.simulator.gcode_meta import (
    DEFAULT_GRAMS,
    DEFAULT_LAYERS,
    DEFAULT_TIME_S,
    parse_3mf,
    parse_duration,
    parse_file,
    parse_gcode,
)


def test_prusaslicer_footer() -> None:
    data = (
        b"G28\nM104 S215\nM190 S60\n;LAYER_CHANGE\n;LAYER_CHANGE\n; filament used [g] = 12.3\n"
        b"; estimated printing time (normal mode) = 1h 2m 3s\n; total layer number: 120\n"
    )
    meta = parse_gcode(data)
    assert meta.time_s == 3723
    assert meta.layers == 120
    assert meta.grams == 12.3
    assert meta.nozzle_temp == 215
    assert meta.bed_temp == 60


def test_bambu_header() -> None:
    data = (
        b"; HEADER_BLOCK_START\n; model printing time: 50m 10s; total estimated time: 1d 1h 0m 5s\n"
        b"; total layer number: 300\n; total filament weight [g] : 41.5\n; HEADER_BLOCK_END\n"
    )
    meta = parse_gcode(data)
    assert meta.time_s == 86400 + 3600 + 5
    assert meta.layers == 300
    assert meta.grams == 41.5


def test_cura_header_and_multi_extruder_weights() -> None:
    meta = parse_gcode(
        b";FLAVOR:Marlin\n;TIME:6000\n;LAYER_COUNT:80\n; filament used [g] = 1.5, 2.5\n"
    )
    assert (meta.time_s, meta.layers, meta.grams) == (6000, 80, 4.0)


def test_layer_markers_count_when_no_total() -> None:
    meta = parse_gcode(b";LAYER:0\nG1\n;LAYER:1\nG1\n;LAYER:2\n")
    assert meta.layers == 3


def test_defaults_when_absent() -> None:
    meta = parse_gcode(b"G28\nG1 X1\n")
    assert (meta.time_s, meta.layers, meta.grams) == (DEFAULT_TIME_S, DEFAULT_LAYERS, DEFAULT_GRAMS)
    assert meta.nozzle_temp is None


def test_3mf_uses_plate_gcode() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("Metadata/plate_1.gcode", "; total layer number: 42\n;TIME:600\n")
        archive.writestr("Metadata/plate_2.gcode", "; total layer number: 7\n;TIME:60\n")
    assert parse_file("job.3mf", buf.getvalue()).layers == 42
    assert parse_3mf(buf.getvalue(), "Metadata/plate_2.gcode").time_s == 60


def test_3mf_slice_info_and_garbage() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(
            "Metadata/slice_info.config",
            '<config><plate><metadata key="prediction" value="900"/>'
            '<metadata key="weight" value="3.25"/></plate></config>',
        )
    meta = parse_3mf(buf.getvalue())
    assert (meta.time_s, meta.grams) == (900, 3.25)
    assert parse_3mf(b"not a zip").time_s == DEFAULT_TIME_S


@given(st.integers(0, 3), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_duration_round_trip(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = f"{days}d {hours}h {minutes}m {seconds}s"
    assert parse_duration(text) == days * 86400 + hours * 3600 + minutes * 60 + seconds
