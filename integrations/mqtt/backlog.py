"""Non-retained MQTT events kept while the broker is away: first in, first out, bounded; past
the bound the oldest are shed, counted and logged. Retained state needs no such buffer: every
(re)connect re-publishes it from the hub's live view."""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    """One event message waiting for the broker."""

    seq: int
    topic: str
    data: str


class Backlog:
    """The bridge's event messages in publishing order until each has been handed over."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Pending] = deque()
        self._seq = 0
        #: Messages shed because the backlog was full (oldest first), since the bridge started.
        self.shed = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, topic: str, data: str) -> None:
        """Keep a message at the end; shed the oldest when full."""
        self._seq += 1
        self._items.append(Pending(self._seq, topic, data))
        while len(self._items) > self.limit:
            self._items.popleft()
            self.shed += 1
            if self.shed == 1 or self.shed % 1000 == 0:
                log.warning(
                    "MQTT event backlog full (%d): %d oldest event(s) shed so far",
                    self.limit,
                    self.shed,
                )

    def head(self) -> Pending | None:
        """The oldest message, left in place until `done`."""
        return self._items[0] if self._items else None

    def first(self, count: int) -> list[Pending]:
        """The `count` oldest messages, left in place until `done`."""
        return list(itertools.islice(self._items, count))

    def done(self, item: Pending) -> None:
        """`item` went out: drop it (unless it was shed meanwhile)."""
        if self._items and self._items[0].seq == item.seq:
            self._items.popleft()
