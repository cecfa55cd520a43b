"""Simulated time: an accelerated wall clock for fleets and a manual clock for unit tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of simulated seconds; the print model reads nothing else for time."""

    def now(self) -> float:
        """Simulated seconds since an arbitrary origin."""
        ...


class AcceleratedClock:
    """Monotonic time multiplied by `speed`: speed=60 turns a real minute into a simulated hour."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since this clock was made."""
        return (time.monotonic() - self._t0) * self.speed


class ManualClock:
    """A clock that moves only when told to, so tests step the model deterministically."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start

    def now(self) -> float:
        """The current manual time in simulated seconds."""
        return self._t

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` simulated seconds."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._t += seconds
