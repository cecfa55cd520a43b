"""Reading numbers out of protocol payloads: one helper per rule, shared by every driver."""

from __future__ import annotations

from typing import Any


def as_float(value: Any) -> float | None:
    """A JSON number as float; None for anything else (booleans and strings included)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_int(value: Any) -> int | None:
    """A JSON number truncated to int; None for anything else."""
    number = as_float(value)
    return int(number) if number is not None else None


def parse_float(value: Any) -> float | None:
    """A number or numeric text as float (Bambu reports send some numbers as strings)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_int(value: Any) -> int | None:
    """A number or numeric text ("12" or "12.0") as int; None when it is neither."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None
