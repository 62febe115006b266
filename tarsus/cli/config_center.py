"""The configuration center as ``tarsus config`` uses it: ``tars.tarsconfig.ConfigExtObj``.

Operators' writes and reads of ``t_config_files`` go through our extension
``tarsus.ConfigExt`` (``TarsusConfig.tars``), served by the config center on an object of its
own beside upstream's ``ConfigObj`` (so that a secured install guards it with ``-e 1``); the
CLI never reads the database. Files are named as the console names them: the
application or server, the file name, the level (1 application or set, 2 server, 3 node) and
its set or node; :class:`FileSpec` is that name, resolved to the row's id with
``listConfigFiles``.

Where it is: ``--config-obj PROXY``, else ``$TARSUS_CONFIG_OBJ``, else on the admin registry's
host at its default port 18194 (``tars.tarsconfig.ConfigExtObj@tcp -h <admin host> -p 18194``),
or resolved through the locator (with its ``-e 1``) when the admin registry is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

import typer

from tarsus.cli.admin_client import (
    AdminAddress,
    AdminClient,
    CommandFailed,
    UsageError,
    object_beside_admin,
)
from tarsus.codec.constants import CONFIG_EXT_OBJ, CONFIG_EXT_PORT
from tarsus.protocol.gen import TarsusConfig

__all__ = [
    "CONFIG_ENV",
    "ConfigCenter",
    "ConfigObjOption",
    "ConfigUnavailable",
    "FileSpec",
    "Level",
    "check_file_name",
    "check_set",
    "config_address",
]

CONFIG_ENV = "TARSUS_CONFIG_OBJ"

ConfigObjOption = Annotated[
    str | None,
    typer.Option(
        "--config-obj",
        metavar="PROXY",
        help=(
            f"the config center, '{CONFIG_EXT_OBJ}@tcp -h HOST -p {CONFIG_EXT_PORT}' "
            f"(default ${CONFIG_ENV}, else the admin registry's host, port {CONFIG_EXT_PORT})"
        ),
        show_default=False,
    ),
]

#: what the console accepts in a file name (letters, digits, '.', '_', '-'), and no more than
#: t_config_files.filename holds
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SET_PART = re.compile(r"[A-Za-z0-9_-]{1,16}|\*")
_NODE = re.compile(r"[A-Za-z0-9._:-]{1,50}")


class Level(IntEnum):
    """``t_config_files.level``: a set file is level 1 with its set columns filled in."""

    APP = 1
    SERVER = 2
    NODE = 3


LEVEL_WORDS = {Level.APP: "app", Level.SERVER: "server", Level.NODE: "node"}


class ConfigUnavailable(CommandFailed):
    """The config center could not be reached (or is not Tarsus's): nothing changed."""


def config_address(given: str | None, admin: AdminAddress) -> str:
    """The config center's proxy string: ``--config-obj``, ``$TARSUS_CONFIG_OBJ``, else beside
    the admin registry (its host, port 18194), else through the locator."""
    return object_beside_admin(
        given,
        admin,
        obj=CONFIG_EXT_OBJ,
        port=CONFIG_EXT_PORT,
        option="--config-obj",
        env=CONFIG_ENV,
    )


def check_file_name(name: str) -> str:
    if not _FILE_NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(
            f"{name!r} is not a config file name: letters, digits, '.', '_' and '-' only "
            "(at most 128), as the console accepts"
        )
    return name


def check_set(division: str) -> str:
    """``NAME.AREA.GROUP`` as a set division is written (upstream's ``setdivision``)."""
    parts = division.split(".")
    if len(parts) != 3 or not all(_SET_PART.fullmatch(p) for p in parts):
        raise UsageError(f"--set {division!r}: write the set as NAME.AREA.GROUP (e.g. sz.a.1)")
    return division


def check_node(node: str) -> str:
    if not _NODE.fullmatch(node):
        raise UsageError(f"--node {node!r} is not a node name")
    return node


@dataclass(frozen=True)
class FileSpec:
    """A config file by name: ``APP`` or ``APP.SERVER``, its file name, its set or node."""

    app: str
    server: str
    name: str
    set_division: str = ""
    node: str = ""

    @classmethod
    def parse(cls, where: str, name: str, *, set_division: str = "", node: str = "") -> FileSpec:
        app, dot, server = where.partition(".")
        bad = not app or (dot and not server) or "." in server
        if bad or not all(_SET_PART.fullmatch(p) and p != "*" for p in (app, server or "x")):
            raise UsageError(
                f"give the owner as APP (an application file) or APP.SERVER, not {where!r}"
            )
        if node and not server:
            raise UsageError("--node names a node file of a server: give APP.SERVER")
        if node and set_division:
            raise UsageError("a node file has the set of its instance: give --node or --set")
        return cls(
            app,
            server,
            check_file_name(name),
            check_set(set_division) if set_division else "",
            check_node(node) if node else "",
        )

    @property
    def level(self) -> Level:
        if not self.server:
            return Level.APP
        return Level.NODE if self.node else Level.SERVER

    @property
    def server_name(self) -> str:
        """``t_config_files.server_name``: ``App`` or ``App.Server``."""
        return f"{self.app}.{self.server}" if self.server else self.app

    def describe(self) -> str:
        where = f"{self.name} of {self.server_name}"
        if self.node:
            return f"{where} on node {self.node}"
        if self.set_division:
            return f"{where} (set {self.set_division})"
        return where

    def as_filter(self) -> TarsusConfig.ConfigFilter:
        return TarsusConfig.ConfigFilter(
            application=self.app,
            serverName=self.server,
            level=int(self.level),
            fileName=self.name,
            setDivision=self.set_division,
            host=self.node,
        )


class ConfigCenter:
    """Blocking calls to ``tarsus.ConfigExt`` on the command's communicator."""

    def __init__(self, client: AdminClient, proxy: str) -> None:
        self.proxy_string = proxy
        self._ext = client.communicator().string_to_proxy(TarsusConfig.ConfigExtProxy, proxy)

    def call(self, method: str, *args: Any, doing: str) -> Any:
        """``ConfigExt.<method>(*args)``'s outputs after its code (``ret`` first, ``result``
        last); ``CommandFailed`` saying ``doing`` failed, and why, unless ``ret`` is 0."""
        from tarsus.rpc.errors import TarsError

        try:
            ret, *outs = getattr(self._ext, method)(*args)
        except TarsError as e:
            raise self._failure(method, e) from None
        result = str(outs[-1])
        if ret != 0:
            raise refused(doing, int(ret), result)
        return outs[0] if len(outs) == 2 else None

    def file_id(self, spec: FileSpec) -> int:
        """The id of the one file ``spec`` names."""
        files = self.call("listConfigFiles", spec.as_filter(), doing=f"finding {spec.describe()}")
        found = [f for f in files if _matches(f, spec)]
        if not found:
            raise CommandFailed(
                f"no config file {spec.describe()} (`tarsus config list {spec.server_name}`)",
                int(TarsusConfig.ConfigExtCode.CONFIG_NOT_FOUND),
                "CONFIG_NOT_FOUND",
            )
        return int(found[0].id)

    def _failure(self, method: str, e: Any) -> CommandFailed:
        from tarsus.rpc.errors import ConnectError, InvokeTimeout, NoEndpointError, Ret

        where = self.proxy_string
        if isinstance(e, (ConnectError, NoEndpointError)):
            return ConfigUnavailable(
                f"cannot reach the config center {where}: {e.message or 'connect failed'} "
                f"(is it running? --config-obj or ${CONFIG_ENV} says where)",
                e.code,
            )
        if e.code == Ret.SERVER_NO_FUNC:
            return ConfigUnavailable(
                f"the config center {where} does not implement {method} (a Tarsus extension, "
                f"ConfigExt, served on {CONFIG_EXT_OBJ}: upstream's tarsconfig lacks it)",
                e.code,
            )
        if e.code == Ret.SERVER_NO_SERVANT:
            return ConfigUnavailable(f"{where} is not a config center ({e.message})", e.code)
        if isinstance(e, InvokeTimeout):
            return CommandFailed(
                f"the config center {where} did not answer {method} in time", e.code
            )
        return CommandFailed(f"the config center {where} failed on {method}: {e.message}", e.code)


def _matches(f: TarsusConfig.ConfigFile, spec: FileSpec) -> bool:
    """The filter's "" matches every value; a name means exactly that file. A node file is
    in its instance's set, so the node alone names it."""
    return (
        f.serverName == spec.server_name
        and f.fileName == spec.name
        and int(f.level) == int(spec.level)
        and (bool(spec.node) or f.setDivision == spec.set_division)
        and (f.host or "") == spec.node
    )


def refused(doing: str, code: int, result: str) -> CommandFailed:
    """A non-zero ``ConfigExtCode`` as one clear failure, worded as the console words it
    (:func:`tarsus.ops.configs.refusal`)."""
    from tarsus.ops.configs import explain_code, refusal

    return CommandFailed(refusal(doing, code, result).message, code, explain_code(code)[0], result)
