"""Shutdown within a time budget: each step gets what is left of it, and one that overruns is cut."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

log = logging.getLogger(__name__)

#: The whole of Hub.stop; serve adds the server's own drain and stays under 5 s from SIGTERM.
STOP_LIMIT_S = 2.5
#: No step is cut shorter than this, so an overrun budget still tries each step briefly.
MIN_STEP_S = 0.05


class Budget:
    """A deadline shared by the steps of one shutdown."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        """Seconds left (at least MIN_STEP_S), at most `cap`."""
        left = max(MIN_STEP_S, self.deadline - time.monotonic())
        return left if cap is None else min(cap, left)

    async def step(self, what: str, action: Awaitable[object], cap: float | None = None) -> None:
        """Run one step of the shutdown; past its share of the budget it is cancelled and logged."""
        seconds = self.left(cap)
        try:
            await asyncio.wait_for(action, seconds)
        except TimeoutError:
            log.warning("stopping: %s took longer than %.2f s and was cut short", what, seconds)
        except Exception:
            log.exception("stopping: %s failed", what)
