"""The remote log service's two servants: ``LogImp`` on ``tars.tarslog.LogObj`` (upstream
``LogImp``: ``logger`` and ``loggerbyInfo`` of ``LogF.tars``, exactly upstream's object) and
``LogExtImp`` on ``tars.tarslog.LogExtObj``, our ``tarsus.LogExt`` (``TarsusLog.tars``: list
and read the files back). Reading has an object of its own so that a secured install guards
it with ``-e 1`` while every server keeps sending lines to the open ``LogObj``
(docs/security.md).

A thin translation to :class:`~tarsus.framework.log.service.LogService`: both log functions
are ``void`` as upstream's; a refused batch (a bad name, no room) is logged and counted, and
nothing a caller sends ends the process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tarsus.framework.log.layout import BadLogName
from tarsus.framework.node.logview import LogCommandError
from tarsus.names import InvalidName
from tarsus.protocol.gen import LogF, TarsusLog
from tarsus.rpc.current import current

if TYPE_CHECKING:
    from tarsus.framework.log.service import LogService

__all__ = ["LogExtImp", "LogImp"]

log = logging.getLogger("tarsus.framework.log")


def _peer() -> str:
    """The caller's address (upstream: ``current->getHostName()``)."""
    try:
        peer = current().peer
    except LookupError:
        return ""
    return peer[0] if peer else ""


class LogImp(LogF.LogServant):
    """Upstream's ``Log`` over ``service``."""

    def __init__(self, service: LogService) -> None:
        self.service = service

    async def logger(
        self, app: str, server: str, file: str, format: str, buffer: list[str]
    ) -> None:
        self.service.logger(_peer(), app, server, file, format, buffer)

    async def loggerbyInfo(self, info: LogF.LogInfo, buffer: list[str]) -> None:
        self.service.logger_by_info(_peer(), info, buffer)


class LogExtImp(TarsusLog.LogExtServant):
    """Our ``LogExt`` over ``service``'s files."""

    def __init__(self, service: LogService) -> None:
        self.service = service

    async def listLogFiles(self, application: str, serverName: str) -> tuple[int, list[str]]:
        try:
            return 0, await self.service.files.names(application, serverName)
        except (InvalidName, BadLogName) as e:
            log.warning("listLogFiles refused: %s", e)
            return -1, []

    async def getLogData(
        self, application: str, serverName: str, logFile: str, cmd: str
    ) -> tuple[int, str]:
        try:
            return 0, await self.service.files.data(application, serverName, logFile, cmd)
        except (InvalidName, LogCommandError) as e:
            return -1, str(e)
        except Exception as e:
            log.exception("getLogData %s.%s %r failed", application, serverName, logFile[:80])
            return -1, f"{type(e).__name__}: {e}"
