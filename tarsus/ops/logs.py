"""A server's log files: list, tail, search (the console's log viewer and ``tarsus log``).

Local files are on the server's nodes, read through the admin registry and the node
(``AdminReg.getLogFileList`` / ``getLogData``, TarsWeb ``logview_list`` / ``logview_data``);
remote ones are on ``tars.tarslog``, read through our ``tarsus.LogExt`` (docs/logs.md). Both
run a command of the node's log language (``tail -n N``, ``grep ... | tail -n N``; never a
shell: :mod:`tarsus.framework.node.logview`), which this module builds from checked fields,
so a search is always literal text or a regular expression quoted as one argument. A regular
expression runs in the node's bounded worker process (a catastrophic one is stopped there,
not left to freeze anything); it is compiled here first, so a malformed one is a clear 400.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from tarsus.codec.constants import LOG_EXT_OBJ
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Invalid, NotFound, Unavailable, UpstreamFailed
from tarsus.ops.framework import calling, proxy
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import TarsusLog
from tarsus.rpc.errors import TarsError
from tarsus.store.schema import t_server_conf

__all__ = [
    "MAX_LINES",
    "LogFiles",
    "LogText",
    "log_command",
    "log_data",
    "log_files",
    "new_lines",
]

#: lines one answer may hold at most (the node cuts answers at 4 MiB anyway)
MAX_LINES = 10_000
MAX_SEARCH = 256
_NAME = re.compile(r"[A-Za-z0-9_.@\-]{1,255}")


@dataclass(frozen=True)
class LogFiles:
    #: node -> its log files of the server (newest day files first, as the node lists them)
    local: dict[str, list[str]] = field(default_factory=dict)
    #: node -> why it could not list them
    errors: dict[str, str] = field(default_factory=dict)
    #: the remote files on tars.tarslog; None when that service cannot be reached
    remote: list[str] | None = None


@dataclass(frozen=True)
class LogText:
    text: str
    #: the node-language command that produced it
    command: str
    #: where: a node, or ``remote``
    source: str

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def log_command(
    lines: int, search: str = "", *, regex: bool = False, ignore_case: bool = False
) -> str:
    """The command for the last ``lines`` lines, of those holding ``search`` if given
    (literal text, or with ``regex`` an extended regular expression), with line numbers."""
    if not 1 <= lines <= 100_000:
        raise Invalid(f"lines must be 1 to 100000, not {lines}")
    if not search:
        return f"tail -n {lines}"
    flags = "-n " + ("-E " if regex else "-F ") + ("-i " if ignore_case else "")
    return f"grep {flags}-e {shlex.quote(search)} | tail -n {lines}"


def new_lines(before: list[str], after: list[str]) -> list[str]:
    """What ``after`` (a later tail) adds to ``before``: the lines after their longest
    overlap (``tarsus log tail -f``)."""
    for k in range(min(len(before), len(after)), 0, -1):
        if before[-k:] == after[:k]:
            return after[k:]
    return after


def check_search(search: str, *, regex: bool) -> str:
    if len(search) > MAX_SEARCH:
        raise Invalid(f"the search is {len(search)} characters; at most {MAX_SEARCH}")
    if any(ord(c) < 32 for c in search):
        raise Invalid("the search holds control characters")
    if regex and search:
        try:
            re.compile(search)
        except re.error as e:
            raise Invalid(f"the search is not a regular expression: {e}") from None
    return search


def check_file(name: str, *, remote: bool) -> str:
    """A file name as listed: ``App.Server_20260105.log`` (remote: ``Server/file`` or
    ``set/Server/file``); never a path out of the log directory."""
    parts = name.split("/")
    if not name or len(parts) > (3 if remote else 1):
        raise Invalid(f"file {name[:80]!r}: give a name the file list shows")
    for part in parts:
        if part in (".", "..") or not _NAME.fullmatch(part):
            raise Invalid(f"file {name[:80]!r}: give a name the file list shows")
    return name


async def _nodes(platform: Platform, app: str, server: str) -> list[str]:
    c = t_server_conf.c
    q = (
        select(c.node_name)
        .where(c.application == app, c.server_name == server)
        .distinct()
        .order_by(c.node_name)
    )
    async with platform.store.connect() as conn:
        return [r.node_name for r in await conn.execute(q)]


def _remote(platform: Platform) -> TarsusLog.LogExtProxy:
    return proxy(platform, TarsusLog.LogExtProxy, LOG_EXT_OBJ)


async def log_files(platform: Platform, actor: Actor, app: str, server: str) -> LogFiles:
    """The server's log files on each of its nodes, and on the remote log service."""
    actor.require(Perm.VIEW, app, server)
    nodes = await _nodes(platform, app, server)
    files = LogFiles()
    if platform.admin is not None:
        admin = platform.admin

        async def one(node: str) -> None:
            try:
                ret, names = await admin.getLogFileList(app, server, node)
            except TarsError as e:
                files.errors[node] = f"the admin registry cannot be reached: {e}"
                return
            if ret != 0:
                files.errors[node] = f"the node refused ({ret})"
            else:
                files.local[node] = list(names)

        await asyncio.gather(*(one(n) for n in nodes))
    try:
        ret, remote = await _remote(platform).listLogFiles(app, server)
        files = LogFiles(
            dict(sorted(files.local.items())), files.errors, list(remote) if ret == 0 else []
        )
    except (TarsError, Unavailable):  # no remote log service: the local files still
        files = LogFiles(dict(sorted(files.local.items())), files.errors, None)
    return files


async def log_data(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    file: str,
    *,
    node: str = "",
    remote: bool = False,
    lines: int = 200,
    search: str = "",
    regex: bool = False,
    ignore_case: bool = False,
) -> LogText:
    """The last ``lines`` lines of ``file`` (of those matching ``search``), on ``node`` (the
    only node when the server has one) or on the remote log service."""
    actor.require(Perm.VIEW, app, server)
    check_file(file, remote=remote)
    if not 1 <= lines <= MAX_LINES:
        raise Invalid(f"lines must be 1 to {MAX_LINES}, not {lines}")
    cmd = log_command(
        lines, check_search(search, regex=regex), regex=regex, ignore_case=ignore_case
    )
    if remote:
        async with calling("the remote log service (tars.tarslog)"):
            ret, text = await _remote(platform).getLogData(app, server, file, cmd)
        if ret != 0:
            raise UpstreamFailed(f"reading {file} on tars.tarslog: {text or ret}")
        return LogText(text, cmd, "remote")
    nodes = await _nodes(platform, app, server)
    if not nodes:
        raise NotFound(f"{app}.{server} is deployed on no node")
    if not node:
        if len(nodes) != 1:
            raise Invalid(f"{app}.{server} runs on {len(nodes)} nodes: name one ({_few(nodes)})")
        node = nodes[0]
    elif node not in nodes:
        raise NotFound(f"{app}.{server} is not deployed on {node[:80]!r}")
    if platform.admin is None:
        raise UpstreamFailed("the admin registry is not at hand")
    async with calling("the admin registry"):
        ret, text = await platform.admin.getLogData(app, server, node, file, cmd)
    if ret != 0:
        raise UpstreamFailed(f"reading {file} on {node}: {text or f'code {ret}'}")
    return LogText(text, cmd, node)


def _few(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
