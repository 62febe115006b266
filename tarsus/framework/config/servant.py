"""The config center's two servants: ``ConfigImp`` on ``tars.tarsconfig.ConfigObj`` serves
every function of ``ConfigF.tars`` (upstream ``ConfigImp``), exactly upstream's object;
``ConfigExtImp`` on ``tars.tarsconfig.ConfigExtObj`` serves our ``tarsus.ConfigExt``
(``TarsusConfig.tars``: operators' reads and writes). The operators' interface has an object
of its own so that a secured install guards it with ``-e 1`` while ``ConfigObj`` stays open
for every server's loads (docs/security.md).

A thin translation to :class:`~tarsus.framework.config.center.ConfigCenter` and
:class:`~tarsus.store.configs.Configs`: a refused load answers its code and an empty text (the
reason is logged), a refused check or ``ConfigExt`` call its code with the reason in
``result``; nothing a caller sends ends the process.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from tarsus.framework.config.center import (
    FAILED,
    ConfigCenter,
    ConfigRefused,
    split_app_server,
)
from tarsus.protocol.gen import ConfigF, TarsusConfig
from tarsus.rpc.current import current
from tarsus.store.configs import MAX_ANSWER, ConfigFileRow, ConfigVersionRow, parse_set
from tarsus.store.errors import Conflict, InvalidInput, NotFound, StoreError

__all__ = ["ConfigExtImp", "ConfigImp"]

log = logging.getLogger("tarsus.framework.config")

Code = TarsusConfig.ConfigExtCode
_T = TypeVar("_T")


def caller_ip() -> str:
    """The address the call came from ("" outside a call)."""
    try:
        peer = current().peer
    except LookupError:
        return ""
    return peer[0] if peer else ""


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _file(
    row: ConfigFileRow, references: list[int] | None = None, *, content: bool
) -> TarsusConfig.ConfigFile:
    return TarsusConfig.ConfigFile(
        id=row.id,
        level=row.level,
        serverName=row.server_name,
        fileName=row.filename,
        setDivision=str(row.set),
        host=row.host,
        content=row.config if content else "",
        postTime=_time(row.posttime),
        lastUser=row.lastuser,
        references=references or [],
    )


def _version(row: ConfigVersionRow, *, content: bool) -> TarsusConfig.ConfigVersion:
    return TarsusConfig.ConfigVersion(
        id=row.id,
        configId=row.configid,
        reason=row.reason,
        content=row.content if content else "",
        postTime=_time(row.posttime),
        lastUser=row.lastuser,
        reasonSelect=row.reason_select,
    )


async def _ext(
    what: str,
    work: Callable[[], Awaitable[_T]],
    default: _T,
    *,
    conflict: Code = Code.CONFIG_EXISTS,
) -> tuple[int, _T, str]:
    """Run one ConfigExt call: (code, value, result)."""
    try:
        return int(Code.CONFIG_OK), await work(), ""
    except InvalidInput as e:
        code, reason = Code.CONFIG_BAD_INPUT, str(e)
    except NotFound as e:
        code, reason = Code.CONFIG_NOT_FOUND, str(e)
    except Conflict as e:
        code, reason = conflict, str(e)
    except (StoreError, SQLAlchemyError, OSError, TimeoutError) as e:
        code, reason = Code.CONFIG_DB_ERROR, f"the config database failed: {e}"
    except Exception as e:
        log.exception("%s failed", what)
        code, reason = Code.CONFIG_DB_ERROR, f"{type(e).__name__}: {e}"
    log.info("%s refused (%d): %s", what, int(code), reason)
    return int(code), default, reason


class ConfigImp(ConfigF.ConfigServant):
    """Upstream's ``Config`` over ``center``."""

    def __init__(self, center: ConfigCenter) -> None:
        self.center = center
        self.configs = center.configs

    # ------------------------------------------------------------------ upstream's Config

    @staticmethod
    async def _load(what: str, work: Callable[[], Awaitable[str]]) -> tuple[int, str]:
        """A load: the text, or the code and an empty text (the reason is logged). Not the
        reason in place of the text: @tars/config ignores the code and would take an error
        message for the file."""
        try:
            return 0, await work()
        except ConfigRefused as e:
            log.info("%s refused (%d): %s", what, e.code, e.reason)
            return e.code, ""
        except Exception:
            log.exception("%s failed", what)
            return FAILED, ""

    @staticmethod
    async def _check(what: str, work: Callable[[], Awaitable[str]]) -> tuple[int, str]:
        """A check: the merged text, or the code with the reason in ``result``."""
        try:
            return 0, await work()
        except ConfigRefused as e:
            log.info("%s refused (%d): %s", what, e.code, e.reason)
            return e.code, e.reason
        except Exception as e:
            log.exception("%s failed", what)
            return FAILED, f"{type(e).__name__}: {e}"

    @staticmethod
    async def _names(what: str, work: Callable[[], Awaitable[list[str]]]) -> tuple[int, list[str]]:
        try:
            return 0, await work()
        except ConfigRefused as e:
            log.info("%s refused (%d): %s", what, e.code, e.reason)
            return e.code, []
        except Exception:
            log.exception("%s failed", what)
            return FAILED, []

    async def ListConfig(self, app: str, server: str) -> tuple[int, list[str]]:
        ip = caller_ip()
        return await self._names(
            f"ListConfig {app[:40]}.{server[:40]}",
            lambda: self.center.list_node(app, server, ip),
        )

    async def loadConfig(self, app: str, server: str, filename: str) -> tuple[int, str]:
        ip = caller_ip()
        return await self._load(
            f"loadConfig {app[:40]}.{server[:40]} {filename[:80]!r}",
            lambda: self.center.load(app, server, filename, host=ip, limit_ip=ip),
        )

    async def loadConfigByHost(
        self, appServerName: str, filename: str, host: str
    ) -> tuple[int, str]:
        async def work() -> str:
            app, server = split_app_server(appServerName)
            return await self.center.load(app, server, filename, host=host)

        return await self._load(f"loadConfigByHost {appServerName[:80]} {filename[:80]!r}", work)

    async def checkConfig(self, appServerName: str, filename: str, host: str) -> tuple[int, str]:
        async def work() -> str:
            app, server = split_app_server(appServerName)
            return await self.center.check(app, server, filename, host=host, division="")

        return await self._check(f"checkConfig {appServerName[:80]} {filename[:80]!r}", work)

    async def ListConfigByInfo(self, configInfo: ConfigF.ConfigInfo) -> tuple[int, list[str]]:
        i = configInfo
        host = i.host or caller_ip()
        return await self._names(
            f"ListConfigByInfo {i.appname[:40]}.{i.servername[:40]}",
            lambda: self.center.list_node(i.appname, i.servername, host, i.setdivision),
        )

    async def loadConfigByInfo(self, configInfo: ConfigF.ConfigInfo) -> tuple[int, str]:
        i = configInfo
        ip = caller_ip()
        return await self._load(
            f"loadConfigByInfo {i.appname[:40]}.{i.servername[:40]} {i.filename[:80]!r}",
            lambda: self.center.load(
                i.appname,
                i.servername,
                i.filename,
                host=i.host or ip,
                division=i.setdivision,
                app_only=i.bAppOnly,
                limit_ip=ip,
            ),
        )

    async def checkConfigByInfo(self, configInfo: ConfigF.ConfigInfo) -> tuple[int, str]:
        i = configInfo
        return await self._check(
            f"checkConfigByInfo {i.appname[:40]}.{i.servername[:40]} {i.filename[:80]!r}",
            lambda: self.center.check(
                i.appname,
                i.servername,
                i.filename,
                host=i.host or caller_ip(),
                division=i.setdivision,
            ),
        )

    async def ListAllConfigByInfo(
        self, configInfo: ConfigF.GetConfigListInfo
    ) -> tuple[int, list[str]]:
        i = configInfo
        ip = caller_ip()
        return await self._names(
            f"ListAllConfigByInfo {i.appname[:40]}.{i.servername[:40]}",
            lambda: self.center.list_all(
                i.appname,
                i.servername,
                app_only=i.bAppOnly,
                host=i.host,
                division=i.setdivision,
                ip=ip,
            ),
        )


class ConfigExtImp(TarsusConfig.ConfigExtServant):
    """Our ``ConfigExt`` over ``center`` (and its store's ``configs``)."""

    def __init__(self, center: ConfigCenter) -> None:
        self.center = center
        self.configs = center.configs

    async def addConfigFile(
        self, file: TarsusConfig.ConfigFile, reason: str, user: str
    ) -> tuple[int, int, str]:
        async def work() -> int:
            return await self.configs.add(
                file.level,
                file.serverName,
                file.fileName,
                file.content,
                division=parse_set(file.setDivision),
                host=file.host,
                reason=reason,
                user=user,
            )

        code, new_id, result = await _ext(
            f"addConfigFile {file.serverName[:80]} {file.fileName[:80]!r}", work, 0
        )
        if code == 0:
            log.info("%s added %s (%d) for %s", user, file.fileName, new_id, file.serverName)
        return code, new_id, result

    async def updateConfigFile(
        self, id: int, content: str, reason: str, user: str
    ) -> tuple[int, str]:
        async def work() -> None:
            await self.configs.update(id, content, reason=reason, user=user)

        code, _, result = await _ext(f"updateConfigFile {id}", work, None)
        return code, result

    async def deleteConfigFile(self, id: int, user: str) -> tuple[int, str]:
        async def work() -> list[int]:
            return await self.configs.delete(id)

        none: list[int] = []
        code, ids, result = await _ext(
            f"deleteConfigFile {id}", work, none, conflict=Code.CONFIG_REFERENCED
        )
        if code == 0:
            log.info("%s deleted config file(s) %s", user, ids)
        return code, result

    async def listConfigFiles(
        self, filter: TarsusConfig.ConfigFilter
    ) -> tuple[int, list[TarsusConfig.ConfigFile], str]:
        f = filter

        async def work() -> list[TarsusConfig.ConfigFile]:
            rows = await self.configs.list(
                f.application,
                server=f.serverName,
                level=f.level,
                filename=f.fileName,
                division=parse_set(f.setDivision) if f.setDivision else None,
                host=f.host,
            )
            if f.withContent:
                size = sum(len(r.config) for r in rows)
                if size > MAX_ANSWER:
                    raise InvalidInput(
                        f"{len(rows)} files of {size} characters are more than an answer "
                        f"carries ({MAX_ANSWER} bytes): list without contents, then get them"
                    )
            return [_file(r, content=f.withContent) for r in rows]

        return await _ext(f"listConfigFiles {f.application[:80]}", work, [])

    async def getConfigFile(self, id: int) -> tuple[int, TarsusConfig.ConfigFile, str]:
        async def work() -> TarsusConfig.ConfigFile:
            row = await self.configs.get(id)
            if row is None:
                raise NotFound(f"no config file {id}")
            return _file(row, await self.configs.references(id), content=True)

        return await _ext(f"getConfigFile {id}", work, TarsusConfig.ConfigFile())

    async def listConfigHistory(
        self, configId: int
    ) -> tuple[int, list[TarsusConfig.ConfigVersion], str]:
        async def work() -> list[TarsusConfig.ConfigVersion]:
            if await self.configs.get(configId) is None:
                raise NotFound(f"no config file {configId}")
            return [_version(v, content=False) for v in await self.configs.history(configId)]

        return await _ext(f"listConfigHistory {configId}", work, [])

    async def getConfigHistory(self, historyId: int) -> tuple[int, TarsusConfig.ConfigVersion, str]:
        async def work() -> TarsusConfig.ConfigVersion:
            row = await self.configs.version(historyId)
            if row is None:
                raise NotFound(f"no config version {historyId}")
            return _version(row, content=True)

        return await _ext(f"getConfigHistory {historyId}", work, TarsusConfig.ConfigVersion())

    async def restoreConfigHistory(self, historyId: int, reason: str, user: str) -> tuple[int, str]:
        async def work() -> int:
            return await self.configs.restore(historyId, reason=reason, user=user)

        code, _, result = await _ext(f"restoreConfigHistory {historyId}", work, 0)
        return code, result

    async def addConfigReference(self, configId: int, referenceId: int) -> tuple[int, str]:
        async def work() -> None:
            await self.configs.add_reference(configId, referenceId)

        code, _, result = await _ext(f"addConfigReference {configId} {referenceId}", work, None)
        return code, result

    async def removeConfigReference(self, configId: int, referenceId: int) -> tuple[int, str]:
        async def work() -> None:
            await self.configs.remove_reference(configId, referenceId)

        code, _, result = await _ext(f"removeConfigReference {configId} {referenceId}", work, None)
        return code, result

    async def mergedConfig(
        self, application: str, serverName: str, fileName: str, host: str, setDivision: str
    ) -> tuple[int, str, str]:
        try:
            text = await self.center.load(
                application, serverName, fileName, host=host, division=setDivision
            )
        except ConfigRefused as e:
            return int(e.ext), "", e.reason
        except Exception as e:
            log.exception("mergedConfig failed")
            return int(Code.CONFIG_DB_ERROR), "", f"{type(e).__name__}: {e}"
        return int(Code.CONFIG_OK), text, ""
