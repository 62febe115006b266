"""Where a remote log line goes: upstream tarslog's file layout, as plain functions.

TarsFramework ``LogServer/LogImp.cpp`` (``GlobeInfo::getLogger``, ``getRealLogName``,
``getSetGoodFormat``, ``getLogType``) and TarsCpp ``tc_logger.h`` (``TC_RollByTime::roll``,
``TarsLogByDay/Hour/Minute``) decide the names:

* ``logger(app, server, file, format)``: ``<logpath>/<app>/<server>/<app>.<server>[_<file>]``
  followed by ``_<date>.log``, the date rendered with ``format`` (``%Y%m%d``: a file a day);
  a server in the service's hour list gets ``%Y%m%d%H`` whatever it asked for;
* ``loggerbyInfo(info)``: ``<logpath>/<app>/<set>/<server>/<name><concat><date>[.log]`` where
  ``<set>`` is ``name+area+group`` of ``setdivision`` (``name+area`` for group ``*``; no
  directory without a valid set), ``<name>`` is ``<app>.<server><concat><file>`` (or ``<file>``
  alone when ``bHasAppNamePrefix`` is false), and ``sLogType`` (``[n]day``, ``[n]hour``,
  ``[n]minute``, minutes default 10) rolls on multiples of n units since the epoch; the
  service's ``logtype`` map (``app.server.file``) overrides the caller's type, with the type's
  standard format.

Every name a caller sends is checked before it becomes a path: no ``/``, ``\\``, NUL or
``..``; a date format renders to a plain name component. Nothing here touches the disk.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from tarsus.protocol.gen import LogF

__all__ = [
    "DAY_FORMAT",
    "BadLogName",
    "LogTarget",
    "Roll",
    "by_info",
    "by_name",
    "roll_for",
    "set_directory",
]

DAY_FORMAT = "%Y%m%d"
HOUR_FORMAT = "%Y%m%d%H"
MINUTE_FORMAT = "%Y%m%d%H%M"
_UNITS = {"day": (86400, DAY_FORMAT, 1), "hour": (3600, HOUR_FORMAT, 1)}
_UNITS["minute"] = (60, MINUTE_FORMAT, 10)  # upstream: "supports 5 and 10 minutes", default 10
_MAX_NAME = 128
_MAX_FORMAT = 64
#: a name component: no separators, no control characters
_COMPONENT = re.compile(r"[^/\\\x00-\x1f\x7f]+")
#: what a rendered date may hold (``%Y%m%d``, ``%Y-%m-%d_%H``, ...)
_DATE = re.compile(r"[A-Za-z0-9 _.:+\-\[\]]*")


class BadLogName(ValueError):
    """A name, set or format from a caller that may not become a file path."""


def _component(kind: str, value: str, *, empty: bool = False) -> str:
    if not value:
        if empty:
            return value
        raise BadLogName(f"{kind} is empty")
    if len(value) > _MAX_NAME:
        raise BadLogName(f"{kind} {value[:40]!r}... is longer than {_MAX_NAME} characters")
    if not _COMPONENT.fullmatch(value) or value in (".", "..") or ".." in value:
        raise BadLogName(f"{kind} {value[:80]!r} may not hold '/', '\\\\', '..' or controls")
    return value


@dataclass(frozen=True, slots=True)
class Roll:
    """How a file's date part is made: ``format`` of the time, aligned down to ``seconds``
    (0: the format alone decides, as ``TC_RollByTime`` without a log type)."""

    format: str
    seconds: int = 0

    def label(self, now: float) -> str:
        t = int(now)
        if self.seconds:
            t -= t % self.seconds
        return time.strftime(self.format, time.localtime(t))


def roll_for(format: str, log_type: str) -> Roll:
    """``GlobeInfo::getLogType``: ``"2hour"`` → every 2 hours; no type → by ``format``."""
    kind = log_type.strip().lower()
    for unit, (seconds, standard, default_n) in _UNITS.items():
        pos = kind.find(unit)
        if pos < 0:
            continue
        count = kind[:pos]
        n = int(count) if count.isdigit() and int(count) > 0 else default_n
        return Roll(format or standard, seconds * min(n, 10_000))
    return Roll(format or DAY_FORMAT)


def _check_format(format: str) -> str:
    if len(format) > _MAX_FORMAT:
        raise BadLogName(f"date format {format[:40]!r}... is longer than {_MAX_FORMAT}")
    rendered = time.strftime(format, time.localtime(0)) if format else ""
    if not _DATE.fullmatch(rendered) or ".." in rendered:
        raise BadLogName(f"date format {format!r} renders {rendered[:40]!r}: not a file name part")
    return format


def set_directory(division: str) -> str:
    """``getSetGoodFormat``: ``"sz.a.1"`` → ``"sza1"``, ``"sz.a.*"`` → ``"sza"``, else ``""``."""
    parts = division.split(".")
    if len(parts) != 3:
        return ""
    name = parts[0] + parts[1] + ("" if parts[2] == "*" else parts[2])
    return _component("set division", name, empty=True)


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One logical remote log: the file prefix (relative to the log path), its date part's
    rule, the suffix, and the separator put after the caller's address."""

    prefix: PurePosixPath
    roll: Roll
    suffix: str = ".log"
    concat: str = "_"
    separator: str = "|"

    def relative_path(self, now: float) -> PurePosixPath:
        name = f"{self.prefix.name}{self.concat}{self.roll.label(now)}{self.suffix}"
        return self.prefix.with_name(name)


def by_name(
    app: str, server: str, file: str, format: str, *, hourly: frozenset[str] = frozenset()
) -> LogTarget:
    """The target of ``logger(app, server, file, format)``."""
    _component("application", app)
    _component("server", server)
    _component("file", file, empty=True)
    fmt = HOUR_FORMAT if f"{app}.{server}" in hourly else _check_format(format or DAY_FORMAT)
    name = f"{app}.{server}_{file}" if file else f"{app}.{server}"
    return LogTarget(PurePosixPath(app, server, name), Roll(fmt))


def by_info(
    info: LogF.LogInfo,
    *,
    hourly: frozenset[str] = frozenset(),
    log_types: dict[str, str] | None = None,
) -> LogTarget:
    """The target of ``loggerbyInfo(info)``."""
    app = _component("application", info.appname)
    server = _component("server", info.servername)
    file = _component("file", info.sFilename, empty=True)
    concat = _component("concat string", info.sConcatStr, empty=True)
    separator = info.sSepar[:16]
    fmt = HOUR_FORMAT if f"{app}.{server}" in hourly else info.sFormat
    log_type = info.sLogType
    override = (log_types or {}).get(f"{app}.{server}.{file}")
    if override is not None:
        log_type, fmt = override, ""  # the service's choice wins, with the standard format
    roll = roll_for(_check_format(fmt), log_type)
    if info.bHasAppNamePrefix:
        name = f"{app}.{server}{concat}{file}" if file else f"{app}.{server}"
    else:
        name = _component("file", file)
    set_dir = set_directory(info.setdivision)
    parts = (app, set_dir, server, name) if set_dir else (app, server, name)
    return LogTarget(
        PurePosixPath(*parts),
        roll,
        suffix=".log" if info.bHasSufix else "",
        concat=concat,
        separator=separator,
    )
