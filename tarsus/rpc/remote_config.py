"""Business config files pulled from tarsconfig (``ConfigF.loadConfig``) into a server's
``basepath``, as TarsCpp's ``RemoteConfig::addConfig`` does for ``Application::addConfig`` and
the ``tars.loadconfig`` admin command (docs/rpc-server.md).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tarsus.protocol.gen import ConfigF
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.server_config import SERVER_DOMAIN, ServerConfig

__all__ = ["CONFIG_BACKUPS", "ConfigLoadError", "add_config"]

log = logging.getLogger("tarsus.rpc.remote_config")

#: How many backups ``add_config`` keeps (``<file>.1.bak`` … ``<file>.5.bak``), as TarsCpp.
CONFIG_BACKUPS = 5


class ConfigLoadError(Exception):
    """``add_config`` could not obtain the file, from tarsconfig or locally. ``str()`` is the
    reply TarsCpp gives (``[fail] get remote config '<file>' error:...``)."""


async def add_config(
    communicator: Communicator, config: ServerConfig, filename: str, *, app_only: bool = False
) -> str:
    """Pull ``filename`` from tarsconfig into ``basepath`` (C++ ``addConfig``,
    ``tars.loadconfig``); returns TarsCpp's report (``[succ] get remote config:...``).

    The file is written beside the old one and renamed over it; a changed file pushes the
    old one to ``<file>.1.bak`` (up to 5 kept). When tarsconfig fails but a local copy
    exists, the local copy is kept and the report starts with ``[fail]``; with no copy at
    all, ConfigLoadError is raised.
    """
    if not filename or Path(filename).name != filename or filename in (".", ".."):
        raise ConfigLoadError(
            f"[fail] get remote config '{filename}' error:a config file name cannot "
            "contain a directory"
        )
    target = Path(config.basepath) / filename
    error = ""
    content: str | None = None
    if not config.config:
        error = f"no config service: {SERVER_DOMAIN}<config> is not set in {config.source}"
    else:
        try:
            content = await _fetch(communicator, config, filename, app_only)
        except Exception as e:
            error = str(e)
    if content is None:
        if target.is_file():
            return f"[fail] get remote config:{filename}fail,use the local config: {target}"
        raise ConfigLoadError(f"[fail] get remote config '{filename}' error:{error}")
    fresh = target.with_name(f"{filename}.{int(time.time())}")
    fresh.parent.mkdir(parents=True, exist_ok=True)
    fresh.write_text(content, encoding="utf-8", errors="surrogateescape")
    old = target.read_bytes() if target.is_file() else None
    if old is not None and old != fresh.read_bytes():
        for i in range(CONFIG_BACKUPS - 1, 0, -1):
            older = target.with_name(f"{filename}.{i}.bak")
            if older.exists():
                older.replace(target.with_name(f"{filename}.{i + 1}.bak"))
        target.replace(target.with_name(f"{filename}.1.bak"))
    fresh.replace(target)
    log.info("config %s loaded into %s", filename, target)
    return f"[succ] get remote config:{filename}"


async def _fetch(
    communicator: Communicator, config: ServerConfig, filename: str, app_only: bool
) -> str:
    tars = ConfigF
    proxy = communicator.string_to_proxy(tars.ConfigProxy, config.config)
    server = "" if app_only else config.server
    failure = "no answer"
    for _ in range(2):  # two tries, as TarsCpp
        try:
            if config.setdivision:
                info = tars.ConfigInfo(
                    appname=config.app,
                    servername=server,
                    filename=filename,
                    bAppOnly=app_only,
                    setdivision=config.setdivision,
                )
                ret, text = await proxy.loadConfigByInfo(info)
            else:
                ret, text = await proxy.loadConfig(config.app, server, filename)
        except Exception as e:
            failure = str(e)
            continue
        if ret != 0 or not text:  # TarsCpp's words; then why (tarsconfig puts it in the text)
            why = f" (tarsconfig answered {ret}{': ' + str(text)[:300] if text else ''})"
            why = why if ret != 0 else ""
            raise ConfigLoadError(f"remote config file is empty:{filename}{why}")
        return str(text)
    raise ConfigLoadError(failure)
