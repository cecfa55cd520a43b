"""A per-process write counter that lets a cache tell at once that what it holds may be stale."""

from __future__ import annotations


class Generation:
    """A number that changes with every write of one kind made in this process."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        """Record one write."""
        self.value += 1
