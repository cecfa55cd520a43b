"""Access to the running hub from request handlers."""

from __future__ import annotations

from quart import current_app

from api.bodies import JsonBodies
from hub.runtime import Hub


def hub() -> Hub:
    """The hub this app serves."""
    found: Hub = current_app.extensions["printforge.hub"]
    return found


def bodies() -> JsonBodies:
    """The encoded-body cache of this app."""
    found: JsonBodies = current_app.extensions["printforge.bodies"]
    return found
