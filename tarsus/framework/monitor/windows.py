"""Aggregation windows and where a window's rows go (upstream ``StatImp`` / ``PropertyImp``).

A report belongs to the window of the moment it arrives. A window is named by the time it
**ends**: ``f_date`` and ``f_tflag`` (``HHMM``) of that end, in the hourly table of that hour;
a window ending on the hour is written as ``(hh-1)60`` into the previous hour's table (the one
ending at 10:00 is ``0960`` in ``..._YYYYMMDD09``; the one ending at midnight is ``2360`` of the
day before), as TarsFramework's ``StatImp::getTimeInfo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["WindowSlot", "slot_of", "window_index"]


@dataclass(frozen=True, slots=True)
class WindowSlot:
    """Where the rows of one closed window are written."""

    #: ``YYYY-MM-DD`` (what a MySQL ``DATE`` column shows)
    f_date: str
    #: ``HHMM`` of the window's end (``hh60`` for a window ending on the next hour)
    f_tflag: str
    #: ``YYYYMMDDHH``: the hourly table's suffix
    suffix: str
    #: the window's end as ``YYYY-MM-DD HH:MM:SS`` (``stattime``, ``t_ecstatus.lasttime``)
    stattime: str


def window_index(now: float, window_s: int) -> int:
    """The number of the window ``now`` (epoch seconds) falls in."""
    return int(now // window_s)


def slot_of(index: int, window_s: int) -> WindowSlot:
    """Where window ``index`` (of ``window_s`` seconds) is written, in local time."""
    end = datetime.fromtimestamp((index + 1) * window_s)
    stattime = end.strftime("%Y-%m-%d %H:%M:%S")
    if end.minute == 0 and end.second == 0:
        last = end - timedelta(minutes=1)
        return WindowSlot(
            last.strftime("%Y-%m-%d"),
            f"{last.hour:02d}60",
            last.strftime("%Y%m%d%H"),
            stattime,
        )
    return WindowSlot(
        end.strftime("%Y-%m-%d"), end.strftime("%H%M"), end.strftime("%Y%m%d%H"), stattime
    )
