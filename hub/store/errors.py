"""Recognise database errors that both engines raise differently."""

from __future__ import annotations

import sqlite3


def is_unique_violation(exc: BaseException) -> bool:
    """True when `exc` is a UNIQUE constraint failure on SQLite or PostgreSQL."""
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    # asyncpg.UniqueViolationError carries SQLSTATE 23505.
    return getattr(exc, "sqlstate", None) == "23505"


# SQLSTATE classes meaning "the server is not there for now": 08 connection exception,
# 53 insufficient resources (too many connections), 57P admin/crash shutdown.
_UNAVAILABLE_STATES = ("08", "53", "57P")
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "database is locked")


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached right now (worth a retry later),
    not that the query was wrong."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in _SQLITE_UNAVAILABLE)
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
        return True
    # asyncpg's own connection errors: a closed connection or pool, or a lost link.
    name = type(exc).__name__
    if name in {"ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"}:
        text = str(exc).lower()
        return "connection" in text or "pool" in text or "closed" in text
    if isinstance(exc, OSError):
        return exc.errno is not None
    return False
