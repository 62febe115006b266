"""The ``tarsus`` command."""

from __future__ import annotations

import typer

from tarsus import __version__
from tarsus.cli.call import call
from tarsus.cli.idl import app as idl_app
from tarsus.cli.node import app as node_app
from tarsus.cli.server import app as server_app
from tarsus.cli.template import app as template_app
from tarsus.cli.up import up

app = typer.Typer(
    name="tarsus",
    help="Tarsus: the Tars microservice platform in Python.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(idl_app, name="idl")
app.add_typer(server_app, name="server")
app.add_typer(node_app, name="node")
app.add_typer(template_app, name="template")
app.command(name="call", no_args_is_help=True)(call)
app.command(name="up")(up)


@app.command()
def version() -> None:
    """Print the Tarsus version."""
    typer.echo(f"tarsus {__version__}")


def main() -> None:
    app()
