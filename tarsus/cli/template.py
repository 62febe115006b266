"""``tarsus template``: the configuration templates servers are deployed with.

    tarsus template show tars.tarspython.default

``show`` prints a template as the admin registry resolves it (``getProfileTemplate``): its
parents' values joined in, the template's own values winning. AdminReg has no method to list
templates or to write one, so ``list`` and ``set`` are not offered yet.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tarsus.cli.admin_client import AdminClient, CommandFailed, Output, admin_command

app = typer.Typer(
    name="template",
    help="Configuration templates (t_profile_template), as the admin registry serves them.",
    no_args_is_help=True,
)


@admin_command(app, no_args_is_help=True)
def show(
    client: AdminClient,
    out: Output,
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="e.g. tars.tarspython.default", show_default=False),
    ],
) -> None:
    """Print template NAME with everything it inherits from its parents."""
    ret, text, result = client.call("getProfileTemplate", name)
    client.check(ret, result, f"reading template {name}")
    if not text.strip():
        # Upstream answers 0 with an empty text and "(NAME:template not found)".
        raise CommandFailed(
            f"no template {name!r}" + (f": {result.strip()}" if result.strip() else ""),
            result=result,
        )
    doc = {"name": name, "template": text, "result": result}
    out.emit(doc, lambda console: console.print(text.rstrip("\n"), markup=False))
