"""``tarsus template``: the configuration templates servers are deployed with.

    tarsus template list
    tarsus template show tars.tarspython.default [--raw]
    tarsus template set Demo.custom --parent tars.tarspython.default --file custom.conf
    tarsus template delete Demo.custom

``show`` prints a template as the admin registry resolves it (upstream's ``getProfileTemplate``):
its parents' values joined in, the template's own values winning. Upstream's AdminReg has no
method to list, read as stored, write or delete templates (its web console writes
``t_profile_template`` in MySQL), so ``list``, ``show --raw``, ``set`` and ``delete`` call our
extension ``tarsus.AdminExt`` (``TarsusAdmin.tars``), served on the same AdminRegObj; an
upstream admin registry does not have it, and those commands then say so.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tarsus.cli.admin_client import (
    AdminClient,
    CommandFailed,
    Output,
    admin_command,
    current_user,
    print_text,
    read_text_file,
)
from tarsus.protocol.gen import TarsusAdmin

app = typer.Typer(
    name="template",
    help="Configuration templates (t_profile_template): list, show, set, delete.",
    no_args_is_help=True,
)

NameArgument = Annotated[
    str,
    typer.Argument(metavar="NAME", help="e.g. tars.tarspython.default", show_default=False),
]


@admin_command(app, name="list")
def list_(client: AdminClient, out: Output) -> None:
    """Every template: its parent, when it last changed and who changed it."""
    ret, templates, result = client.call_ext("listProfileTemplates")
    client.check(ret, result, "listing the templates")
    docs = [_template_doc(t) for t in templates]

    def human(console: Console) -> None:
        if not docs:
            console.print("no templates")
            return
        table = Table("template", "parent", "last change", "user", box=None, pad_edge=False)
        table.columns[0].no_wrap = True
        for d in docs:
            parent = d["parent"]
            if parent == d["name"]:
                parent = "(itself: the root)"
            table.add_row(d["name"], parent or "-", d["post_time"] or "-", d["last_user"] or "-")
        console.print(table)

    out.emit({"templates": docs}, human)


@admin_command(app, no_args_is_help=True)
def show(
    client: AdminClient,
    out: Output,
    name: NameArgument,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="only the template's own text, as stored (its parent is named on stderr)",
        ),
    ] = False,
) -> None:
    """Print template NAME with everything it inherits from its parents (--raw: as stored)."""
    if raw:
        ret, tpl, result = client.call_ext("getRawProfileTemplate", name)
        client.check(ret, result, f"reading template {name}")
        doc = _template_doc(tpl) | {"result": result}
        parent = doc["parent"] or "none"
        changed = f", last changed {doc['post_time']}" if doc["post_time"] else ""
        by = f" by {doc['last_user']}" if doc["last_user"] else ""
        # stderr, so that stdout is the text `template set --file` takes back
        out.note(f"# template {name}, parent {parent}{changed}{by}")
        out.emit(doc, lambda _console: print_text(doc["profile"]))
        return
    ret, text, result = client.call("getProfileTemplate", name)
    client.check(ret, result, f"reading template {name}")
    if not text.strip():
        # Upstream answers 0 with an empty text and "(NAME:template not found)".
        raise CommandFailed(
            f"no template {name!r}" + (f": {result.strip()}" if result.strip() else ""),
            result=result,
        )
    doc = {"name": name, "template": text, "result": result}
    out.emit(doc, lambda _console: print_text(text))


@admin_command(app, name="set", no_args_is_help=True)
def set_(
    client: AdminClient,
    out: Output,
    name: NameArgument,
    parent: Annotated[
        str,
        typer.Option(
            "--parent",
            metavar="TEMPLATE",
            help="the template it inherits from (e.g. tars.default); '' for none",
            show_default=False,
        ),
    ],
    file: Annotated[
        str,
        typer.Option(
            "--file",
            metavar="FILE",
            help="the template's own TC_Config text ('-': standard input)",
            show_default=False,
        ),
    ],
    user: Annotated[
        str | None,
        typer.Option("--user", help="who changes it, as recorded with it (default: you)"),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="also change a built-in template such as tars.default"),
    ] = False,
) -> None:
    """Create or replace template NAME: its parent and its own text (from --file)."""
    from tarsus.ops import templates

    profile = read_text_file(file)
    who = user or current_user()
    client.run(templates.save, who, name, parent, profile, force=force)
    doc = {"name": name, "parent": parent, "user": who, "result": ""}
    out.emit(
        doc,
        lambda console: console.print(
            f"set template {name} (parent {parent or 'none'})", markup=False
        ),
    )


@admin_command(app, no_args_is_help=True)
def delete(client: AdminClient, out: Output, name: NameArgument) -> None:
    """Delete template NAME; refused while a server, node or template uses it."""
    from tarsus.ops import templates

    client.run(templates.delete, None, name)
    doc = {"name": name, "deleted": True, "result": ""}
    out.emit(doc, lambda console: console.print(f"deleted template {name}", markup=False))


def _template_doc(tpl: TarsusAdmin.ProfileTemplate) -> dict[str, str]:
    return {
        "name": tpl.name,
        "parent": tpl.parentName,
        "post_time": tpl.postTime,
        "last_user": tpl.lastUser,
        "profile": tpl.profile,
    }
