"""A server's local logs, in upstream's layout, through the standard ``logging`` module.

- **Rolling log**: every record that reaches the root logger is written to
  ``<logpath>/<App>/<Server>/<App>.<Server>.log``, rolled by size and named as TarsCpp's
  ``TC_RollBySize`` names its files (``App.Server1.log`` is the newest old one; ``lognum``
  files in all). Lines read ``2024-05-01 12:00:00|140245234|INFO|message``: time, thread id,
  level, message, as ``LocalRollLogger`` writes them (``HAS_TIME|HAS_PID|HAS_LEVEL``).
- **Levels** are upstream's names: NONE, ERROR, WARN, INFO, DEBUG, TARS (more verbose than
  DEBUG). ``set_level("WARN")`` is what ``tars.setloglevel WARN`` does.
- **Day logs** (``FDLOG("name")`` in C++): ``day_logger("name")`` is a stdlib logger writing to
  ``<logpath>/<App>/<Server>/<App>.<Server>_name_YYYYMMDD.log`` in lines
  ``2024-05-01 12:00:00|message``, a new file each day. Day logs are not filtered by the rolling
  log's level, as upstream.

Files are written on a background thread (a ``QueueListener``), as upstream's logger thread
does, so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DAY_LOGGER",
    "DEFAULT_LOG_NUM",
    "DEFAULT_LOG_SIZE",
    "LEVELS",
    "TARS",
    "DayFileHandler",
    "DayFormatter",
    "RollFormatter",
    "ServerLog",
    "active",
    "add_day_handler",
    "day_logger",
    "enable_day_log",
    "level_name",
    "parse_level",
    "parse_size",
    "remove_day_handlers",
    "set_level",
    "setup",
]

#: Upstream's TARS level: framework chatter, more verbose than DEBUG.
TARS = 5
#: What NONE maps to: above any level a record has, so nothing passes.
_NONE = logging.CRITICAL + 10

#: Tars level names → ``logging`` levels.
LEVELS: dict[str, int] = {
    "NONE": _NONE,
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "TARS": TARS,
}

#: ``logsize`` when the config gives none: 50 MiB, as TarsCpp (``52428800``).
DEFAULT_LOG_SIZE = 50 * 1024 * 1024
#: ``lognum`` when the config gives none: the current file and 9 old ones.
DEFAULT_LOG_NUM = 10

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMG]?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_DAY_LOGGER = "tarsus.daylog"
#: The logger every day logger is a child of (``tarsus.daylog.<name>``).
DAY_LOGGER = _DAY_LOGGER


def parse_size(text: str) -> int:
    """``"50M"`` → 52428800: bytes, or a number with a K, M or G suffix (TC_Common::toSize).

    Raises ValueError for anything else (upstream quietly falls back to its default).
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size (like 52428800, 512K, 50M or 1G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def parse_level(name: str) -> int:
    """A Tars level name (any case; upstream stores it upper-cased) → a ``logging`` level.

    Raises ValueError naming the accepted names.
    """
    try:
        return LEVELS[name.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; use one of {', '.join(LEVELS)}") from None


def level_name(level: int) -> str:
    """The Tars name of a ``logging`` level (the nearest one at or below it)."""
    if level >= _NONE:
        return "NONE"
    if level >= logging.ERROR:
        return "ERROR"
    if level >= logging.WARNING:
        return "WARN"
    if level >= logging.INFO:
        return "INFO"
    if level >= logging.DEBUG:
        return "DEBUG"
    return "TARS"


def _stamp(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))


class RollFormatter(logging.Formatter):
    """``YYYY-MM-DD HH:MM:SS|<thread id>|<LEVEL>|message``; a traceback follows on its lines.

    The thread id is ``threading.get_ident()``, the number TarsCpp prints
    (``std::this_thread::get_id()``, i.e. ``pthread_self``).
    """

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        return f"{_stamp(record.created)}|{record.thread}|{level_name(record.levelno)}|{text}"


class DayFormatter(logging.Formatter):
    """``YYYY-MM-DD HH:MM:SS|message``: a day-log line (upstream sets only ``HAS_TIME``)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{_stamp(record.created)}|{record.getMessage()}"


def roll_file_name(default_name: str) -> str:
    """``.../App.Server.log.3`` (the stdlib's name for a backup) → ``.../App.Server3.log``."""
    base, _, number = default_name.rpartition(".")
    if number.isdigit() and base.endswith(".log"):
        return f"{base[: -len('.log')]}{number}.log"
    return default_name


class DayFileHandler(logging.FileHandler):
    """Appends to ``<prefix>_YYYYMMDD.log``, choosing the file by each record's date.

    Upstream writes straight into the dated file and never renames it, and tarsnode's log
    viewer lists those names; ``TimedRotatingFileHandler`` would keep an undated current file
    and rename it at midnight, so it does not fit.
    """

    def __init__(self, prefix: str, encoding: str = "utf-8") -> None:
        self.prefix = prefix
        self.day = time.strftime("%Y%m%d")
        super().__init__(f"{prefix}_{self.day}.log", encoding=encoding, delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        # Called by ``handle()`` with the handler's lock held.
        day = time.strftime("%Y%m%d", time.localtime(record.created))
        if day != self.day:
            self.day = day
            self.baseFilename = os.path.abspath(f"{self.prefix}_{day}.log")
            if self.stream is not None:
                self.stream.close()
                self.stream = None  # reopened by emit (delay=True)
        super().emit(record)


class _Router(logging.Handler):
    """Runs on the writer thread: day-log records to their day file, the rest to the roll log."""

    def __init__(self, log: ServerLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == _DAY_LOGGER or record.name.startswith(_DAY_LOGGER + "."):
            handler = self.log.day_handler(record.name[len(_DAY_LOGGER) + 1 :])
            if handler is not None:
                handler.handle(record)
            return
        self.log.roll_handler.handle(record)


class ServerLog:
    """The logging of one server process, made by :func:`setup`; ``close()`` undoes it."""

    def __init__(
        self,
        app: str,
        server: str,
        directory: Path | None,
        roll_handler: logging.Handler,
    ) -> None:
        self.app = app
        self.server = server
        #: ``<logpath>/<App>/<Server>``, or None when the log goes to stderr
        self.directory = directory
        self.roll_handler = roll_handler
        self._day_handlers: dict[str, DayFileHandler] = {}
        self._day_lock = threading.Lock()
        self._records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self.queue_handler = logging.handlers.QueueHandler(self._records)
        self._listener = logging.handlers.QueueListener(self._records, _Router(self))
        self._closed = False

    @property
    def roll_path(self) -> Path | None:
        """``<logpath>/<App>/<Server>/<App>.<Server>.log`` (None without a logpath)."""
        if self.directory is None:
            return None
        return self.directory / f"{self.app}.{self.server}.log"

    def day_path(self, name: str, day: str | None = None) -> Path | None:
        """The file day log ``name`` writes on ``day`` (``YYYYMMDD``, default today)."""
        if self.directory is None:
            return None
        return Path(f"{self._day_prefix(name)}_{day or time.strftime('%Y%m%d')}.log")

    def _day_prefix(self, name: str) -> str:
        assert self.directory is not None
        stem = f"{self.app}.{self.server}"
        return str(self.directory / (f"{stem}_{name}" if name else stem))

    def day_handler(self, name: str) -> DayFileHandler | None:
        if self.directory is None:
            return None
        with self._day_lock:
            handler = self._day_handlers.get(name)
            if handler is None:
                handler = DayFileHandler(self._day_prefix(name))
                handler.setFormatter(DayFormatter())
                self._day_handlers[name] = handler
            return handler

    def start(self) -> None:
        self._listener.start()

    def flush(self) -> None:
        """Wait until everything logged so far is in the files."""
        if self._closed:
            return
        self._listener.stop()  # drains the queue, then the thread ends
        self._listener.start()
        self.roll_handler.flush()
        with self._day_lock:
            for handler in self._day_handlers.values():
                handler.flush()

    def close(self) -> None:
        """Write out what is queued, detach every handler, restore the root level."""
        global _active
        if self._closed:
            return
        self._closed = True
        root = logging.getLogger()
        root.removeHandler(self.queue_handler)
        for name in list(_day_loggers):
            logging.getLogger(_day_logger_name(name)).removeHandler(self.queue_handler)
        self._listener.stop()
        self.roll_handler.close()
        with self._day_lock:
            for handler in self._day_handlers.values():
                handler.close()
            self._day_handlers.clear()
        with _lock:
            if _active is self:
                _active = None
                root.setLevel(_saved_root_level[0])


_lock = threading.Lock()
_active: ServerLog | None = None
_saved_root_level = [logging.WARNING]
#: names of the day loggers asked for so far, and which are switched off
_day_loggers: set[str] = set()
_day_disabled: set[str] = set()
#: handlers every day logger also has (the remote logger: ``tarsus.rpc.remote_log``)
_extra_day_handlers: list[logging.Handler] = []


def _day_logger_name(name: str) -> str:
    return f"{_DAY_LOGGER}.{name}" if name else _DAY_LOGGER


def setup(
    app: str,
    server: str,
    logpath: str | os.PathLike[str] | None,
    *,
    max_bytes: int = DEFAULT_LOG_SIZE,
    log_num: int = DEFAULT_LOG_NUM,
    level: str = "DEBUG",
) -> ServerLog:
    """Send this process's logs where a Tars server's go, and set the level by Tars name.

    With a ``logpath`` the rolling log is ``<logpath>/<app>/<server>/<app>.<server>.log``
    (``max_bytes`` per file, ``log_num`` files in all); without one, the same lines go to
    stderr (tarsnode appends a server's stderr to that same file, so never both). Replaces an
    earlier ``setup`` in this process.
    """
    global _active
    numeric = parse_level(level)
    with _lock:
        previous = _active
    if previous is not None:
        previous.close()
    directory: Path | None = None
    roll_handler: logging.Handler
    if logpath:
        directory = Path(logpath) / app / server
        directory.mkdir(parents=True, exist_ok=True)
        rolling = logging.handlers.RotatingFileHandler(
            directory / f"{app}.{server}.log",
            maxBytes=max_bytes,
            backupCount=max(0, log_num - 1),
            encoding="utf-8",
        )
        rolling.namer = roll_file_name
        roll_handler = rolling
    else:
        roll_handler = logging.StreamHandler()
    roll_handler.setFormatter(RollFormatter())
    log = ServerLog(app, server, directory, roll_handler)
    log.start()
    root = logging.getLogger()
    with _lock:
        if _active is None:
            _saved_root_level[0] = root.level
        _active = log
        names = list(_day_loggers)
    root.addHandler(log.queue_handler)
    root.setLevel(numeric)
    for name in names:
        _attach_day_logger(name, log)
    return log


def _attach_day_logger(name: str, log: ServerLog) -> None:
    logger = logging.getLogger(_day_logger_name(name))
    if log.directory is None:
        return  # keep propagating to the root logger (stderr)
    if log.queue_handler not in logger.handlers:
        logger.addHandler(log.queue_handler)
    logger.propagate = False


def active() -> ServerLog | None:
    """The current :func:`setup`, if any."""
    return _active


def set_level(name: str) -> int:
    """Set the rolling log's level by Tars name (``tars.setloglevel``); returns the number.

    Raises ValueError for an unknown name, leaving the level as it was.
    """
    numeric = parse_level(name)
    logging.getLogger().setLevel(numeric)
    return numeric


def day_logger(name: str = "") -> logging.Logger:
    """The day log ``name`` (``FDLOG(name)``): ``App.Server_name_YYYYMMDD.log``; ``""`` is the
    default one, ``App.Server_YYYYMMDD.log``.

    Before :func:`setup`, or without a logpath, its records go to the root logger's handlers.
    """
    logger = logging.getLogger(_day_logger_name(name))
    logger.setLevel(1)  # not subject to the rolling log's level
    with _lock:
        _day_loggers.add(name)
        log = _active
        logger.disabled = name in _day_disabled
        extra = list(_extra_day_handlers)
    if log is not None:
        _attach_day_logger(name, log)
    for handler in extra:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    return logger


def add_day_handler(handler: logging.Handler) -> None:
    """Give every day logger, now and later, ``handler`` too (the remote logger)."""
    with _lock:
        _extra_day_handlers.append(handler)
        names = list(_day_loggers)
    for name in names:
        day_logger(name)


def remove_day_handlers(which: Callable[[logging.Handler], bool]) -> None:
    """Take the handlers ``which`` selects off every day logger."""
    with _lock:
        gone = [h for h in _extra_day_handlers if which(h)]
        _extra_day_handlers[:] = [h for h in _extra_day_handlers if h not in gone]
        names = list(_day_loggers)
    for name in names:
        logger = logging.getLogger(_day_logger_name(name))
        for handler in gone:
            logger.removeHandler(handler)


def enable_day_log(name: str, enabled: bool) -> None:
    """Switch day log ``name`` on or off (``tars.enabledaylog local|name|false``)."""
    with _lock:
        if enabled:
            _day_disabled.discard(name)
        else:
            _day_disabled.add(name)
    day_logger(name)


def _close_at_exit() -> None:
    log = _active
    if log is not None:
        log.close()


atexit.register(_close_at_exit)
