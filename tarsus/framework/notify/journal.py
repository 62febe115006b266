"""The notification service's logic: reports in, rows buffered in bounded memory, written to
``t_server_notifys`` in batches, pruned, paged back out.

Upstream (TarsFramework ``NotifyImp``) writes each report to MySQL as it arrives and loses
it when the database is down. Here a report is turned into a row at once (its time is when
it arrived) and queued; :meth:`NotifyJournal.flush` writes what is queued in one statement.
While the database is down the queue keeps the newest ``buffer_rows`` rows (the oldest are
dropped and counted) and the rows are written when it is back; nothing else waits on it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from tarsus.framework.notify.levels import level_number, tag_of_level, tag_of_message
from tarsus.framework.notify.settings import NotifySettings
from tarsus.protocol.gen.NotifyF import NotifyInfo, NotifyItem, ReportInfo, ReportType
from tarsus.store.errors import StoreError
from tarsus.store.notifys import NotifyRow

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["BATCH_ROWS", "JournalCounters", "NotifyJournal", "split_set"]

log = logging.getLogger("tarsus.framework.notify")

#: Rows written in one statement at most.
BATCH_ROWS = 1000
_CUT = " ...[cut]"


def split_set(set_id: str) -> tuple[str, str, str]:
    """``name.area.group`` as its three parts; anything else (or a ``*`` name or area, as
    upstream refuses) is no set."""
    parts = set_id.split(".")
    if len(parts) != 3 or parts[0] == "*" or parts[1] == "*":
        return "", "", ""
    return parts[0], parts[1], parts[2]


def split_server(name: str) -> tuple[str, str]:
    """``App.Server`` as ``(App, Server)``; a name without a dot is both (upstream)."""
    app, dot, server = name.partition(".")
    return (app, server) if dot and server else (name, name)


@dataclass
class JournalCounters:
    """What happened to the reports (shown by ``tarsus notify stats`` and the logs)."""

    accepted: int = 0
    written: int = 0
    filtered: int = 0
    #: dropped because the buffer was full (the database slow or down)
    dropped: int = 0
    #: writes that failed (the rows stayed queued)
    write_failures: int = 0


class NotifyJournal:
    """Reports to rows, rows to the store."""

    def __init__(
        self,
        store: Store,
        settings: NotifySettings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock or store.clock
        self.queue: deque[NotifyRow] = deque()
        self.counters = JournalCounters()
        #: the reason of the last failed write, "" once a write succeeded again
        self.last_error = ""

    # -- in ------------------------------------------------------------------------------

    def accept(self, info: ReportInfo, peer_host: str) -> bool:
        """Queue ``info`` (from a caller at ``peer_host``); False when a filter dropped it."""
        app, server = info.sApp, info.sServer
        message = info.sMessage
        if self.settings.filtered(app + server, message):
            self.counters.filtered += 1
            return False
        if len(message) > self.settings.max_message:
            message = message[: self.settings.max_message - len(_CUT)] + _CUT
        if info.eType == ReportType.NOTIFY:
            tag = tag_of_level(int(info.eLevel))
        else:
            tag = tag_of_message(message)
        set_name, set_area, set_group = split_set(info.sSet) if info.sSet else ("", "", "")
        row = NotifyRow(
            application=app,
            server_name=server,
            container_name=info.sContainer,
            node_name=info.sNodeName or peer_host,
            set_name=set_name,
            set_area=set_area,
            set_group=set_group,
            thread_id=info.sThreadId,
            command=tag,
            result=message,
            notifytime=self._clock().replace(microsecond=0, tzinfo=None),
        )
        self.counters.accepted += 1
        self.queue.append(row)
        self._trim()
        return True

    def _trim(self) -> None:
        over = len(self.queue) - self.settings.buffer_rows
        if over > 0:
            for _ in range(over):
                self.queue.popleft()
            if self.counters.dropped == 0:
                log.warning(
                    "notification buffer full (%d rows): dropping the oldest",
                    self.settings.buffer_rows,
                )
            self.counters.dropped += over

    # -- to the store --------------------------------------------------------------------

    async def flush(self) -> int:
        """Write what is queued (in batches); returns the rows written. A failed write puts
        its rows back at the head of the queue and raises nothing: the next round retries."""
        written = 0
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(BATCH_ROWS, len(self.queue)))]
            try:
                await self.store.notifys.add(batch)
            except (StoreError, SQLAlchemyError, OSError) as e:
                self.queue.extendleft(reversed(batch))
                self._trim()
                self.counters.write_failures += 1
                reason = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
                if reason != self.last_error:
                    log.error("cannot write notifications (%d queued): %s", len(self.queue), reason)
                self.last_error = reason
                return written
            written += len(batch)
            self.counters.written += len(batch)
        if self.last_error:
            log.info("notifications are written again")
            self.last_error = ""
        return written

    async def prune(self) -> int:
        """Retention: the newest ``retain_history`` rows of each instance, none older than
        ``retain_days`` (when not 0)."""
        s = self.settings
        before = None
        if s.retain_days > 0:
            before = self._clock().replace(tzinfo=None) - timedelta(days=s.retain_days)
        removed = await self.store.notifys.prune(keep=s.retain_history, before=before)
        if removed:
            log.info("retention: %d old notifications removed", removed)
        return removed

    # -- out -----------------------------------------------------------------------------

    async def page(self, name: str, node: str, page: int) -> tuple[int, NotifyInfo]:
        """Page ``page`` (0 = newest) of the notifications of ``name`` (``App.Server``) on
        ``node`` (every node when empty): 0 and the page, ``nextpage`` -1 when it is the
        last; -1 and an empty page for a name that is no ``App.Server`` or a negative page."""
        app, dot, server = name.partition(".")
        if not dot or not app or not server or page < 0 or page > 1_000_000:
            return -1, NotifyInfo(nextpage=-1, notifyItems=[])
        size = self.settings.page_size
        rows = await self.store.notifys.list(
            app, server, node=node, limit=size + 1, offset=page * size
        )
        items = [
            NotifyItem(
                sTimeStamp=r.notifytime.strftime("%Y-%m-%d %H:%M:%S"),
                sServerId=r.server_id,
                iLevel=level_number(r.command),
                sMessage=r.result,
            )
            for r in rows[:size]
        ]
        return 0, NotifyInfo(nextpage=page + 1 if len(rows) > size else -1, notifyItems=items)
