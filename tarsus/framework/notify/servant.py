"""``NotifyImp``: the ``tars.tarsnotify.NotifyObj`` servant (upstream ``NotifyImp``), a thin
translation to :class:`~tarsus.framework.notify.journal.NotifyJournal`.

``reportServer`` and ``notifyServer`` name the server as ``App.Server`` and the node is the
caller's address (upstream); ``reportNotifyInfo`` says all itself. Nothing a caller sends
ends the process: a report is queued or dropped (and counted), never waited on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tarsus.framework.notify.journal import split_server
from tarsus.protocol.gen.NotifyF import (
    NOTIFYLEVEL,
    NotifyInfo,
    NotifyKey,
    NotifyServant,
    ReportInfo,
    ReportType,
)
from tarsus.rpc.current import current

if TYPE_CHECKING:
    from tarsus.framework.notify.journal import NotifyJournal

__all__ = ["NotifyImp"]

log = logging.getLogger("tarsus.framework.notify")


def _peer_host() -> str:
    try:
        peer = current().peer
    except LookupError:
        return ""
    return peer[0] if peer else ""


class NotifyImp(NotifyServant):
    """The notification servant over ``journal``."""

    def __init__(self, journal: NotifyJournal) -> None:
        self.journal = journal

    async def reportServer(self, sServerName: str, sThreadId: str, sMessage: str) -> None:
        app, server = split_server(sServerName)
        self.journal.accept(
            ReportInfo(
                eType=ReportType.REPORT,
                sApp=app,
                sSet="",
                sContainer="",
                sServer=server,
                sMessage=sMessage,
                sThreadId=sThreadId,
            ),
            _peer_host(),
        )

    async def notifyServer(self, sServerName: str, level: NOTIFYLEVEL | int, sMessage: str) -> None:
        app, server = split_server(sServerName)
        self.journal.accept(
            ReportInfo(
                eType=ReportType.NOTIFY,
                sApp=app,
                sSet="",
                sContainer="",
                sServer=server,
                sMessage=sMessage,
                eLevel=level,
            ),
            _peer_host(),
        )

    async def getNotifyInfo(self, stKey: NotifyKey) -> tuple[int, NotifyInfo]:
        try:
            return await self.journal.page(stKey.name, stKey.ip, stKey.page)
        except Exception:
            log.exception("getNotifyInfo %r failed", stKey.name[:80])
            return -1, NotifyInfo(nextpage=-1, notifyItems=[])

    async def reportNotifyInfo(self, info: ReportInfo) -> None:
        self.journal.accept(info, _peer_host())
