"""Fixtures shared by the fault suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.proxy import FaultProxy


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the shared PostgreSQL server (the server itself is never
    stopped: other tests use it)."""
    fault = await FaultProxy("127.0.0.1", 5432).start()
    try:
        yield fault
    finally:
        await fault.close()
