"""The config center's logic (upstream ``ConfigImp``): what each ``Config`` function answers, over
:class:`~tarsus.store.configs.Configs`, with the rate limit and the checks of caller input.

Every function returns a value or raises :class:`ConfigRefused` with upstream's return code
(-1; 429 for the rate limit) and a reason; the servant turns that into the answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from tarsus.conf import ConfigError, parse
from tarsus.framework.config.limiter import TOO_MANY_CALLS, RateLimiter
from tarsus.names import (
    InvalidName,
    check_application,
    check_config_file,
    check_node_name,
    check_server_name,
)
from tarsus.protocol.gen.TarsusConfig import ConfigExtCode as ExtCode
from tarsus.store.configs import SetDivision, parse_set
from tarsus.store.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from tarsus.framework.config.settings import ConfigSettings
    from tarsus.store.configs import Configs

__all__ = ["FAILED", "ConfigCenter", "ConfigRefused", "split_app_server"]

log = logging.getLogger("tarsus.framework.config")

#: Upstream's answer to anything that went wrong (bad input, no file, the database).
FAILED = -1
#: Errors that mean "the database did not answer" (as opposed to a bug).
_DB_ERRORS = (StoreError, SQLAlchemyError, OSError, TimeoutError)


class ConfigRefused(Exception):
    """A refused call: ``code`` is what the ``Config`` function returns, ``reason`` why, and
    ``ext`` the matching :class:`~tarsus.protocol.gen.TarsusConfig.ConfigExtCode`."""

    def __init__(self, code: int, reason: str, ext: ExtCode = ExtCode.CONFIG_BAD_INPUT) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.ext = ext


def _checked(app: str, server: str, filename: str | None = None, host: str = "") -> None:
    try:
        check_application(app)
        if server:
            check_server_name(server)
        if filename is not None:
            check_config_file(filename)
        if host:
            check_node_name(host)
    except InvalidName as e:
        raise ConfigRefused(FAILED, str(e)) from None


def _division(text: str) -> SetDivision:
    try:
        return parse_set(text)
    except InvalidInput as e:
        raise ConfigRefused(FAILED, str(e)) from None


class ConfigCenter:
    """The answers of ``tars.tarsconfig.ConfigObj`` (``Config``), ``ip`` being the caller's."""

    def __init__(self, configs: Configs, settings: ConfigSettings) -> None:
        self.configs = configs
        self.settings = settings
        self.limiter = RateLimiter(
            settings.interval, settings.limit, max_callers=settings.max_callers
        )

    def _limit(self, app: str, server: str, ip: str, filename: str) -> None:
        if not self.limiter.allow(app, server, ip, filename):
            raise ConfigRefused(
                TOO_MANY_CALLS,
                f"too many calls for {app}.{server} {filename} from {ip}: at most "
                f"{self.settings.limit + 1} in {self.settings.interval:g} s",
            )

    # ------------------------------------------------------------------ lists

    async def list_node(self, app: str, server: str, host: str, division: str = "") -> list[str]:
        """``ListConfig`` / ``ListConfigByInfo``: the node files of ``App.Server`` on host."""
        _checked(app, server, host=host)
        if not server:
            raise ConfigRefused(FAILED, "no server name")
        where = _division(division)
        try:
            return await self.configs.node_files(f"{app}.{server}", host, where)
        except _DB_ERRORS as e:
            raise _db_failed(f"ListConfig {app}.{server}", e) from None

    async def list_all(
        self, app: str, server: str, *, app_only: bool, host: str, division: str, ip: str
    ) -> list[str]:
        """``ListAllConfigByInfo`` (rate-limited)."""
        _checked(app, server, host=host)
        if not app_only and not server:
            raise ConfigRefused(FAILED, "no server name (and not bAppOnly)")
        where = _division(division)
        self._limit(app, server, ip, "")
        try:
            return await self.configs.all_files(
                app, server, app_only=app_only, host=host, division=where
            )
        except _DB_ERRORS as e:
            raise _db_failed(f"ListAllConfigByInfo {app}.{server}", e) from None

    # ------------------------------------------------------------------ loads

    async def load(
        self,
        app: str,
        server: str,
        filename: str,
        *,
        host: str,
        division: str = "",
        app_only: bool = False,
        limit_ip: str | None = None,
    ) -> str:
        """A file as instance ``app.server`` on ``host`` in ``division`` gets it (the
        application file when ``app_only`` or no server). ``limit_ip``: rate-limit the call
        as coming from that address. :class:`ConfigRefused` when there is no such file."""
        _checked(app, server, filename, host)
        where = _division(division)
        if limit_ip is not None:
            self._limit(app, server, limit_ip, filename)
        try:
            if app_only or not server:
                text = await self.configs.app_file(app, filename, where)
                owner = app
            else:
                owner = f"{app}.{server}"
                text = await self.configs.merged(owner, filename, host, where)
        except _DB_ERRORS as e:
            raise _db_failed(f"load {app}.{server} {filename}", e) from None
        if not text:
            raise ConfigRefused(
                FAILED,
                f"no config file {filename} for {owner}"
                + (f" on {host}" if host else "")
                + (f" in set {where}" if where else "")
                + " (or all its parts are empty)",
                ExtCode.CONFIG_NOT_FOUND,
            )
        return text

    async def check(self, app: str, server: str, filename: str, *, host: str, division: str) -> str:
        """``checkConfig``: the server-level load, parsed as TC_Config; returns the text.
        :class:`ConfigRefused` with the parse error when it is not TC_Config."""
        if not server:
            raise ConfigRefused(FAILED, "no server name")
        text = await self.load(app, server, filename, host=host, division=division)
        try:
            parse(text, source=filename)
        except ConfigError as e:
            raise ConfigRefused(FAILED, f"{filename} is not TC_Config: {e}") from None
        return text


def split_app_server(app_server: str) -> tuple[str, str]:
    """``App.Server`` (upstream's ``appServerName``) as (App, Server); ConfigRefused when it
    is not that."""
    app, dot, server = app_server.partition(".")
    if not dot or not server:
        raise ConfigRefused(FAILED, f"{app_server[:60]!r} is not 'App.Server'")
    return app, server


def _db_failed(what: str, err: BaseException) -> ConfigRefused:
    log.warning("%s: the database failed: %s", what, err)
    return ConfigRefused(FAILED, f"the config database failed: {err}", ExtCode.CONFIG_DB_ERROR)
