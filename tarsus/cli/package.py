"""``tarsus package``: the package store of a server (upload, list, delete, default).

    tarsus package upload Test.HelloServer ./hello --comment "fix greeting"
    tarsus package list Test.HelloServer
    tarsus package default 12
    tarsus package delete 11

Upload sends the file to ``tars.tarspatch.PatchObj`` and has the admin registry record it
(``tarsus.cli.patch_store``); the other commands are the admin registry's package functions
(``tarsus.AdminExt``: ``listPatchPackages``, ``deletePatchPackage``,
``setDefaultPatchPackage``), called by the console's operations (:mod:`tarsus.ops.release`:
``stored_packages``, ``drop_package``, ``set_default_package``; docs/cli-operate.md "One
service layer"). Publishing a stored package is ``tarsus server publish --version``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tarsus.cli.admin_client import (
    AdminClient,
    Output,
    ServerArgument,
    UsageError,
    admin_command,
    current_user,
    split_server_id,
)
from tarsus.cli.patch_store import PatchOption, PatchStore, patch_address, store_package

app = typer.Typer(
    name="package",
    help="The package store of a server: upload, list, delete, default.",
    no_args_is_help=True,
)

UserOption = Annotated[
    str | None,
    typer.Option("--user", help="who does it, as recorded (default: you)"),
]
IdArgument = Annotated[
    int, typer.Argument(metavar="ID", help="the package id (`tarsus package list`)", min=1)
]


def human_size(size: int) -> str:
    if size < 0:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


@admin_command(app, no_args_is_help=True)
def upload(
    client: AdminClient,
    out: Output,
    server_id: ServerArgument,
    path: Annotated[
        str,
        typer.Argument(metavar="PATH", help="a directory (packed) or a .tgz (path or file:// URL)"),
    ],
    comment: Annotated[
        str, typer.Option("--comment", metavar="TEXT", help="what it is, shown by list")
    ] = "",
    user: UserOption = None,
    patch: PatchOption = None,
) -> None:
    """Upload a package of APP.SERVER to the package store; prints its id (the version)."""
    from tarsus.cli.server import _package_for

    app_name, server = split_server_id(server_id)
    pkg = _package_for(server_id, path)
    store = PatchStore(client, patch_address(patch, client.address))
    stored = store_package(
        client, store, out.err_console, app_name, server, pkg,
        comment=comment, user=user or current_user(), show_progress=not out.as_json,
    )  # fmt: skip
    out.emit(
        stored.as_json(),
        lambda console: console.print(
            f"uploaded {stored.source} to {server_id}: id {stored.id} "
            f"({stored.tgz}, md5 {stored.md5}, {human_size(stored.size)})",
            markup=False,
        ),
    )


@admin_command(app, name="list", no_args_is_help=True)
def list_(client: AdminClient, out: Output, server_id: ServerArgument) -> None:
    """APP.SERVER's packages, newest first, with the nodes running each and the disk used."""
    from tarsus.ops.release import stored_packages

    app_name, server = split_server_id(server_id)
    packages = client.run_plain(lambda platform: stored_packages(platform, app_name, server))
    rows = [dataclasses.asdict(p) for p in packages]
    total = sum(r["size"] for r in rows if r["size"] > 0)
    doc = {"server": server_id, "packages": rows, "total_size": total}

    def human(console: Console) -> None:
        if not rows:
            console.print(f"no packages of {server_id} in the store", markup=False)
            return
        table = Table(
            "id", "md5", "size", "comment", "uploaded", "default", "deployed on",
            box=None, pad_edge=False,
        )  # fmt: skip
        for r in rows:
            who = f"{r['upload_time'] or '?'} by {r['upload_user'] or '?'}"
            table.add_row(
                str(r["id"]), r["md5"][:12], human_size(r["size"]), Text(r["comment"] or ""),
                Text(who), "yes" if r["default"] else "", Text(", ".join(r["deployed_on"])),
            )  # fmt: skip
        console.print(table)
        console.print(f"{len(rows)} packages, {human_size(total)} on the store", markup=False)

    out.emit(doc, human)


@admin_command(app, no_args_is_help=True)
def delete(
    client: AdminClient, out: Output, package_id: IdArgument, user: UserOption = None
) -> None:
    """Delete package ID (its row and its file); refused while a node runs it."""
    from tarsus.ops.release import drop_package

    who = user or current_user()
    result = client.run_plain(lambda platform: drop_package(platform, who, package_id))
    out.emit(
        {"id": package_id, "deleted": True, "result": result},
        lambda console: console.print(f"deleted package {package_id}", markup=False),
    )


@admin_command(app, no_args_is_help=True)
def default(
    client: AdminClient, out: Output, package_id: IdArgument, user: UserOption = None
) -> None:
    """Make package ID its server's default package."""
    if package_id < 1:
        raise UsageError("ID is a package id, 1 or more")
    from tarsus.ops.release import set_default_package

    who = user or current_user()
    result = client.run_plain(lambda platform: set_default_package(platform, who, package_id))
    out.emit(
        {"id": package_id, "default": True, "result": result},
        lambda console: console.print(f"package {package_id} is the default now", markup=False),
    )
