"""Which printer can print which job: target, file type, model, nozzle, filament; pure functions.

Every check answers None when it passes and a short reason a person can act on when it does not
("no PETG #1E90FF loaded", "needs model X1C"), so the queue can say why a job waits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.model import AmsUnit
from hub.slicer_meta import model_name, normalize_color

EXTERNAL_TRAY = 254
# A Bambu `remain` percentage is of a standard 1 kg spool when no spool record says otherwise.
DEFAULT_SPOOL_G = 1000.0
FILE_KINDS = {"3mf": "sliced 3MF projects", "gcode": "plain G-code"}


@dataclass(frozen=True, slots=True)
class Tray:
    """Filament a printer has loaded: Bambu tray id (ams*4+tray, 254 external; 0 elsewhere)."""

    slot: int
    material: str | None
    color: str | None  # "#RRGGBB"
    grams: float | None  # left on the spool; None when unknown


@dataclass(frozen=True, slots=True)
class Need:
    """One filament a job needs: its slot in the file, material, colour and grams."""

    slot: int
    material: str | None
    color: str | None
    grams: float | None = None


@dataclass(frozen=True, slots=True)
class PrinterView:
    """What matching needs to know about one printer."""

    id: str
    name: str
    print_files: frozenset[str]  # the file kinds its driver starts (manifest `print_files`)
    tray_mapping: bool  # a start maps filaments to trays (manifest `tray_mapping`)
    model: str | None
    nozzle_diameter: float | None
    tags: frozenset[str]
    trays: tuple[Tray, ...]


@dataclass(frozen=True, slots=True)
class JobNeeds:
    """What matching needs to know about one job."""

    kind: str  # "gcode" | "3mf"
    model: str | None  # the model the file was sliced for
    nozzle_diameter: float | None
    target: Mapping[str, Any]
    needs: tuple[Need, ...]


def trays_from_ams(units: Iterable[AmsUnit]) -> tuple[Tray, ...]:
    """Loaded trays from a printer's live AMS report (remain % of a 1 kg spool as grams)."""
    trays = []
    for unit in units:
        for tray in unit.trays:
            if tray.empty or not tray.material:
                continue
            grams = None if tray.remain is None else tray.remain * DEFAULT_SPOOL_G / 100.0
            trays.append(Tray(tray.slot, tray.material.upper(), normalize_color(tray.color), grams))
    return tuple(trays)


def needs_from_json(materials: Sequence[Mapping[str, Any]]) -> tuple[Need, ...]:
    """A job's stored `materials` list as needs."""
    return tuple(
        Need(
            slot=int(m["slot"]),
            material=(str(m["material"]).upper() if m.get("material") else None),
            color=normalize_color(m.get("color")),
            grams=None if m.get("grams") is None else float(m["grams"]),
        )
        for m in materials
    )


def _model_key(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (model_name(text) or "").lower())


def same_model(a: str | None, b: str | None) -> bool:
    """True when two model names mean the same printer model ("Bambu Lab P1S" and "P1S")."""
    return _model_key(a) == _model_key(b)


def describe(need: Need) -> str:
    """`PETG #1E90FF`, `PLA`, `any filament`."""
    parts = [p for p in (need.material, need.color) if p]
    return " ".join(parts) or "any filament"


def target_reason(job: JobNeeds, printer: PrinterView) -> str | None:
    """Why the job's target excludes the printer (None when it does not)."""
    target = job.target
    wanted_id = target.get("printer_id")
    if wanted_id and wanted_id != printer.id:
        return "the job is for another printer"
    wanted_model = target.get("model")
    if wanted_model and not same_model(wanted_model, printer.model):
        return f"the job is for model {wanted_model}"
    missing = [t for t in target.get("tags") or [] if t not in printer.tags]
    if missing:
        return f"missing tag(s) {', '.join(missing)}"
    return None


def machine_reason(job: JobNeeds, printer: PrinterView) -> str | None:
    """Why the printer cannot run the file at all: file type, sliced model, nozzle."""
    if job.kind not in printer.print_files:
        takes = " or ".join(FILE_KINDS.get(k, k) for k in sorted(printer.print_files)) or "no files"
        return f"{printer.name} takes {takes}, not {FILE_KINDS.get(job.kind, job.kind)}"
    if job.model and printer.model and not same_model(job.model, printer.model):
        return f"sliced for {job.model}, printer is {printer.model}"
    if (
        job.nozzle_diameter
        and printer.nozzle_diameter
        and abs(job.nozzle_diameter - printer.nozzle_diameter) > 0.01
    ):
        return f"needs a {job.nozzle_diameter:g} mm nozzle, printer has {printer.nozzle_diameter:g}"
    return None


def map_filament(
    needs: Sequence[Need], printer: PrinterView
) -> tuple[dict[int, int] | None, str | None]:
    """Each needed slot → a loaded tray of that material and colour with enough filament.

    Answers (mapping, None), or (None, reason). Trays with the most filament left are used first;
    two slots of the same filament may share a tray when it holds enough for both."""
    if not needs:
        return {}, None
    distinct = {(n.material, n.color) for n in needs}
    if not printer.tray_mapping and len(distinct) > 1:
        return None, f"needs {len(distinct)} filaments, printer has one extruder"
    if not printer.trays:
        if all(n.material is None and n.color is None for n in needs):
            return {n.slot: 0 for n in needs}, None
        return None, "no filament known on the printer (assign a spool to its tray)"
    left = {t.slot: t.grams for t in printer.trays}
    mapping: dict[int, int] = {}
    for need in sorted(needs, key=lambda n: n.slot):
        fitting = [
            t
            for t in printer.trays
            if (need.material is None or t.material == need.material)
            and (need.color is None or t.color == need.color)
        ]
        if not fitting:
            return None, f"no {describe(need)} loaded"
        enough = [
            t for t in fitting if (rest := left[t.slot]) is None or rest >= (need.grams or 0.0)
        ]
        if not enough:
            best = max(left[t.slot] or 0.0 for t in fitting)
            return None, (
                f"not enough {describe(need)} ({need.grams:g} g needed, {best:.0f} g left)"
            )
        chosen = max(enough, key=lambda t: (left[t.slot] is None, left[t.slot] or 0.0, -t.slot))
        rest = left[chosen.slot]
        if rest is not None:
            left[chosen.slot] = rest - (need.grams or 0.0)
        mapping[need.slot] = chosen.slot
    return mapping, None


def ams_mapping(mapping: Mapping[int, int]) -> tuple[int, ...]:
    """Bambu's `ams_mapping`: for each filament of the file in order, its tray (-1 when unused)."""
    if not mapping:
        return ()
    return tuple(mapping.get(slot, -1) for slot in range(1, max(mapping) + 1))


def fit(job: JobNeeds, printer: PrinterView) -> tuple[dict[int, int] | None, str | None]:
    """Every check at once: (tray mapping, None) when the printer can print the job."""
    reason = target_reason(job, printer) or machine_reason(job, printer)
    if reason is not None:
        return None, reason
    return map_filament(job.needs, printer)
