"""The installer's one error: what went wrong and what to do, said to an operator."""

from __future__ import annotations


class InstallError(Exception):
    """An install step that cannot go on; the message is for the operator, whole."""


class DatabaseUnreachable(InstallError):
    """No database answers at the address given (it may still be starting)."""


class RegistryUnreachable(InstallError):
    """The framework's registry (or its web app) does not answer (it may still be starting)."""
