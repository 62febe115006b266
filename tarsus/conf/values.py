"""Typed values out of a TC_Config, read the way upstream's framework services read theirs.

A service's own settings arrive as text (``updateHeartInterval=10``). ``ConfigValues`` turns
them into numbers, switches and names, gives the default for what is absent, applies upstream's
floors and ranges, and names the key when a value cannot be read::

    values = ConfigValues(tc)
    interval = values.number("/tars/reap<updateHeartInterval>", 10.0, minimum=5.0)
    off = values.yes("/tars/reap<heartbeatoff>")
"""

from __future__ import annotations

from typing import TypeVar

from tarsus.conf.tcconfig import TCConfig

__all__ = ["ConfigValues"]

_N = TypeVar("_N", int, float)


class ConfigValues:
    """Typed reads of one :class:`TCConfig`; a blank value counts as absent unless said."""

    def __init__(self, config: TCConfig) -> None:
        self.config = config

    def number(
        self,
        path: str,
        default: float,
        *,
        minimum: float | None = None,
        within: tuple[float, float] | None = None,
    ) -> float:
        """The number at ``path``, ``default`` when absent.

        ``minimum`` raises a smaller value to it (upstream's floors); a value outside
        ``within`` (bounds included) gives ``default`` (upstream's ranges). A text that is no
        number raises ``ValueError`` naming the key.
        """
        text = self.config.get(path, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            raise ValueError(f"{path} = {text!r} is not a number") from None
        if minimum is not None:
            value = max(minimum, value)
        return _within(value, within, default)

    def integer(self, path: str, default: int, *, within: tuple[int, int] | None = None) -> int:
        """The number at ``path`` cut to an integer (``2.5`` is 2), then checked as
        :meth:`number` does."""
        return _within(int(self.number(path, default)), within, default)

    def text(self, path: str, default: str = "") -> str:
        """The value at ``path`` without surrounding blanks, ``default`` when absent or blank."""
        return self.config.get(path, "").strip() or default

    def yes(self, path: str) -> bool:
        """Whether the switch at ``path`` says ``Y`` (any case): absent, blank or anything
        else is no (upstream's ``heartbeatoff``)."""
        return self.config.get(path, "N").strip().upper() == "Y"

    def not_no(self, path: str) -> bool:
        """Whether the switch at ``path`` is there and does not say ``N`` (any case): upstream
        reads ``recoverProtect`` so, and a blank value switches it on."""
        return self.config.get(path, "N").strip().upper() != "N"


def _within(value: _N, bounds: tuple[_N, _N] | None, default: _N) -> _N:
    if bounds is None or bounds[0] <= value <= bounds[1]:
        return value
    return default
