"""``tarsus notify``: a server's recent alarms and events, and sending one.

    tarsus notify list Test.HelloServer [--node 10.0.0.7] [--page 1] [--json]
    tarsus notify send Test.HelloServer "[alarm] the disk is full"
    tarsus notify send Test.HelloServer "cannot reach the bank" --level error

Both talk to ``tars.tarsnotify.NotifyObj`` (``--notify``, default ``$TARSUS_NOTIFY``, else
127.0.0.1:18593): ``list`` pages ``getNotifyInfo`` (newest first, what ``t_server_notifys``
holds), ``send`` calls ``reportServer`` (level from the markers) or ``notifyServer`` (with
``--level``). docs/notify.md.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated

import typer

from tarsus.codec.constants import NOTIFY_OBJ, NOTIFY_PORT
from tarsus.protocol.gen.NotifyF import NOTIFYLEVEL, NotifyInfo, NotifyKey, NotifyProxy
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError

app = typer.Typer(
    help="A server's recent alarms and events (tars.tarsnotify): list, send.", no_args_is_help=True
)

NOTIFY_ENV = "TARSUS_NOTIFY"
DEFAULT_NOTIFY = f"{NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {NOTIFY_PORT} -t 60000"
LEVELS = {
    "normal": NOTIFYLEVEL.NOTIFYNORMAL,
    "warn": NOTIFYLEVEL.NOTIFYWARN,
    "error": NOTIFYLEVEL.NOTIFYERROR,
}
LEVEL_NAMES = {int(v): k for k, v in LEVELS.items()}

NotifyOption = Annotated[
    str | None,
    typer.Option("--notify", metavar="PROXY", help=f"NotifyObj (default ${NOTIFY_ENV})"),
]


def _address(notify: str | None) -> str:
    where = (notify or os.environ.get(NOTIFY_ENV) or DEFAULT_NOTIFY).strip()
    if where.split(" ", 1)[0] in ("tcp", "udp", "ssl"):
        where = f"{NOTIFY_OBJ}@{where}"
    return where


def _server(server: str) -> str:
    app_name, dot, name = server.partition(".")
    if not dot or not app_name or not name or "/" in server:
        raise typer.BadParameter(f"{server!r} is not APP.SERVER")
    return server


async def _page(where: str, server: str, node: str, page: int) -> tuple[int, NotifyInfo]:
    async with Communicator(cache_dir=None) as comm:
        proxy = comm.string_to_proxy(NotifyProxy, where).with_options(timeout_ms=5000)
        return await proxy.getNotifyInfo(NotifyKey(name=server, ip=node, page=page))


async def _send(where: str, server: str, message: str, level: str | None) -> None:
    async with Communicator(cache_dir=None) as comm:
        proxy = comm.string_to_proxy(NotifyProxy, where).with_options(timeout_ms=5000)
        if level is None:
            await proxy.reportServer(server, "", message)
        else:
            await proxy.notifyServer(server, LEVELS[level], message)


@app.command("list")
def list_(
    server: Annotated[str, typer.Argument(metavar="APP.SERVER")],
    node: Annotated[str, typer.Option("--node", help="only this node's instance")] = "",
    page: Annotated[int, typer.Option("--page", min=0, help="0 = the newest")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    notify: NotifyOption = None,
) -> None:
    """The server's recent alarms and events, newest first."""
    where = _address(notify)
    try:
        ret, info = asyncio.run(_page(where, _server(server), node, page))
    except TarsError as e:
        typer.echo(f"cannot reach {where}: {e}", err=True)
        raise typer.Exit(1) from None
    if ret != 0:
        typer.echo(f"refused ({ret})", err=True)
        raise typer.Exit(1)
    items = [
        {
            "time": i.sTimeStamp,
            "instance": i.sServerId,
            "level": LEVEL_NAMES.get(i.iLevel, "?"),
            "message": i.sMessage,
        }
        for i in info.notifyItems
    ]
    if as_json:
        typer.echo(json.dumps({"events": items, "nextpage": info.nextpage}))
        return
    for item in items:
        typer.echo(f"{item['time']}  {item['level']:<6}  {item['instance']}  {item['message']}")
    if info.nextpage >= 0:
        typer.echo(f"(older: --page {info.nextpage})")


@app.command("send")
def send(
    server: Annotated[str, typer.Argument(metavar="APP.SERVER")],
    message: Annotated[str, typer.Argument()],
    level: Annotated[
        str | None,
        typer.Option("--level", help="normal, warn or error (default: from the [markers])"),
    ] = None,
    notify: NotifyOption = None,
) -> None:
    """Record an event of the server (as its library would)."""
    if level is not None and level not in LEVELS:
        raise typer.BadParameter(f"--level {level!r}: normal, warn or error")
    where = _address(notify)
    try:
        asyncio.run(_send(where, _server(server), message, level))
    except TarsError as e:
        typer.echo(f"cannot reach {where}: {e}", err=True)
        raise typer.Exit(1) from None
