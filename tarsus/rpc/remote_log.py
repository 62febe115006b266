"""Log lines to the remote log service (``tars.tarslog.LogObj``), as upstream's remote logger.

A :class:`RemoteLog` owns a bounded queue and a sender on the event loop; its handlers are
``logging`` handlers whose only work on the caller's side is one ``deque.append`` (about a
microsecond: no formatting, no lock, no I/O). Every ``interval`` seconds the sender formats
what was queued on a worker thread and sends it in batches of at most ``batch`` lines
(``Log.logger``; TarsGo sends 2000 lines a second the same way). When the queue is full a line
is dropped and counted (:attr:`RemoteLog.dropped`); the next batch then starts with a line
saying how many were lost, and the local log warns once a minute. A call that fails costs its
lines (counted in :attr:`RemoteLog.failed`), never the caller.

What goes where, as TarsCpp's ``TarsTimeLogger`` and ``RollWriteT``:

* :meth:`RemoteLog.handler` ``(file)``: every record to ``<App>.<Server>_<file>_<date>.log``
  on the log host, lines ``2024-05-01 12:00:00|<thread>|INFO|message``;
* :func:`install` (what a server whose config names ``<log>`` gets): the day logs
  (``tarsus.rpc.logs.day_logger(name)``, upstream ``FDLOG(name)``) also go remote, lines
  ``time|message``; and **dyeing**: a record logged while serving a dyed request (message
  type 0x04 with ``STATUS_DYED_KEY``) or inside ``with dyeing(key):`` also goes to
  ``tars_dyeing/dyeing/tars_dyeing.dyeing_roll_<date>.log`` (day logs: ``..._day_...``),
  each line after ``<App>.<Server>|``, so one request's trail across servers is one file.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tarsus.protocol.gen import LogF
from tarsus.rpc import logs
from tarsus.rpc.current import _current
from tarsus.rpc.periodic import Periodic

if TYPE_CHECKING:
    from tarsus.rpc.communicator import Communicator

__all__ = [
    "DYEING_APP",
    "DYEING_SERVER",
    "RemoteLog",
    "dyeing",
    "dyeing_key",
    "install",
]

log = logging.getLogger("tarsus.rpc.remote_log")

#: Where dyed lines go (TarsCpp ``DYEING_DIR`` / ``DYEING_FILE``).
DYEING_APP = "tars_dyeing"
DYEING_SERVER = "dyeing"
_DYED = 0x04  # TARSMESSAGETYPEDYED
_DYED_KEY = "STATUS_DYED_KEY"
_WARN_EVERY = 60.0

_dyeing: contextvars.ContextVar[str | None] = contextvars.ContextVar("tarsus_dyeing", default=None)


@contextlib.contextmanager
def dyeing(key: str = "") -> Iterator[None]:
    """Dye what is logged inside the block (upstream ``TarsDyeingSwitch::enableDyeing``)."""
    token = _dyeing.set(key)
    try:
        yield
    finally:
        _dyeing.reset(token)


def dyeing_key() -> str | None:
    """The dyeing key of the running code: the block's, or the dyed request's; else None."""
    key = _dyeing.get()
    if key is not None:
        return key
    cur = _current.get(None)
    if cur is not None and cur.message_type & _DYED:
        return cur.status.get(_DYED_KEY, "")
    return None


_Item = tuple["_Handler", logging.LogRecord, "str | None"]


class _Handler(logging.Handler):
    """Queues records for ``remote``; ``file`` None: the day log named by the logger."""

    def __init__(
        self, remote: RemoteLog, file: str | None, formatter: logging.Formatter, only_dyed: bool
    ) -> None:
        super().__init__()
        self.remote = remote
        self.file = file
        self.only_dyed = only_dyed
        self.setFormatter(formatter)
        #: the record handled last: a named day logger's record propagates to the default
        #: day logger (its parent) when logs.setup() has not stopped propagation, and both
        #: carry this handler — sent once, not twice
        self._last: logging.LogRecord | None = None

    def handle(self, record: logging.LogRecord) -> bool:
        # No lock, no formatting here: the caller's whole cost is this method.
        if record is self._last:
            return False
        self._last = record
        if self.filters and not self.filter(record):
            return False
        key = dyeing_key()
        if self.only_dyed and (key is None or record.name.startswith(logs.DAY_LOGGER)):
            return False  # not dyed, or a day log's (its own handler sends it)
        remote = self.remote
        if len(remote._queue) >= remote.max_pending:
            remote.dropped += 1
            return False
        remote._queue.append((self, record, key))
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)

    def target(self, record: logging.LogRecord) -> str:
        if self.file is not None:
            return self.file
        name = record.name
        return name[len(logs.DAY_LOGGER) + 1 :] if name.startswith(logs.DAY_LOGGER + ".") else ""


class RemoteLog:
    """Lines of ``app.server`` to ``log_obj``, sent from ``communicator``'s event loop."""

    def __init__(
        self,
        communicator: Communicator,
        app: str,
        server: str,
        *,
        log_obj: str = "tars.tarslog.LogObj",
        format: str = "%Y%m%d",
        set_division: str = "",
        interval: float = 0.5,
        batch: int = 2000,
        max_pending: int = 50_000,
    ) -> None:
        self.app, self.server, self.format = app, server, format
        self.set_division = set_division
        self.log_obj = log_obj
        self.batch = max(1, batch)
        self.max_pending = max(1, max_pending)
        self._proxy = communicator.string_to_proxy(LogF.LogProxy, log_obj)
        self._queue: collections.deque[_Item] = collections.deque()
        self._loop = Periodic("tarsus-remote-log", interval, self.flush)
        self._last_warning = float("-inf")
        self._reported_drops = 0
        #: lines dropped because the queue was full
        self.dropped = 0
        #: lines sent / lost to failed calls
        self.sent = 0
        self.failed = 0

    def handler(self, file: str = "") -> logging.Handler:
        """A handler sending every record to this server's remote log ``file``."""
        return _Handler(self, file, logs.RollFormatter(), only_dyed=False)

    def day_handler(self) -> logging.Handler:
        """A handler for the day loggers: each to the remote file of its name."""
        return _Handler(self, None, logs.DayFormatter(), only_dyed=False)

    def dyeing_handler(self) -> logging.Handler:
        """A handler that sends dyed records only (to the dyeing log)."""
        return _Handler(self, "", logs.RollFormatter(), only_dyed=True)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop the sender and send what is queued."""
        await self._loop.stop()
        await self.flush()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        """Send everything queued so far (returns when answered or failed)."""
        while self._queue:
            items = []
            queue = self._queue
            for _ in range(min(len(queue), self.batch * 4)):
                items.append(queue.popleft())
            groups = await asyncio.to_thread(self._format, items)
            await asyncio.gather(*(self._send(key, lines) for key, lines in groups.items()))

    def _format(self, items: list[_Item]) -> dict[tuple[str, str, str], list[str]]:
        groups: dict[tuple[str, str, str], list[str]] = {}
        me = f"{self.app}.{self.server}|"
        lost = self.dropped - self._reported_drops
        if lost:
            self._reported_drops = self.dropped
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            note = f"{stamp}|tarsus|WARN|remote log: {lost} lines dropped (queue full)\n"
            groups.setdefault((self.app, self.server, ""), []).append(note)
        for handler, record, key in items:
            try:
                line = handler.format(record) + "\n"
            except Exception:
                line = f"(unformattable record {record.msg!r})\n"
            day = handler.file is None
            if not handler.only_dyed:
                groups.setdefault((self.app, self.server, handler.target(record)), []).append(line)
            if key is not None:
                where = (DYEING_APP, DYEING_SERVER, "day" if day else "roll")
                groups.setdefault(where, []).append(me + line)
        return groups

    async def _send(self, key: tuple[str, str, str], lines: list[str]) -> None:
        app, server, file = key
        for start in range(0, len(lines), self.batch):
            chunk = lines[start : start + self.batch]
            try:
                await self._proxy.logger(app, server, file, self.format, chunk)
                self.sent += len(chunk)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the log service's trouble must never become ours
                self.failed += len(chunk)
                now = time.monotonic()
                if now - self._last_warning >= _WARN_EVERY:
                    self._last_warning = now
                    log.warning(
                        "remote log %s: %d lines lost: %s (not logged again for %ds)",
                        self.log_obj, len(chunk), e, int(_WARN_EVERY),
                    )  # fmt: skip


def install(remote: RemoteLog) -> None:
    """Make ``remote`` this process's remote logger: the day logs and dyed records go to it
    (see the module doc). :meth:`RemoteLog.start` still has to run on the event loop."""
    logs.add_day_handler(remote.day_handler())
    logging.getLogger().addHandler(remote.dyeing_handler())


def uninstall(remote: RemoteLog) -> None:
    """Undo :func:`install`."""
    logs.remove_day_handlers(lambda h: isinstance(h, _Handler) and h.remote is remote)
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _Handler) and h.remote is remote:
            root.removeHandler(h)
