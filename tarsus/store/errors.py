"""Errors of the database layer.

Every error says, in words a person can act on, which record and which field was wrong. The
subclasses let callers map them to answers: :class:`NotFound` and :class:`InvalidInput` are the
caller's mistake, :class:`Conflict` is a clash with what is already stored, and
:class:`StoreUnavailable` means the database could not be reached at all.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "InvalidInput",
    "NotFound",
    "StoreDamaged",
    "StoreError",
    "StoreUnavailable",
    "driver_reason",
    "is_duplicate_key",
    "mysql_code",
]

#: MySQL/MariaDB ``ER_DUP_ENTRY``: a unique key already holds the value.
_ER_DUP_ENTRY = 1062
#: SQLite extended result codes of a unique or primary key violation.
_SQLITE_UNIQUE = frozenset({1555, 2067})  # SQLITE_CONSTRAINT_PRIMARYKEY, _UNIQUE


class StoreError(Exception):
    """Base of every error raised by :mod:`tarsus.store`."""


class NotFound(StoreError, LookupError):
    """The record an operation names does not exist."""


class Conflict(StoreError):
    """The operation clashes with stored state (a duplicate, a port in use, a running server)."""


class InvalidInput(StoreError, ValueError):
    """A value is malformed or out of range; the message names the field."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached or opened; the message names the URL (never the
    password) and the driver's reason."""


class StoreDamaged(StoreError):
    """The database exists but cannot be used as it is: a damaged SQLite file, or an existing
    empty one that was not asked to be created. Retrying does not help; the message says what
    to do."""


def _driver_error(err: BaseException) -> BaseException:
    """The DB-API error under SQLAlchemy's wrapping (``err.orig``), or ``err`` itself."""
    orig = getattr(err, "orig", None)
    return orig if isinstance(orig, BaseException) else err


def mysql_code(err: BaseException) -> int | None:
    """The MySQL/MariaDB server error number of ``err``, if the driver gave one."""
    args = getattr(_driver_error(err), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def driver_reason(err: BaseException) -> str:
    """The driver's own words for ``err``, without SQLAlchemy's wrapping."""
    orig = _driver_error(err)
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int):  # MySQL drivers: (code, message)
        return f"{args[1]} (error {args[0]})"
    return str(orig) or type(orig).__name__


def is_duplicate_key(err: BaseException) -> bool:
    """Whether an integrity error is a duplicate of a unique key (and not, say, a foreign key
    or a NOT NULL violation, which must not be reported as "already exists")."""
    if mysql_code(err) == _ER_DUP_ENTRY:
        return True
    orig = _driver_error(err)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code in _SQLITE_UNIQUE
    return "UNIQUE constraint failed" in str(orig)
