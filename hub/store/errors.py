"""Recognise database errors that both engines raise differently."""

from __future__ import annotations

import sqlite3


def is_unique_violation(exc: BaseException) -> bool:
    """True when `exc` is a UNIQUE constraint failure on SQLite or PostgreSQL."""
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    # asyncpg.UniqueViolationError carries SQLSTATE 23505.
    return getattr(exc, "sqlstate", None) == "23505"
