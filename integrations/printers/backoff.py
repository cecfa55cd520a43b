"""Exponential reconnect backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays that double from `initial` up to `maximum`, each drawn uniformly from [0, cap].

    Full jitter (rather than a fixed doubling) matters for a farm: when a switch
    reboots, 500 printers drop together and must not come back in lock-step.
    """

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 30.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._rand = rand
        self.attempt = 0

    def cap(self) -> float:
        """Upper bound of the next delay (before jitter)."""
        # min() before the power would overflow for long outages; cap the exponent instead.
        return min(self.maximum, self.initial * 2 ** min(self.attempt, 62))

    def next_delay(self, at_least_half: bool = False) -> float:
        """Return the next delay in seconds and advance the attempt counter.

        `at_least_half` draws from [cap/2, cap] instead (still jittered, never near zero).
        """
        cap = self.cap()
        delay = cap * (0.5 + self._rand() / 2) if at_least_half else self._rand() * cap
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from `initial` (after a link that stayed up)."""
        self.attempt = 0

    def spread(self, value: float) -> float:
        """`value` jittered into [value/2, value], for fixed slow retries."""
        return value * (0.5 + self._rand() / 2)
