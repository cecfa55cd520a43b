"""Database writes that must land: retried with backoff until the database takes them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hub.store.errors import is_unavailable

log = logging.getLogger(__name__)

#: Seconds between tries; the last one repeats for as long as the database stays away.
RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def retry_delay(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failure (0-based)."""
    return RETRY_S[min(attempt, len(RETRY_S) - 1)]


async def until_stored(
    what: str, action: Callable[[], Awaitable[Any]], *, retry_any: bool = True
) -> None:
    """Run `action` until it succeeds, waiting `RETRY_S` between tries (with `retry_any`
    false, only while the database is unreachable: any other error is raised at once).

    `action` must be safe to run again after a failure whose outcome is unknown (a commit sent
    just as the link dropped may have been applied). An unreachable database is one warning
    line when it starts and one info line when the write lands; any other error is logged with
    its traceback on every try (it is a bug, or bad data, and retrying may not help).
    """
    attempt = 0
    since = time.monotonic()
    while True:
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            unavailable = is_unavailable(exc)
            if not unavailable and not retry_any:
                raise
            delay = retry_delay(attempt)
            attempt += 1
            if not unavailable:
                log.exception("%s failed; retrying in %.1f s", what, delay)
            elif attempt == 1:
                log.warning(
                    "%s waits for the database (%s: %s); retrying every %.1f-%.0f s",
                    what, type(exc).__name__, exc, RETRY_S[0], RETRY_S[-1],
                )  # fmt: skip
            else:
                log.debug("%s: database still unavailable (%s)", what, exc)
            await asyncio.sleep(delay)
            continue
        if attempt:
            log.info(
                "%s stored after %d failed tries (%.1f s)", what, attempt, time.monotonic() - since
            )
        return
