"""Protocol-independent command names, parameter validation and state preconditions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hub.model import ACTIVE_STATES, PrintState

PAUSE = "pause"
RESUME = "resume"
STOP = "stop"
LIGHT = "light"
SPEED = "speed"
GCODE = "gcode"
AMS_CHANGE = "ams_change"
HOME = "home"
SET_TEMPERATURE = "set_temperature"

ALL_COMMANDS = frozenset(
    {PAUSE, RESUME, STOP, LIGHT, SPEED, GCODE, AMS_CHANGE, HOME, SET_TEMPERATURE}
)

# Speed levels follow Bambu's four profiles; drivers of other protocols map them to
# these feed-rate percentages so one farm-wide control means the same thing everywhere.
SPEED_PERCENT = {1: 50, 2: 100, 3: 124, 4: 166}

# Upper bounds protect against typos such as 2100 instead of 210; they are above
# any current consumer printer's limits, the firmware enforces the real ones.
MAX_TARGET = {"nozzle": 350.0, "bed": 150.0}

# AMS tray numbers: 4 units x 4 trays, AMS-HT units 128-135, external spool 254.
_VALID_TRAYS = frozenset(range(16)) | frozenset(range(128, 136)) | {254}


class InvalidParams(ValueError):
    """A command's parameters are malformed (maps to HTTP 400)."""

    http_status = 400


def _require_int(params: Mapping[str, Any], key: str, name: str) -> int:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParams(f"command '{name}': '{key}' must be an integer, got {value!r}")
    return value


def validate_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check and normalize the parameters of command `name`; raise InvalidParams naming the field."""
    params = params or {}
    if not isinstance(params, Mapping):
        raise InvalidParams(f"command '{name}': params must be an object")
    if name == LIGHT:
        on = params.get("on")
        if not isinstance(on, bool):
            raise InvalidParams(f"command 'light': 'on' must be true or false, got {on!r}")
        return {"on": on}
    if name == SPEED:
        level = _require_int(params, "level", name)
        if level not in SPEED_PERCENT:
            raise InvalidParams(f"command 'speed': 'level' must be 1-4, got {level}")
        return {"level": level}
    if name == GCODE:
        line = params.get("line")
        if not isinstance(line, str) or not line.strip():
            raise InvalidParams("command 'gcode': 'line' must be a non-empty string")
        return {"line": line.strip()}
    if name == AMS_CHANGE:
        tray = _require_int(params, "tray", name)
        if tray not in _VALID_TRAYS:
            raise InvalidParams(
                f"command 'ams_change': 'tray' must be 0-15, 128-135 or 254, got {tray}"
            )
        return {"tray": tray}
    if name == SET_TEMPERATURE:
        heater = params.get("heater")
        if heater not in MAX_TARGET:
            raise InvalidParams(
                f"command 'set_temperature': 'heater' must be 'nozzle' or 'bed', got {heater!r}"
            )
        target = params.get("target")
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise InvalidParams(
                f"command 'set_temperature': 'target' must be a number, got {target!r}"
            )
        if not math.isfinite(target) or not 0 <= target <= MAX_TARGET[heater]:
            raise InvalidParams(
                f"command 'set_temperature': 'target' must be 0-{MAX_TARGET[heater]:g}, got {target}"
            )
        return {"heater": heater, "target": float(target)}
    return {}


# name -> (states in which it is allowed, what the printer must be doing)
_ALLOWED_IN: dict[str, tuple[frozenset[PrintState], str]] = {
    PAUSE: (frozenset({PrintState.PRINTING, PrintState.PREPARING}), "printing"),
    RESUME: (frozenset({PrintState.PAUSED}), "paused"),
    STOP: (ACTIVE_STATES, "running a print"),
}
# name -> states in which it is refused, because it would disturb a running print
_REFUSED_IN: dict[str, frozenset[PrintState]] = {
    HOME: ACTIVE_STATES,
    AMS_CHANGE: frozenset({PrintState.PRINTING, PrintState.PREPARING}),
}


def state_refusal(name: str, state: PrintState) -> str | None:
    """Why command `name` cannot run while the printer is in `state`, or None if it can."""
    allowed = _ALLOWED_IN.get(name)
    if allowed is not None and state not in allowed[0]:
        return f"it is {state.value}, not {allowed[1]}"
    refused = _REFUSED_IN.get(name)
    if refused is not None and state in refused:
        return f"it is {state.value}; '{name}' would disturb the running print"
    return None
