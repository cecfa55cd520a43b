"""Fixtures for driver tests: recorded payloads of real protocol shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def payload() -> Callable[[str], Any]:
    """Load `fixtures/<name>` as JSON (a fresh copy each call, so tests may mutate it)."""

    def load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    return load
