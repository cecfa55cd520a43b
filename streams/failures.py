"""Rate-limited logging of exceptions that the streams contain instead of propagating."""

from __future__ import annotations

import logging


class FailureLog:
    """Logs the first failure with its traceback, then one line per `every` further failures.

    A sink or step that raises on every report would otherwise write a traceback
    a thousand times a second and drown the rest of the log.
    """

    __slots__ = ("count", "every", "log", "what")

    def __init__(self, log: logging.Logger, what: str, every: int = 1000) -> None:
        self.log = log
        self.what = what
        self.every = every
        self.count = 0

    def failed(self, error: BaseException, detail: str = "") -> None:
        """Record one contained failure."""
        self.count += 1
        if self.count == 1:
            self.log.error("%s failed%s", self.what, detail, exc_info=error)
        elif self.count % self.every == 0:
            self.log.error("%s has failed %d times; last: %r", self.what, self.count, error)
