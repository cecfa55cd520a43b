"""The command catalogue (a JSON Schema per command), parameter checks and state preconditions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from hub.model import ACTIVE_STATES, PrintState
from hub.validation import validation_errors

PAUSE = "pause"
RESUME = "resume"
STOP = "stop"
LIGHT = "light"
SPEED = "speed"
GCODE = "gcode"
AMS_CHANGE = "ams_change"
HOME = "home"
SET_TEMPERATURE = "set_temperature"

# Speed levels follow Bambu's four profiles; drivers of other protocols map them to
# these feed-rate percentages so one farm-wide control means the same thing everywhere.
SPEED_PERCENT = {1: 50, 2: 100, 3: 124, 4: 166}

# Upper bounds protect against typos such as 2100 instead of 210; they are above
# any current consumer printer's limits, the firmware enforces the real ones.
MAX_TARGET = {"nozzle": 350.0, "bed": 150.0}


def _params(required: list[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, **extra}


# The command catalogue: one JSON Schema per command for its `params`. The API validates
# request bodies and documents them in OpenAPI with it, drivers check it again (a command may
# come from elsewhere than the API); drivers keep only the state preconditions below.
CATALOGUE: dict[str, dict[str, Any]] = {
    PAUSE: _params([], {}, description="Pause the running print."),
    RESUME: _params([], {}, description="Resume a paused print."),
    STOP: _params([], {}, description="Cancel the running print."),
    LIGHT: _params(["on"], {"on": {"type": "boolean"}}, description="Chamber light on or off."),
    SPEED: _params(
        ["level"],
        {"level": {"type": "integer", "minimum": 1, "maximum": len(SPEED_PERCENT)}},
        description="Speed profile: 1 silent (50 %), 2 standard, 3 sport (124 %), 4 ludicrous.",
    ),
    GCODE: _params(
        ["line"],
        {"line": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": r"\S"}},
        description="Send one line of G-code.",
    ),
    AMS_CHANGE: _params(
        ["tray"],
        {
            "tray": {
                "type": "integer",
                "description": "AMS tray 0-15 (4 units x 4), AMS-HT 128-135, external spool 254.",
                "anyOf": [
                    {"minimum": 0, "maximum": 15},
                    {"minimum": 128, "maximum": 135},
                    {"const": 254},
                ],
            }
        },
        description="Load the filament of another tray.",
    ),
    HOME: _params([], {}, description="Home all axes."),
    SET_TEMPERATURE: _params(
        ["heater", "target"],
        {
            "heater": {"enum": list(MAX_TARGET)},
            "target": {"type": "number", "minimum": 0, "maximum": max(MAX_TARGET.values())},
        },
        description="Set a heater's target in degrees Celsius (0 turns it off).",
        allOf=[
            {
                "if": {"required": ["heater"], "properties": {"heater": {"const": heater}}},
                "then": {"properties": {"target": {"maximum": limit}}},
            }
            for heater, limit in MAX_TARGET.items()
        ],
    ),
}
ALL_COMMANDS = frozenset(CATALOGUE)
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in CATALOGUE.items()}


class InvalidParams(ValueError):
    """A command's parameters are malformed (maps to HTTP 400)."""

    http_status = 400


def validate_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check `params` against the catalogue and normalize them; InvalidParams names the field."""
    params = params or {}
    if not isinstance(params, Mapping):
        raise InvalidParams(f"command '{name}': params must be an object")
    validator = _VALIDATORS.get(name)
    if validator is None:
        return {}
    errors = validation_errors(validator, dict(params), whole="params")
    if errors:
        first = errors[0]
        raise InvalidParams(f"command '{name}': '{first['field']}' {first['message']}")
    clean = {key: params[key] for key in CATALOGUE[name]["properties"] if key in params}
    if name == GCODE:
        clean["line"] = clean["line"].strip()
    if name == SET_TEMPERATURE:
        target = clean["target"]
        if not math.isfinite(target):  # JSON Schema's bounds let NaN through
            raise InvalidParams(f"command '{name}': 'target' must be a finite number")
        clean["target"] = float(target)
    return clean


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
