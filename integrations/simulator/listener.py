"""Shared shutdown of a simulated printer's TCP listener and its connection tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


async def shut_down(
    server: asyncio.Server | None, tasks: set[asyncio.Task[None]], drop_all: Callable[[], None]
) -> None:
    """Stop listening, abort every connection, then cancel and await the connection tasks."""
    if server is not None:
        server.close()
    drop_all()
    for task in list(tasks):
        task.cancel()
    for task in list(tasks):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
