"""``tarsus server``: deploy, publish, start, stop and inspect servers through the admin registry.

    tarsus server deploy Test.HelloServer --node 10.0.0.7 --package ./hello --start
    tarsus server status Test.HelloServer --node 10.0.0.7
    tarsus server list --app Test

Deploy registers the server and one adapter per servant in one transaction of the admin
registry (``deployServer``, our extension ``tarsus.AdminExt``: all or nothing, the reason of a
refusal in its answer), publishes a package with ``batchPatch`` and follows
``getPatchPercent`` to the end (``tarsus.patching`` judges it, as ``tarsus up`` does), then
starts the server if asked. Everything the command line gets wrong is found before the first
call, so a refused deploy changes nothing.

A package is a directory or a ``.tgz``; a ``tarsus.toml`` at its top says what it is (read
by ``tarsus.package``, as the node reads it, so that deploy and install agree on it):

    [package]
    name = "Test.HelloServer"          # must be the APP.SERVER being deployed
    entry = "server.py"                # what the node runs (deploy does not need it)

    [servants]
    HelloObj = { port = 18601 }        # default ports; --servant NAME=PORT overrides
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tarsus.cli.admin_client import (
    AdminClient,
    CommandFailed,
    NodeOption,
    Output,
    ServerArgument,
    UsageError,
    admin_command,
    current_user,
    refused,
    split_server_id,
)
from tarsus.cli.patch_store import (
    PatchOption,
    PatchStore,
    PatchUnavailable,
    patch_address,
    store_package,
)
from tarsus.cli.publish import select_nodes
from tarsus.package import MANIFEST, SERVANT_NAME, Package, PackageError, open_package
from tarsus.patching import PatchProgress, patch_progress
from tarsus.protocol.gen import AdminReg, NodeDescriptor
from tarsus.rpc.locator import default_cache_dir

app = typer.Typer(
    name="server",
    help="Deploy, publish, start, stop and inspect servers (through the admin registry).",
    no_args_is_help=True,
)

DEFAULT_TEMPLATE = "tars.tarspython.default"
DEFAULT_SERVER_TYPE = "tars_python"
#: Upstream's ``patch_wait_timeout`` (s) and its 1 s polling of ``getPatchPercent``.
DEFAULT_PATCH_TIMEOUT_S = 300
PATCH_POLL_INTERVAL_S = 1.0


# --------------------------------------------------------------------------- servants


@dataclass(frozen=True)
class ServantPlan:
    """One adapter deploy writes: ``App.Server.NameAdapter`` serving ``App.Server.Name``."""

    name: str
    port: int
    app: str
    server: str
    node: str

    @property
    def servant(self) -> str:
        return f"{self.app}.{self.server}.{self.name}"

    @property
    def adapter(self) -> str:
        return f"{self.servant}Adapter"

    @property
    def endpoint(self) -> str:
        from tarsus.ops.deploy import endpoint  # the store's schema: only when deploying

        return endpoint(self.node, self.port)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "servant": self.servant,
            "adapter": self.adapter,
            "endpoint": self.endpoint,
            "port": self.port,
        }


def parse_servants(items: list[str], defaults: dict[str, int]) -> dict[str, int]:
    """``NAME=PORT`` options over the package's defaults."""
    servants = dict(defaults)
    given: set[str] = set()
    for item in items:
        name, eq, port_text = item.partition("=")
        name = name.strip()
        if not eq or not SERVANT_NAME.match(name):
            raise UsageError(f"--servant takes NAME=PORT (e.g. HelloObj=18601), not {item!r}")
        try:
            port = int(port_text)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise UsageError(f"--servant {item!r}: the port must be 1..65535")
        if name in given:
            raise UsageError(f"--servant {name} is given twice")
        given.add(name)
        servants[name] = port
    return servants


# --------------------------------------------------------------------------- publishing


def publish_package(
    client: AdminClient,
    out: Output,
    app_name: str,
    server: str,
    node: str,
    package: Package,
    *,
    user: str,
    server_type: str,
    timeout_s: int,
) -> dict[str, Any]:
    """``batchPatch`` the package to the node, then follow ``getPatchPercent`` to the end."""
    doing = f"publishing {package.archive.name} to {app_name}.{server} on node {node}"
    request = NodeDescriptor.PatchRequest(
        appname=app_name,
        servername=server,
        nodename=node,
        groupname="",
        binname="",
        version="",
        user=user,
        servertype=server_type,
        patchobj="",
        md5=package.md5,
        ostype="",
        filepath=str(package.archive),
    )
    result = client.call_checked("batchPatch", request, doing=doing)
    info = _follow_patch(client, out, app_name, server, node, doing, timeout_s)
    return {
        "archive": str(package.archive),
        "md5": package.md5,
        "packed_from": str(package.packed_from) if package.packed_from else None,
        "manifest": package.manifest.source if package.manifest else None,
        "result": result,
        "version": info.sVersion,
        "percent": info.iPercent,
        "node_result": info.sResult,
    }


def _follow_patch(
    client: AdminClient,
    out: Output,
    app_name: str,
    server: str,
    node: str,
    doing: str,
    timeout_s: int,
) -> Any:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=out.err_console,
        disable=out.as_json,
    )
    deadline = time.monotonic() + timeout_s
    with progress:
        task = progress.add_task(f"patching {app_name}.{server} on {node}", total=100)
        while True:
            ret, info = client.call("getPatchPercent", app_name, server, node)
            judged = patch_progress(ret, info)
            progress.update(task, completed=judged.percent)
            if judged.succeeded:
                return info
            if judged.failed:
                raise _patch_failed(doing, ret, judged)
            if time.monotonic() >= deadline:
                raise CommandFailed(
                    f"{doing}: not finished after {timeout_s} s "
                    f"(at {judged.percent}%{': ' + judged.reason if judged.reason else ''}); "
                    "the node may still finish it, see `tarsus server status`",
                    result=info.sResult,
                    extra={"percent": judged.percent},
                )
            time.sleep(PATCH_POLL_INTERVAL_S)


def _patch_failed(doing: str, ret: int, judged: PatchProgress) -> CommandFailed:
    """The node's reason first; an admin registry's own code (node unreachable...) in words."""
    if ret not in (0, -1):
        return refused(doing, ret, judged.reason, percent=judged.percent)
    reason = judged.reason or "the node gave no reason"
    return CommandFailed(
        f"{doing} failed on the node at {judged.percent}%: {reason}",
        code=ret or None,
        result=judged.reason,
        extra={"percent": judged.percent},
    )


# --------------------------------------------------------------------------- commands

UserOption = Annotated[
    str | None,
    typer.Option("--user", help="who publishes, as recorded with the patch (default: you)"),
]
ServerTypeOption = Annotated[
    str, typer.Option("--server-type", metavar="TYPE", help="how the node runs it")
]
PatchTimeoutOption = Annotated[
    int,
    typer.Option(
        "--patch-timeout", metavar="S", min=1, help="how long to wait for the node to install"
    ),
]
PackageOption = Annotated[
    str | None,
    typer.Option(
        "--package",
        metavar="PATH",
        help="a directory or .tgz (path or file:// URL) to publish; its tarsus.toml is read",
        show_default=False,
    ),
]


@admin_command(app, no_args_is_help=True)
def deploy(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    node: NodeOption,
    servant: Annotated[
        list[str] | None,
        typer.Option(
            "--servant",
            metavar="NAME=PORT",
            help="a servant and its port (repeatable); defaults from the package's tarsus.toml",
            show_default=False,
        ),
    ] = None,
    package: PackageOption = None,
    template: Annotated[
        str, typer.Option("--template", metavar="NAME", help="configuration template")
    ] = DEFAULT_TEMPLATE,
    server_type: ServerTypeOption = DEFAULT_SERVER_TYPE,
    start: Annotated[bool, typer.Option("--start", help="start the server when deployed")] = False,
    container: Annotated[
        str,
        typer.Option(
            "--container",
            metavar="IMAGE",
            help="run it in its own container from IMAGE (an image the node's container "
            "engine has; docs/node.md, 'Servers in containers'), not as a process",
        ),
    ] = "",
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="overwrite an existing deployment on that node (its servants become these)",
        ),
    ] = False,
    user: UserOption = None,
    patch_timeout: PatchTimeoutOption = DEFAULT_PATCH_TIMEOUT_S,
    patch: PatchOption = None,
) -> None:
    """Deploy APP.SERVER on NODE: register it and its servants, publish --package, --start it."""
    app_name, server = split_server_id(server_id)
    pkg = _package_for(server_id, package) if package else None
    manifest = pkg.manifest if pkg else None
    servants = parse_servants(servant or [], manifest.servant_ports() if manifest else {})
    if not servants:
        raise UsageError(
            "no servants to deploy: give --servant NAME=PORT, or a --package whose "
            f"{MANIFEST} lists them under [servants]"
        )
    plans = [ServantPlan(n, p, app_name, server, node) for n, p in servants.items()]
    who = user or current_user()
    where = f"{server_id} on node {node}"

    from tarsus.ops.deploy import server_conf

    conf = server_conf(app_name, server, node, template, server_type)
    adapters = [
        AdminReg.AdapterConf(adapterName=p.adapter, endpoint=p.endpoint, servant=p.servant)
        for p in plans
    ]
    ret, result = client.call_ext("deployServer", conf, adapters, replace, who)
    client.check(ret, result, f"deploying {where}")
    if container or replace:  # a redeploy without --container runs it as a process again
        run_type = "container" if container else ""
        ret, result = client.call_ext(
            "setServerRunType", app_name, server, node, run_type, container, who
        )
        client.check(ret, result, f"setting how {where} runs")

    published = None
    if pkg is not None:
        try:
            published = _deploy_package(
                client, out, app_name, server, node, pkg, patch,
                user=who, server_type=server_type, timeout_s=patch_timeout,
            )  # fmt: skip
        except CommandFailed as e:
            e.message += (
                f"; {server_id} stays deployed on node {node} "
                "(`tarsus server publish` retries the package)"
            )
            raise
    start_result = None
    if start:
        doing = f"starting {where} (deployed, not started)"
        start_result = client.call_checked("startServer", app_name, server, node, doing=doing)

    doc = {
        "server": server_id,
        "application": app_name,
        "server_name": server,
        "node": node,
        "template": template,
        "server_type": server_type,
        "container": container or None,
        "replaced": replace,
        "servants": [p.as_json() for p in plans],
        "package": published,
        "started": start,
        "start_result": start_result,
    }

    def human(console: Console) -> None:
        console.print(f"deployed {where} (template {template}, type {server_type})", markup=False)
        table = Table("servant", "adapter", "endpoint", box=None, pad_edge=False)
        for p in plans:
            table.add_row(p.servant, p.adapter, p.endpoint)
        console.print(table)
        if published is not None:
            _print_published(console, published)
        if start:
            _print_done(console, f"started {where}", start_result or "")

    out.emit(doc, human)


NodesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        metavar="NODE",
        help="a node to publish to (repeatable)",
        show_default=False,
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="every node the server is deployed on")]
SerialOption = Annotated[
    bool, typer.Option("--serial", help="one node after the other (the default); stop at a failure")
]
ParallelOption = Annotated[
    bool, typer.Option("--parallel", help="all nodes at once (the admin registry runs 5 at a time)")
]
BatchOption = Annotated[
    int | None,
    typer.Option("--batch", metavar="K", help="K nodes at a time", show_default=False),
]
LosslessOption = Annotated[
    bool,
    typer.Option(
        "--lossless",
        help="take each batch's traffic off, drain, install, restart, restore (upstream "
        "lossless publish)",
    ),
]
CommentOption = Annotated[
    str, typer.Option("--comment", metavar="TEXT", help="why: kept with the package and task")
]


@admin_command(app, no_args_is_help=True)
def publish(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    node: NodesOption = None,
    all_nodes: AllOption = False,
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            metavar="ID",
            help="a package of the store (`tarsus package list`)",
            show_default=False,
        ),
    ] = None,
    package: PackageOption = None,
    serial: SerialOption = False,
    parallel: ParallelOption = False,
    batch: BatchOption = None,
    canary: Annotated[
        int | None,
        typer.Option(
            "--canary",
            metavar="N",
            help="publish to the first N nodes, wait until they are active and answer, "
            "then the rest",
            show_default=False,
        ),
    ] = None,
    canary_then: Annotated[
        str,
        typer.Option(
            "--canary-then", metavar="continue|stop", help="after a good canary: go on or stop"
        ),
    ] = "continue",
    canary_wait: Annotated[
        int,
        typer.Option(
            "--canary-wait",
            metavar="S",
            min=1,
            help="how long the canary may take to be active and answer",
        ),
    ] = 60,
    lossless: LosslessOption = False,
    comment: CommentOption = "",
    restart: Annotated[
        bool, typer.Option("--restart/--no-restart", help="restart the server once installed")
    ] = True,
    server_type: ServerTypeOption = DEFAULT_SERVER_TYPE,
    user: UserOption = None,
    patch_timeout: PatchTimeoutOption = DEFAULT_PATCH_TIMEOUT_S,
    patch: PatchOption = None,
) -> None:
    """Publish --version ID (or --package PATH, uploaded first) to APP.SERVER on nodes, live.

    One admin registry task across --node N ... (or --all): serially by default, --parallel,
    or --batch K; --canary N goes first; --lossless drains each batch's traffic first."""
    from tarsus.cli.publish import (
        Canary,
        PatchSource,
        go_on_command,
        rollout_from_options,
        run_publish,
    )

    app_name, server = split_server_id(server_id)
    if (version is None) == (package is None):
        raise UsageError("give the package: --version ID (from the store) or --package PATH")
    if canary_then not in ("continue", "stop"):
        raise UsageError(f"--canary-then takes continue or stop, not {canary_then!r}")
    if version is not None and version < 1:
        raise UsageError(f"--version takes a package id (1 or more), not {version}")
    rollout = rollout_from_options(serial=serial, parallel=parallel, batch=batch, lossless=lossless)
    pkg = _package_for(server_id, package) if package else None
    nodes = select_nodes(client, app_name, server, node or [], all_nodes)
    who = user or current_user()
    plain = canary is None and batch is None and not lossless and not parallel
    uploaded = None
    if pkg is not None:
        store = _reachable_store(client, patch)
        if store is None:
            if len(nodes) == 1 and plain:
                _publish_by_path(
                    client, out, server_id, nodes[0], pkg, restart, who, server_type, patch_timeout
                )
                return
            raise CommandFailed(
                f"no package store answers at {patch_address(patch, client.address)}: "
                "publishing to several nodes (or in batches, canary, lossless) needs it, "
                "the nodes download from it (give --patch PROXY)"
            )
        uploaded = store_package(
            client, store, out.err_console, app_name, server, pkg,
            comment=comment, user=who, show_progress=not out.as_json,
        )  # fmt: skip
        out.note(f"uploaded {pkg.archive.name} as version {uploaded.id} ({uploaded.tgz})")
        source = PatchSource(patch_id=uploaded.id, label=pkg.archive.name)
    else:
        assert version is not None
        _check_version(client, app_name, server, version)
        source = PatchSource(patch_id=version)
    doc = run_publish(
        client,
        out,
        app_name,
        server,
        nodes,
        source,
        rollout,
        user=who,
        comment=comment,
        restart=restart,
        stall_timeout_s=patch_timeout,
        canary=Canary(canary, canary_then == "continue", canary_wait) if canary else None,
    )
    doc["uploaded"] = uploaded.as_json() if uploaded else None
    go_on = go_on_command(server_id, source, doc["rest"]) if doc.get("stopped_after_canary") else ""

    def human(console: Console) -> None:
        where = ", ".join(nodes)
        if go_on:
            console.print(
                f"published {source.describe()} to {server_id} on the canary "
                f"{', '.join(doc['canary']['nodes'])}; stopped as asked. Go on with:\n  {go_on}",
                markup=False,
            )
            return
        console.print(f"published {source.describe()} to {server_id} on {where}", markup=False)
        for task in doc["tasks"]:
            console.print(f"  task {task['task']}: {task['status']}", markup=False)

    out.emit(doc, human)


@admin_command(app, no_args_is_help=True)
def rollback(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    node: NodesOption = None,
    all_nodes: AllOption = False,
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            metavar="ID",
            help="this package of the store (default: each node's previous one)",
            show_default=False,
        ),
    ] = None,
    serial: SerialOption = False,
    parallel: ParallelOption = False,
    batch: BatchOption = None,
    lossless: LosslessOption = False,
    comment: CommentOption = "rollback",
    user: UserOption = None,
    patch_timeout: PatchTimeoutOption = DEFAULT_PATCH_TIMEOUT_S,
) -> None:
    """Put back each node's previous version (or --to ID) from the store, without an upload."""
    from tarsus.cli.publish import (
        PatchSource,
        previous_versions,
        publish_history,
        rollout_from_options,
        run_publish,
    )

    app_name, server = split_server_id(server_id)
    rollout = rollout_from_options(serial=serial, parallel=parallel, batch=batch, lossless=lossless)
    nodes = select_nodes(client, app_name, server, node or [], all_nodes)
    who = user or current_user()
    targets: dict[int, list[str]] = {}
    if to is not None:
        if to < 1:
            raise UsageError(f"--to takes a package id (1 or more), not {to}")
        _check_version(client, app_name, server, to)
        targets[to] = list(nodes)
    else:
        current = {}
        for n in nodes:
            ret, state, _ = client.call("getServerState", app_name, server, n)
            current[n] = str(state.patchVersion) if ret == 0 else ""
        previous = previous_versions(publish_history(client, app_name, server), nodes, current)
        lacking = [n for n, v in previous.items() if v is None]
        if lacking:
            raise CommandFailed(
                f"no earlier version of {server_id} was published to node "
                f"{', '.join(lacking)} (publish history: `tarsus server history {server_id}`); "
                "name one with --to ID"
            )
        for n, v in previous.items():
            assert v is not None
            if not v.isdigit():
                raise CommandFailed(f"node {n}: its previous version {v!r} is not a package id")
            targets.setdefault(int(v), []).append(n)
    docs = []
    for patch_id, target_nodes in targets.items():
        docs.append(
            run_publish(
                client, out, app_name, server, target_nodes, PatchSource(patch_id=patch_id),
                rollout, user=who, comment=comment, restart=True,
                stall_timeout_s=patch_timeout, verb="rolling back to",
            )
        )  # fmt: skip
    doc = {"server": server_id, "rollbacks": docs}

    def human(console: Console) -> None:
        for patch_id, target_nodes in targets.items():
            console.print(
                f"rolled {server_id} back to version {patch_id} on {', '.join(target_nodes)}",
                markup=False,
            )

    out.emit(doc, human)


@admin_command(app, no_args_is_help=True)
def history(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, help="the newest N publishes")
    ] = 20,
) -> None:
    """Who published what to APP.SERVER, when, on which nodes, and how it ended."""
    from tarsus.cli.publish import publish_history, status_word

    app_name, server = split_server_id(server_id)
    tasks = publish_history(client, app_name, server)[:limit]
    doc = {
        "server": server_id,
        "tasks": [t.as_json() | {"versions": sorted({i.patch_id for i in t.items})} for t in tasks],
    }

    def human(console: Console) -> None:
        if not tasks:
            console.print(f"no publish of {server_id} recorded", markup=False)
            return
        table = Table("when", "who", "version", "node", "outcome", "task", box=None, pad_edge=False)
        for t in tasks:
            for item in t.items:
                outcome = status_word(item.status)
                if item.status != 3 and item.log:
                    outcome += f": {item.log}"
                table.add_row(
                    t.created, t.user, item.patch_id or "-", item.node, Text(outcome), t.task_no
                )
        console.print(table)

    out.emit(doc, human)


@admin_command(app, no_args_is_help=True)
def task(
    client: AdminClient,
    out: Output,
    task_no: Annotated[str, typer.Argument(metavar="TASKNO", help="as publish printed it")],
    follow: Annotated[
        bool, typer.Option("--follow", help="show its progress live until it ends")
    ] = False,
) -> None:
    """A task's items (node, command, status, percent, log); --follow it to the end."""
    from tarsus.cli.publish import follow_task, read_task, status_word

    ret, rsp = client.call("getTaskRsp", task_no)
    if ret != 0:
        raise CommandFailed(
            f"the admin registry knows no task {task_no!r} (getTaskRsp: {ret})", ret
        )
    outcome = read_task(rsp)
    if follow and not outcome.finished:
        outcome = follow_task(
            client,
            out,
            task_no,
            [i.node for i in outcome.items],
            stall_timeout_s=DEFAULT_PATCH_TIMEOUT_S,
        )
        outcome.created, outcome.user = str(rsp.createTime), str(rsp.userName)
    commands = [str(item.req.command) for item in rsp.taskItemRsp]
    doc = outcome.as_json()

    def human(console: Console) -> None:
        console.print(
            f"task {task_no} by {outcome.user or '?'} at {outcome.created or '?'}: {doc['status']}",
            markup=False,
        )
        table = Table("node", "command", "status", "percent", "log", box=None, pad_edge=False)
        for item, command in zip(outcome.items, commands, strict=False):
            table.add_row(
                item.node, command, status_word(item.status), f"{item.percent}%", Text(item.log)
            )
        console.print(table)

    out.emit(doc, human)
    if outcome.finished and outcome.failures:
        raise typer.Exit(1)


def _deploy_package(
    client: AdminClient,
    out: Output,
    app_name: str,
    server: str,
    node: str,
    pkg: Package,
    patch: str | None,
    *,
    user: str,
    server_type: str,
    timeout_s: int,
) -> dict[str, Any]:
    """Deploy's install: through the package store when one answers (uploaded, then a task
    of one node: the node downloads it), else the node is handed the package's path."""
    from tarsus.cli.publish import PatchSource, run_publish
    from tarsus.ops.tasks import Rollout

    store = _reachable_store(client, patch)
    if store is None:
        out.note(
            "note: no package store answers; the node installs from the path "
            f"{pkg.archive} (it must be able to read it)"
        )
        return publish_package(
            client, out, app_name, server, node, pkg,
            user=user, server_type=server_type, timeout_s=timeout_s,
        )  # fmt: skip
    uploaded = store_package(
        client, store, out.err_console, app_name, server, pkg,
        comment="deploy", user=user, show_progress=not out.as_json,
    )  # fmt: skip
    doc = run_publish(
        client, out, app_name, server, [node],
        PatchSource(patch_id=uploaded.id, label=pkg.archive.name), Rollout(),
        user=user, comment="deploy", restart=False, stall_timeout_s=timeout_s,
    )  # fmt: skip
    item = doc["tasks"][-1]["items"][0]
    return {
        "archive": str(pkg.archive),
        "md5": pkg.md5,
        "packed_from": str(pkg.packed_from) if pkg.packed_from else None,
        "manifest": pkg.manifest.source if pkg.manifest else None,
        "result": item["log"],
        "version": str(uploaded.id),
        "percent": item["percent"],
        "node_result": item["log"],
        "task": doc["tasks"][-1]["task"],
        "uploaded": uploaded.as_json(),
    }


def _reachable_store(client: AdminClient, patch: str | None) -> PatchStore | None:
    """The package store if it answers ``tars_ping``, else None."""
    store = PatchStore(client, patch_address(patch, client.address))
    try:
        store.ping()
    except PatchUnavailable:
        return None
    return store


def _check_version(client: AdminClient, app_name: str, server: str, version: int) -> None:
    """``--version ID`` must be one of the server's packages (when the store can say so)."""
    from tarsus.ops.release import stored_packages

    try:
        packages = client.run_plain(lambda platform: stored_packages(platform, app_name, server))
    except CommandFailed:
        return  # an admin registry without the package store functions: the task will tell
    if not any(p.id == version for p in packages):
        known = ", ".join(str(p.id) for p in packages[:10]) or "none"
        raise CommandFailed(
            f"{app_name}.{server} has no package {version} in the store (it has: {known}); "
            "see `tarsus package list`"
        )


def _publish_by_path(
    client: AdminClient,
    out: Output,
    server_id: str,
    node: str,
    pkg: Package,
    restart: bool,
    user: str,
    server_type: str,
    patch_timeout: int,
) -> None:
    """Without a package store: the node is handed the package's path (it must read it)."""
    app_name, server = split_server_id(server_id)
    where = f"{server_id} on node {node}"
    out.note(
        "note: no package store answers; the node installs from the path "
        f"{pkg.archive} (it must be able to read it)"
    )
    published = publish_package(
        client, out, app_name, server, node, pkg,
        user=user, server_type=server_type, timeout_s=patch_timeout,
    )  # fmt: skip
    restart_result = None
    if restart:
        doing = f"restarting {where} (published, not restarted)"
        restart_result = client.call_checked("restartServer", app_name, server, node, doing=doing)
    doc = {
        "server": server_id,
        "node": node,
        "package": published,
        "restarted": restart,
        "restart_result": restart_result,
    }

    def human(console: Console) -> None:
        _print_published(console, published)
        if restart:
            _print_done(console, f"restarted {where}", restart_result or "")

    out.emit(doc, human)


def _lifecycle(
    client: AdminClient,
    out: Output,
    server_id: str,
    node: str,
    method: str,
    *extra: str,
    doing: str,
    done: str,
    on: str = "on",
) -> None:
    """``method(app, server, node, *extra)``; ``doing`` names it when refused, ``done`` when
    reported (``starting`` / ``started`` APP.SERVER ``on`` node NODE)."""
    app_name, server = split_server_id(server_id)
    where = f"{server_id} {on} node {node}"
    result = client.call_checked(method, app_name, server, node, *extra, doing=f"{doing} {where}")
    doc = {"server": server_id, "node": node, "action": method, "result": result}
    out.emit(doc, lambda console: _print_done(console, f"{done} {where}", result))


def _lifecycle_command(name: str, method: str, doing: str, done: str, summary: str) -> None:
    """``tarsus server NAME APP.SERVER --node NODE``: one lifecycle call, its result printed."""

    def command(
        client: AdminClient, out: Output, server_id: ServerArgument, node: NodeOption
    ) -> None:
        _lifecycle(client, out, server_id, node, method, doing=doing, done=done)

    command.__name__ = name
    admin_command(app, name=name, help=summary, no_args_is_help=True)(command)


_lifecycle_command(
    "start",
    "startServer",
    "starting",
    "started",
    "Start APP.SERVER on NODE (and keep it started: its setting state becomes active).",
)
_lifecycle_command(
    "stop",
    "stopServer",
    "stopping",
    "stopped",
    "Stop APP.SERVER on NODE (the node will not restart it: setting state inactive).",
)
_lifecycle_command(
    "restart", "restartServer", "restarting", "restarted", "Stop, then start APP.SERVER on NODE."
)


@admin_command(app, no_args_is_help=True)
def undeploy(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    node: NodeOption,
    user: UserOption = None,
) -> None:
    """Stop APP.SERVER on NODE and remove it (its servants and config files) from the registry."""
    who = user or current_user()
    _lifecycle(
        client,
        out,
        server_id,
        node,
        "undeploy",
        who,
        doing="undeploying",
        done="undeployed",
        on="from",
    )


@admin_command(app, no_args_is_help=True)
def notify(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    node: NodeOption,
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="COMMAND...",
            help="e.g. tars.viewstatus, tars.setloglevel DEBUG, tars.loadconfig app.conf",
            show_default=False,
        ),
    ],
) -> None:
    """Send a command to APP.SERVER on NODE (its AdminObj.notify) and print its answer."""
    app_name, server = split_server_id(server_id)
    text = " ".join(command)
    doing = f"notifying {server_id} on node {node} of {text!r}"
    result = client.call_checked("notifyServer", app_name, server, node, text, doing=doing)
    doc = {"server": server_id, "node": node, "command": text, "result": result}
    out.emit(doc, lambda console: console.print(result, markup=False))


@admin_command(app, no_args_is_help=True)
def status(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    node: NodeOption,
) -> None:
    """The state of APP.SERVER on NODE: in the registry, on the node, and its last patch."""
    app_name, server = split_server_id(server_id)
    ret, state, result = client.call("getServerState", app_name, server, node)
    client.check(ret, result, f"getting the state of {server_id} on node {node}")
    # the node's notes (held back by the activation limiter until ..., stopped by an
    # operator): the lines after the first of its getStateInfo text (docs/node.md)
    notes = result.splitlines()[1:]
    doc = {
        "server": server_id,
        "node": node,
        "setting_state": state.settingStateInReg,
        "present_state": state.presentStateInReg,
        "present_state_in_node": state.presentStateInNode,
        "pid": state.processId,
        "patch_version": state.patchVersion,
        "patch_time": state.patchTime,
        "patch_user": state.patchUser,
        "notes": notes,
    }

    def human(console: Console) -> None:
        console.print(f"{server_id} on node {node}", markup=False)
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_row("setting state", state.settingStateInReg or "-")
        table.add_row("present state", state.presentStateInReg or "-")
        table.add_row("present on node", state.presentStateInNode or "-")
        table.add_row("pid", str(state.processId) if state.processId > 0 else "-")
        patch = state.patchVersion or "-"
        if state.patchVersion:
            patch += f"  ({state.patchTime or '?'} by {state.patchUser or '?'})"
        table.add_row("patch", patch)
        for note in notes:
            table.add_row("note", Text(note))
        console.print(table)

    out.emit(doc, human)


@admin_command(app, name="list")
def list_(
    client: AdminClient,
    out: Output,
    node: Annotated[
        str | None, typer.Option("--node", metavar="NODE", help="only servers on this node")
    ] = None,
    app_filter: Annotated[
        str | None, typer.Option("--app", metavar="APP", help="only servers of this application")
    ] = None,
) -> None:
    """Every deployed server instance, with its states and type."""
    rows, result = client.call("getAllServerIds")
    servers = []
    for row in rows:
        parsed = _server_row(row)
        if parsed is None:
            out.note(f"note: skipping a server row the admin registry sent: {row!r}")
            continue
        if (node is None or parsed["node"] == node) and (
            app_filter is None or parsed["application"] == app_filter
        ):
            servers.append(parsed)
    servers.sort(key=lambda s: (s["server"], s["node"]))
    if not rows and result.strip():
        out.note(f"note: the admin registry says: {result.strip()}")

    def human(console: Console) -> None:
        if not servers:
            console.print("no servers" + (" match" if node or app_filter else " deployed"))
            return
        table = Table("server", "node", "setting", "present", "type", box=None, pad_edge=False)
        table.columns[0].no_wrap = True
        for s in servers:
            table.add_row(
                s["server"], s["node"], s["setting_state"], s["present_state"], s["server_type"]
            )
        console.print(table)

    out.emit({"servers": servers}, human)


def _server_row(row: list[str]) -> dict[str, str] | None:
    """``["App.Server_node", setting, present, type]`` (upstream ``getAllServerIds``)."""
    if len(row) < 3:
        return None
    full, _, node = row[0].rpartition("_")
    app_name, dot, server = full.partition(".")
    if not (full and node and dot and app_name and server):
        return None
    return {
        "server": full,
        "application": app_name,
        "server_name": server,
        "node": node,
        "setting_state": row[1],
        "present_state": row[2],
        "server_type": row[3] if len(row) > 3 else "",
    }


def _package_for(server_id: str, spec: str) -> Package:
    """``--package``: packed under ``<cache>/packages`` if a directory, and for this server."""
    try:
        pkg = open_package(spec, default_cache_dir() / "packages")
    except PackageError as e:
        raise UsageError(str(e)) from None
    manifest = pkg.manifest
    if manifest and manifest.name and manifest.name != server_id:
        raise UsageError(
            f"the package is {manifest.name!r} ({manifest.source}), not {server_id!r}: "
            "deploy it under its own name, or fix [package] name"
        )
    return pkg


def _print_published(console: Console, published: dict[str, Any]) -> None:
    source = published["packed_from"] or published["archive"]
    console.print(
        f"published {source} (md5 {published['md5']}"
        + (f", version {published['version']}" if published["version"] else "")
        + ")",
        markup=False,
    )
    if published["packed_from"]:
        console.print(f"  packed as {published['archive']}", markup=False)


def _print_done(console: Console, what: str, result: str) -> None:
    console.print(what, markup=False)
    if result.strip():
        console.print(f"  {result.strip()}", markup=False)
