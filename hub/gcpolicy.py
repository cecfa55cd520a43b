"""Cyclic-GC policy for the long-running hub: long-lived objects kept out of full collections.

A farm's hub holds hundreds of thousands of long-lived objects (stream pipelines, driver
sessions, printer states). CPython's full collections walk all of them: 300-560 ms pauses with
500 printers, stalling every live message. Freezing what survived start-up moves those objects
out of the collector's way (reference counting still frees them); a periodic refresh unfreezes,
collects and freezes again, so cycles that became garbage while frozen (a removed printer's
pipeline) are reclaimed too.
"""

from __future__ import annotations

import asyncio
import gc

# Seconds after start to freeze: once the drivers are up, again when every printer has reported.
FREEZE_AFTER_S = (10.0, 60.0)
REFRESH_S = 3600.0  # unfreeze, collect everything, freeze again


def refreeze() -> None:
    """Collect every generation (frozen objects included) and freeze what survives."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def housekeeping(
    freeze_after: tuple[float, ...] = FREEZE_AFTER_S, refresh_s: float = REFRESH_S
) -> None:
    """Freeze the survivors of start-up at the given times, then refresh every `refresh_s`."""
    elapsed = 0.0
    for at in freeze_after:
        await asyncio.sleep(max(0.0, at - elapsed))
        elapsed = at
        gc.collect()
        gc.freeze()
    while True:
        await asyncio.sleep(refresh_s)
        refreeze()
