"""JSON Schema errors as field/rule/message triples: a leaf every layer may import, like hub.model."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError


def field_of(error: ValidationError, whole: str = "(body)") -> str:
    """The dotted name of the field an error is about (the missing or unknown key itself)."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator in ("required", "additionalProperties"):
        names = re.findall(r"'([^']+)'", error.message)
        name = names[0] if names else "?"
        return f"{path}.{name}" if path else name
    return path or whole


def message_of(error: ValidationError) -> str:
    """The validator's message, without echoing write-only values (secrets) or whole objects."""
    instance = error.instance
    write_only = isinstance(error.schema, dict) and bool(error.schema.get("writeOnly"))
    if write_only or isinstance(instance, dict | list):
        return error.message.replace(repr(instance), "the value")
    return error.message


def validation_errors(
    validator: Draft202012Validator, data: Any, whole: str = "(body)"
) -> list[dict[str, str]]:
    """Every rule the data breaks, each naming the field, the rule and a message."""
    found = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [
        {"field": field_of(e, whole), "rule": str(e.validator), "message": message_of(e)}
        for e in found
    ]
