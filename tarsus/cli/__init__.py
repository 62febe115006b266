"""The ``tarsus`` command."""

from __future__ import annotations

import typer

from tarsus import __version__
from tarsus.cli.call import call
from tarsus.cli.idl import app as idl_app

app = typer.Typer(
    name="tarsus",
    help="Tarsus: the Tars microservice platform in Python.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(idl_app, name="idl")
app.command(name="call", no_args_is_help=True)(call)


@app.command()
def version() -> None:
    """Print the Tarsus version."""
    typer.echo(f"tarsus {__version__}")


def main() -> None:
    app()
