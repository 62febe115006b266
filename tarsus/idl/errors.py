"""Errors raised while reading `.tars` files.

A syntax error stops parsing at once; semantic checks keep going and report every problem they
find, so one run of the compiler shows the user everything that needs fixing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tarsus.idl.model import Location


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a `.tars` file, at the place a user should look."""

    loc: Location
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


class IdlError(Exception):
    """The IDL could not be parsed or checked. ``str()`` gives one ``file:line:col: message``
    line per diagnostic."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def __reduce__(self) -> tuple[type[IdlError], tuple[list[Diagnostic]]]:
        # The default reduce would call IdlError(str), losing the diagnostics.
        return (IdlError, (self.diagnostics,))
