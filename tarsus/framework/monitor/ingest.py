"""What StatObj and PropertyObj share: windows of aggregated reports, the bounded queue of
closed windows waiting for the database, and the service around them.

A report is summed into the window it arrives in (:class:`Aggregator`, one per service). Once a
window has ended, its rows go to a :class:`RowSink`, which writes them to the hourly table of
that window and records the window in ``t_ecstatus``. While the database refuses, the sink
keeps the rows (at most ``max_pending_rows``; past it, the oldest windows are dropped and
counted) and tries again every round: nothing is lost by an outage that fits, and the servant
answering reports never waits for the database.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

from sqlalchemy.exc import SQLAlchemyError

from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.monitor.tables import HourlyTables, TableKind
from tarsus.framework.monitor.windows import WindowSlot, slot_of, window_index
from tarsus.framework.service import FrameworkService
from tarsus.rpc.current import current
from tarsus.rpc.periodic import Periodic
from tarsus.store.engine import Store
from tarsus.store.errors import StoreError

__all__ = ["Aggregator", "Drops", "IngestService", "RowSink", "caller_ip"]

log = logging.getLogger("tarsus.framework.monitor")

#: seconds between warnings about an unreachable database
_WARN_EVERY = 60.0
#: seconds between retention sweeps (upstream: daily at 03:00)
_PURGE_EVERY = 3600.0

Row = tuple[Any, ...]


@dataclass
class Drops:
    """Reports (rows) not stored, by reason. ``empty`` (all-zero bodies) are dropped by
    upstream too and are no error."""

    malformed: int = 0
    absurd: int = 0
    empty: int = 0
    flood: int = 0
    full: int = 0
    #: rows of closed windows dropped because the database was away too long
    backlog: int = 0

    def total(self) -> int:
        return self.malformed + self.absurd + self.flood + self.full + self.backlog


def caller_ip() -> str:
    """The address of the caller of the servant method running now."""
    peer = current().peer
    return peer[0] if peer else ""


class Aggregator(abc.ABC):
    """Sums reports into windows of ``settings.window_s`` seconds; bounded by
    ``max_keys`` per window and ``max_keys_per_source`` per caller and window."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.drops = Drops()
        #: rows taken into a window (merged into an existing row or new)
        self.accepted = 0
        self._windows: dict[int, dict[Any, Any]] = {}
        self._sources: dict[int, Counter[str]] = {}

    def window(self, now: float) -> tuple[dict[Any, Any], Counter[str], int]:
        """The open window of ``now``: its rows, its per-caller counts and its free room."""
        index = window_index(now, self.settings.window_s)
        rows = self._windows.get(index)
        if rows is None:
            rows = self._windows[index] = {}
            self._sources[index] = Counter()
        return rows, self._sources[index], self.settings.max_keys - len(rows)

    def close(self, now: float | None = None) -> list[tuple[WindowSlot, list[Row]]]:
        """The rows of every window ended by ``now`` (every window when None), oldest first,
        forgotten here."""
        current = None if now is None else window_index(now, self.settings.window_s)
        out = []
        for index in sorted(self._windows):
            if current is not None and index >= current:
                break
            rows = self._windows.pop(index)
            del self._sources[index]
            slot = slot_of(index, self.settings.window_s)
            out.append((slot, self.rows(slot, rows)))
        return out

    @property
    def open_rows(self) -> int:
        return sum(len(w) for w in self._windows.values())

    @abc.abstractmethod
    def rows(self, slot: WindowSlot, window: dict[Any, Any]) -> list[Row]:
        """A closed window's table rows."""


class RowSink:
    """Closed windows on their way to the hourly tables of ``tables``."""

    def __init__(self, tables: HourlyTables, appname: str, settings: IngestSettings) -> None:
        self.tables = tables
        self.appname = appname
        self.settings = settings
        self.drops = Drops()
        self.written = 0
        #: windows waiting: slot, rows, rows of it already written
        self._queue: deque[list[Any]] = deque()
        self.pending = 0
        self._warned = 0.0
        self._lock = asyncio.Lock()

    def add(self, slot: WindowSlot, rows: list[Row]) -> None:
        if not rows:
            return
        self._queue.append([slot, rows, 0])
        self.pending += len(rows)
        while self.pending > self.settings.max_pending_rows and len(self._queue) > 1:
            _slot, old, done = self._queue.popleft()
            self.pending -= len(old) - done
            self.drops.backlog += len(old) - done
            log.warning(
                "%s: dropped a window of %d rows: the database is away",
                self.appname,
                len(old) - done,
            )
        if self.pending > self.settings.max_pending_rows:  # one window bigger than the cap
            entry = self._queue[0]
            over = self.pending - self.settings.max_pending_rows
            entry[1] = entry[1][: len(entry[1]) - over]
            self.pending -= over
            self.drops.backlog += over

    async def flush(self) -> bool:
        """Write what waits, oldest first; False when the database refused (what is left
        stays queued)."""
        async with self._lock:
            while self._queue:
                entry = self._queue[0]
                slot, rows, done = entry
                try:
                    while done < len(rows):
                        chunk = rows[done : done + self.settings.chunk_rows]
                        await self.tables.write(slot.suffix, chunk)
                        done += len(chunk)
                        entry[2] = done
                        self.pending -= len(chunk)
                        self.written += len(chunk)
                    await self.tables.mark_complete(self.appname, slot.stattime)
                except (StoreError, SQLAlchemyError, OSError) as e:
                    self._warn(e)
                    return False
                self._queue.popleft()
        return True

    def _warn(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning(
                "%s: cannot write to the database (%d rows wait, kept up to %d): %s",
                self.appname,
                self.pending,
                self.settings.max_pending_rows,
                e,
            )


class IngestService(FrameworkService):
    """StatObj and PropertyObj: an :class:`Aggregator` feeding a :class:`RowSink`."""

    kind: ClassVar[TableKind]

    def __init__(self, store: Store, settings: IngestSettings, aggregator: Aggregator) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.aggregator = aggregator
        self.tables = HourlyTables(store, self.kind)
        self.sink = RowSink(self.tables, f"{self.kind.prefix}{settings.source_id}", settings)
        self.loops = [
            Periodic(f"tarsus-{self.kind.dataid}-flush", settings.flush_interval, self.flush),
            Periodic(f"tarsus-{self.kind.dataid}-purge", _PURGE_EVERY, self.purge, run_first=True),
        ]

    @property
    def drops(self) -> Drops:
        """Everything dropped so far, the aggregator's and the sink's together."""
        a, s = self.aggregator.drops, self.sink.drops
        return Drops(
            malformed=a.malformed,
            absurd=a.absurd,
            empty=a.empty,
            flood=a.flood,
            full=a.full,
            backlog=s.backlog,
        )

    async def flush(self, *, everything: bool = False) -> bool:
        """Hand ended windows (every window with ``everything``) to the sink and write."""
        for slot, rows in self.aggregator.close(None if everything else time.time()):
            self.sink.add(slot, rows)
        return await self.sink.flush()

    async def purge(self) -> list[str]:
        """Drop the tables older than ``reserve_days``."""
        first_kept = date.today() - timedelta(days=self.settings.reserve_days)
        try:
            dropped = await self.tables.drop_before(first_kept)
        except (StoreError, SQLAlchemyError, OSError) as e:
            log.warning("%s: retention sweep failed: %s", self.kind.dataid, e)
            return []
        if dropped:
            log.info("%s: dropped %d old tables", self.kind.dataid, len(dropped))
        return dropped

    async def start(self) -> None:
        try:
            await self.tables.prepare()
        except (StoreError, SQLAlchemyError, OSError) as e:
            log.warning("%s: t_ecstatus not made yet: %s", self.kind.dataid, e)
        await super().start()

    async def stop(self) -> None:
        """Stop the loops, then write every window, the open one too (upstream loses it)."""
        await super().stop()
        await self.flush(everything=True)
