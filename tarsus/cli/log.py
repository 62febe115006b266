"""``tarsus log``: a server's log files, local (on its nodes, through the admin registry and
the node: ``getLogFileList``/``getLogData``) and remote (on tars.tarslog, through our
``tarsus.LogExt`` on ``tars.tarslog.LogExtObj``): list, tail (``-f`` to follow) and search.
Never a shell: the commands are the node's ``tail``/``grep`` language (docs/logs.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tarsus.cli.admin_client import (
    AdminClient,
    CommandFailed,
    Output,
    UsageError,
    admin_command,
    split_server_id,
)
from tarsus.cli.publish import deployed_nodes
from tarsus.codec.constants import LOG_EXT_OBJ
from tarsus.ops.errors import Invalid
from tarsus.ops.logs import log_command, new_lines

app = typer.Typer(
    name="log",
    help="A server's log files, local (per node) and remote (tars.tarslog): list, tail, search.",
    no_args_is_help=True,
)

ServerArgument = Annotated[
    str, typer.Argument(metavar="APP.SERVER", help="e.g. Test.HelloServer", show_default=False)
]
FileArgument = Annotated[
    str,
    typer.Argument(metavar="FILE", help="a name `tarsus log list` printed", show_default=False),
]
NodeOption = Annotated[
    str | None, typer.Option("--node", help="the node of a local file (default: the only one)")
]
RemoteOption = Annotated[
    bool, typer.Option("--remote", help="FILE is a remote log (on tars.tarslog)")
]
LogObjOption = Annotated[
    str, typer.Option("--log-obj", help="the remote log service's LogExtObj (name or proxy string)")
]


def _remote(client: AdminClient, log_obj: str) -> object:
    from tarsus.protocol.gen import TarsusLog

    return client.communicator().string_to_proxy(TarsusLog.LogExtProxy, log_obj)


def _node(client: AdminClient, app_: str, server: str, node: str | None) -> str:
    if node:
        return node
    nodes = deployed_nodes(client, app_, server)
    if len(nodes) != 1:
        raise UsageError(f"{app_}.{server} runs on {len(nodes)} nodes ({', '.join(nodes)}): "
                         "give --node")  # fmt: skip
    return nodes[0]


def _data(
    client: AdminClient,
    server_id: str,
    file: str,
    cmd: str,
    node: str | None,
    remote: bool,
    log_obj: str,
) -> str:
    app_, server = split_server_id(server_id)
    if remote:
        try:
            ret, text = _remote(client, log_obj).getLogData(  # type: ignore[attr-defined]
                app_, server, file, cmd
            )
        except Exception as e:
            raise CommandFailed(f"cannot read {file} from {log_obj}: {e}") from None
        if ret != 0:
            raise CommandFailed(f"reading {file}: {text}")
        return str(text)
    where = _node(client, app_, server, node)
    ret, text = client.call("getLogData", app_, server, where, file, cmd)
    if ret != 0:
        raise CommandFailed(f"reading {file} on {where}: {text or f'code {ret}'}")
    return str(text)


@admin_command(app, name="list", no_args_is_help=True)
def list_(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    log_obj: LogObjOption = LOG_EXT_OBJ,
) -> None:
    """The server's local log files on each node it is deployed on, and its remote ones."""
    app_, server = split_server_id(server_id)
    local: dict[str, list[str]] = {}
    for node in deployed_nodes(client, app_, server):
        ret, files = client.call("getLogFileList", app_, server, node)
        local[node] = list(files) if ret == 0 else []
    try:
        ret, remote = _remote(client, log_obj).listLogFiles(app_, server)  # type: ignore[attr-defined]
        remote_files: list[str] | None = list(remote) if ret == 0 else []
    except Exception:
        remote_files = None  # no remote log service reachable

    def human(console: Console) -> None:
        table = Table("where", "file", box=None, pad_edge=False)
        for node, files in local.items():
            for f in files:
                table.add_row(f"local {node}", f)
        for f in remote_files or []:
            table.add_row("remote", f)
        console.print(table)
        if remote_files is None:
            console.print(f"(remote logs: {log_obj} not reachable)")

    out.emit({"local": local, "remote": remote_files}, human)


@admin_command(app, no_args_is_help=True)
def tail(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    file: FileArgument,
    lines: Annotated[int, typer.Option("-n", "--lines", help="lines from the end")] = 50,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="print new lines as they come")
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls with -f")] = 1.0,
    node: NodeOption = None,
    remote: RemoteOption = False,
    log_obj: LogObjOption = LOG_EXT_OBJ,
) -> None:
    """The last lines of FILE; with -f, then every new line until Ctrl-C."""
    try:
        cmd = log_command(lines)
    except Invalid as e:
        raise UsageError(f"-n: {e}") from None
    text = _data(client, server_id, file, cmd, node, remote, log_obj)
    out.emit({"text": text}, lambda c: typer.echo(text, nl=False))
    if not follow:
        return
    seen = text.splitlines(keepends=True)
    window = max(lines, 1000)
    try:
        while True:
            time.sleep(interval)
            now = _data(client, server_id, file, f"tail -n {window}", node, remote, log_obj)
            fresh = now.splitlines(keepends=True)
            typer.echo("".join(new_lines(seen, fresh)), nl=False)
            seen = fresh
    except KeyboardInterrupt:
        return


@admin_command(app, no_args_is_help=True)
def search(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    file: FileArgument,
    pattern: Annotated[str, typer.Argument(help="a regular expression (grep -E)")],
    ignore_case: Annotated[bool, typer.Option("-i", help="ignore case")] = False,
    fixed: Annotated[bool, typer.Option("-F", help="PATTERN is plain text")] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", help="the last matching lines")] = 100_000,
    node: NodeOption = None,
    remote: RemoteOption = False,
    log_obj: LogObjOption = LOG_EXT_OBJ,
) -> None:
    """The lines of FILE matching PATTERN (with their numbers; the last -n of them)."""
    try:
        cmd = log_command(lines, pattern, regex=not fixed, ignore_case=ignore_case)
    except Invalid as e:
        raise UsageError(str(e)) from None
    text = _data(client, server_id, file, cmd, node, remote, log_obj)
    out.emit({"text": text}, lambda c: typer.echo(text, nl=False))
