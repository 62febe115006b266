"""The remote log service put together (upstream ``LogServer``), and how to serve it.

A :class:`~tarsus.framework.service.FrameworkService` (docs/architecture.md, "one service
shape") without a store: its state is its files::

    app = Application()
    add_log(app, LogSettings(directory=Path("/srv/remote_app_log")),
            endpoint="tcp -h 10.0.0.1 -p 18993 -t 60000")
    await app.start()

``python -m tarsus.framework.log --config=FILE`` runs it as a process of its own, from the
config a node generated (upstream ``tarslog --config=...``). See docs/logs.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import LOG_EXT_OBJ, LOG_EXT_PORT, LOG_OBJ, LOG_PORT
from tarsus.framework.log.files import RemoteLogFiles
from tarsus.framework.log.layout import BadLogName, LogTarget, by_info, by_name
from tarsus.framework.log.servant import LogExtImp, LogImp
from tarsus.framework.log.settings import LogSettings
from tarsus.framework.log.writer import LogWriter
from tarsus.framework.service import FrameworkService, ServiceSpec, host

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.protocol.gen import LogF
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["LOG_SPEC", "LogService", "add_log"]

log = logging.getLogger("tarsus.framework.log")

#: ``tars.tarslog``: upstream's object and port (TarsFramework ``deploy/framework/conf``),
#: and our reading object beside it.
LOG_SPEC: Final = ServiceSpec(
    name="tarslog",
    servants=((LOG_OBJ, LOG_PORT), (LOG_EXT_OBJ, LOG_EXT_PORT)),
    module="tarsus.framework.log",
    uses_store=False,
)

#: Targets remembered per (function, names): building one checks names and renders a format.
_TARGET_CACHE = 4096
_WARN_EVERY = 60.0


class LogService(FrameworkService):
    """Remote logs written under ``settings.directory``."""

    spec = LOG_SPEC

    def __init__(self, settings: LogSettings) -> None:
        super().__init__()
        self.settings = settings
        self.writer = LogWriter(
            settings.directory,
            threads=settings.threads,
            max_pending=settings.max_pending,
            max_open=settings.max_open,
            max_line=settings.max_line,
        )
        self.files = RemoteLogFiles(settings.directory)
        #: batches refused for a bad name or format
        self.refused = 0
        self._targets: dict[object, LogTarget] = {}
        self._last_warning = float("-inf")

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """Upstream's ``tars.tarslog`` keys (:meth:`LogSettings.from_tcconfig`); without
        ``logpath``, under the server's data path. ``store`` is not used."""
        base = Path(config.datapath) if config.datapath else None
        return cls(LogSettings.from_tcconfig(tc, base=base))

    def servants(self) -> dict[str, Servant]:
        return {LOG_OBJ: LogImp(self), LOG_EXT_OBJ: LogExtImp(self)}

    async def start(self) -> None:
        self.writer.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await asyncio.to_thread(self.writer.stop)

    # -- the plain logic ------------------------------------------------------------------

    def logger(
        self, peer: str, app: str, server: str, file: str, format: str, lines: list[str]
    ) -> bool:
        """``Log.logger``: queue ``lines`` for their file; False when refused or dropped."""
        key = ("n", app, server, file, format)
        target = self._targets.get(key)
        if target is None:
            try:
                target = by_name(app, server, file, format, hourly=self.settings.hourly)
            except BadLogName as e:
                return self._refuse(f"logger {app[:40]!r}.{server[:40]!r}", e)
            self._remember(key, target)
        return self._submit(peer, target, lines)

    def logger_by_info(self, peer: str, info: LogF.LogInfo, lines: list[str]) -> bool:
        """``Log.loggerbyInfo``: queue ``lines`` for their file; False when refused."""
        key = (
            "i", info.appname, info.servername, info.sFilename, info.sFormat, info.setdivision,
            info.bHasSufix, info.bHasAppNamePrefix, info.sConcatStr, info.sSepar, info.sLogType,
        )  # fmt: skip
        target = self._targets.get(key)
        if target is None:
            try:
                target = by_info(
                    info, hourly=self.settings.hourly, log_types=self.settings.log_types
                )
            except BadLogName as e:
                return self._refuse(f"loggerbyInfo {info.appname[:40]!r}", e)
            self._remember(key, target)
        return self._submit(peer, target, lines)

    def _submit(self, peer: str, target: LogTarget, lines: list[str]) -> bool:
        if not lines:
            return True
        return self.writer.submit(target, peer if self.settings.ip_prefix else "", lines)

    def _remember(self, key: object, target: LogTarget) -> None:
        if len(self._targets) >= _TARGET_CACHE:
            self._targets.clear()  # a caller inventing names: start over, stay bounded
        self._targets[key] = target

    def _refuse(self, what: str, e: BadLogName) -> bool:
        self.refused += 1
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning("%s refused: %s (not logged again for %ds)", what, e, int(_WARN_EVERY))
        return False


def add_log(
    app: Application,
    settings: LogSettings,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {LOG_PORT} -t 60000",
    ext_endpoint: str = f"tcp -h 0.0.0.0 -p {LOG_EXT_PORT} -t 60000",
) -> LogService:
    """Serve ``tars.tarslog.LogObj`` on ``endpoint`` and ``LogExtObj`` on ``ext_endpoint``
    in ``app``."""
    return host(app, LogService(settings), {LOG_OBJ: endpoint, LOG_EXT_OBJ: ext_endpoint})
