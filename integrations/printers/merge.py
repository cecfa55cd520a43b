"""In-place merging of partial protocol reports into the last full state."""

from __future__ import annotations

from typing import Any


def _is_id_list(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(item, dict) and "id" in item for item in value)


def _merge_id_list(target: list[Any], delta: list[Any], full: bool) -> bool:
    """Merge lists of objects keyed by `id` (AMS units, trays)."""
    changed = False
    index = {str(item.get("id")): i for i, item in enumerate(target) if isinstance(item, dict)}
    seen: set[str] = set()
    for item in delta:
        key = str(item["id"])
        seen.add(key)
        position = index.get(key)
        if position is None:
            target.append(item)
            changed = True
        elif len(item) == 1:
            # A tray reported with only its id is empty: drop what it used to hold.
            if target[position] != item:
                target[position] = item
                changed = True
        elif merge(target[position], item, full):
            changed = True
    if full and len(seen) != len(target):
        target[:] = [t for t in target if str(t.get("id")) in seen]
        changed = True
    return changed


def merge(target: dict[str, Any], delta: dict[str, Any], full: bool = False) -> bool:
    """Merge `delta` into `target` in place; with `full`, drop what `delta` lacks. True if changed."""
    changed = False
    for key, value in delta.items():
        old = target.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            changed = merge(old, value, full) or changed
        elif isinstance(value, list) and isinstance(old, list) and _is_id_list(value):
            changed = _merge_id_list(old, value, full) or changed
        elif old != value or key not in target:
            target[key] = value
            changed = True
    if full:
        for key in [k for k in target if k not in delta]:
            del target[key]
            changed = True
    return changed
