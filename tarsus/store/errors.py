"""Errors of the database layer.

Every error says, in words a person can act on, which record and which field was wrong. The
subclasses let callers map them to answers: :class:`NotFound` and :class:`InvalidInput` are the
caller's mistake, :class:`Conflict` is a clash with what is already stored, and
:class:`StoreUnavailable` means the database could not be reached at all.
"""

from __future__ import annotations

__all__ = ["Conflict", "InvalidInput", "NotFound", "StoreError", "StoreUnavailable"]


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
