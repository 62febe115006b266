"""``tarsus node``: the nodes the admin registry knows, and whether they answer.

    tarsus node list --ping
    tarsus node ping 10.0.0.7

``list`` shows the nodes registered as active (``getAllNodeNames``) with the last heartbeat
each sent on its push connection to this admin registry (``getNodeList``); a node without one
is registered but not connected here. ``--ping`` pushes a ``ping`` to each (``pingNode``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tarsus.cli.admin_client import AdminClient, CommandFailed, Output, admin_command
from tarsus.rpc.logs import parse_size

app = typer.Typer(
    name="node",
    help=(
        "Run this machine's node agent (tarsus node --locator ...), or list and ping the "
        "nodes the admin registry knows."
    ),
    no_args_is_help=True,
    invoke_without_command=True,
)


@app.callback()
def run(
    ctx: typer.Context,
    locator: Annotated[
        str | None,
        typer.Option(
            "--locator",
            help="Run the node agent against this registry "
            "(tars.tarsregistry.QueryObj@tcp -h HOST -p 17890).",
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Node data: server dirs, cache, logs.")
    ] = Path(".tarsus/node"),
    node_name: Annotated[
        str, typer.Option("--node-name", help="Default: our address as the registry sees it.")
    ] = "",
    host: Annotated[
        str, typer.Option("--host", help="Address ServerObj listens on (default: node name).")
    ] = "",
    port: Annotated[int, typer.Option("--port", help="ServerObj port.")] = 19386,
    stop_services: Annotated[
        bool, typer.Option("--stop-services", help="Stop the services when the node exits.")
    ] = False,
    disk_reserve: Annotated[
        str | None,
        typer.Option(
            "--disk-reserve",
            metavar="SIZE",
            help="Bytes that must stay free on the node's disk after a package is downloaded "
            "and unpacked (512K, 256M, 2G; default 256M): a bigger package is refused.",
        ),
    ] = None,
    container_engine: Annotated[
        str,
        typer.Option(
            "--container-engine",
            metavar="URL",
            help="Docker Engine API that runs the servers of run type container "
            "(unix:///run/podman/podman.sock; default DOCKER_HOST, else "
            "unix:///var/run/docker.sock).",
        ),
    ] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        if locator is not None:
            raise typer.BadParameter("--locator runs the node agent; give it without a command")
        return
    if locator is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    supervision: dict[str, int | str] = {}
    if container_engine:
        supervision["container_engine"] = container_engine
    if disk_reserve is not None:
        try:
            supervision["disk_reserve"] = parse_size(disk_reserve)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--disk-reserve") from None
    from tarsus.cli.node_agent import run_agent

    raise typer.Exit(
        run_agent(
            locator,
            data_dir=data_dir,
            node_name=node_name,
            host=host,
            port=port,
            stop_services=stop_services,
            supervision=supervision,
            verbose=verbose,
        )
    )


@admin_command(app, name="list")
def list_(
    client: AdminClient,
    out: Output,
    ping: Annotated[bool, typer.Option("--ping", help="also ping every node")] = False,
) -> None:
    """The active nodes, their last heartbeat here, and (--ping) whether they answer."""
    names, result = client.call("getAllNodeNames")
    if not names and result.strip():
        out.note(f"note: the admin registry says: {result.strip()}")
    names = sorted(names)
    heartbeats: dict[str, str] = {}
    if names:
        ret, heartbeats = client.call("getNodeList", names)
        client.check(ret, "", "getting the nodes' heartbeats")
    nodes: list[dict[str, Any]] = []
    for name in names:
        beat = heartbeats.get(name, "")
        node: dict[str, Any] = {"name": name, "heartbeat": beat, "connected": bool(beat)}
        if ping:
            ok, answer = client.call("pingNode", name)
            node["ping"] = {"ok": bool(ok), "result": answer}
        nodes.append(node)

    def human(console: Console) -> None:
        if not nodes:
            console.print("no active nodes")
            return
        table = Table("node", "last heartbeat", box=None, pad_edge=False)
        if ping:
            table.add_column("ping")
        for n in nodes:
            cells = [n["name"], n["heartbeat"] or "- (not connected to this admin registry)"]
            if ping:
                answer = n["ping"]["result"].strip()
                word = "ok" if n["ping"]["ok"] else "FAILED"
                cells.append(f"{word}: {answer}" if answer else word)
            table.add_row(*cells)
        console.print(table)

    out.emit({"nodes": nodes}, human)


@admin_command(app, no_args_is_help=True)
def ping(
    client: AdminClient,
    out: Output,
    node: Annotated[str, typer.Argument(metavar="NODE", help="the node name", show_default=False)],
) -> None:
    """Ask NODE to answer through its push connection; exit status 1 if it does not."""
    ok, result = client.call("pingNode", node)
    if not ok:
        reason = result.strip() or "no reason given"
        raise CommandFailed(f"node {node} did not answer the ping: {reason}", result=result)
    doc = {"node": node, "ok": True, "result": result}
    out.emit(doc, lambda console: console.print(f"{node}: {result or 'ok'}", markup=False))
