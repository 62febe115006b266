"""What an operation answers when it does not do what was asked; ``status`` is the HTTP status
the web faces answer with (the CLI maps them to its exit codes)."""

from __future__ import annotations

__all__ = [
    "Conflict",
    "Denied",
    "Invalid",
    "NotFound",
    "OpError",
    "TooMany",
    "Unauthenticated",
    "Unavailable",
    "UpstreamFailed",
]


class OpError(Exception):
    status = 500
    #: a framework service's answer code and text, where it refused (the CLI prints them)
    code: int | None = None
    result: str = ""

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class Invalid(OpError):
    """Bad input, named (nothing changed)."""

    status = 400


class Unauthenticated(OpError):
    """No credentials, or ones that are not (any longer) valid."""

    status = 401


class Denied(OpError):
    """The actor may not do this (nothing changed)."""

    status = 403


class NotFound(OpError):
    status = 404


class Conflict(OpError):
    """Clashes with what is stored (exists already, in use, running)."""

    status = 409


class TooMany(OpError):
    """Refused for now (login attempts); ``Retry-After`` says when to try again."""

    status = 429


class UpstreamFailed(OpError):
    """A framework service refused, with its reason."""

    status = 502


class Unavailable(OpError):
    """A framework service or the database cannot be reached."""

    status = 503
