"""Fails at setup, as an integration whose broker is misconfigured would."""

from __future__ import annotations

from typing import Any


def setup(ctx: Any, config: Any) -> None:
    """Always refuse to start."""
    raise ConnectionRefusedError("broker at 127.0.0.1:1 refused the connection")
