"""The ``tarsus`` command.

Each subcommand lives in its own module and is imported only when it runs (or when its own
``--help`` is asked for): ``tarsus --help`` and ``tarsus version`` import typer and nothing of
the framework, ``tarsus call`` the RPC client and the IDL compiler, ``tarsus server`` the admin
client. ``COMMANDS`` names each subcommand's module and carries its one-line help, so that the
top-level help needs none of them (a test checks that the lines match the modules' own). The
top-level help is click's plain text: rich's help renderer alone costs more than the rest of
``tarsus --help`` (docs/cli-call.md, "Start-up time").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

from tarsus import __version__

__all__ = ["COMMANDS", "LazyCommand", "app", "main"]


@dataclass(frozen=True)
class LazyCommand:
    """A subcommand imported on demand: ``attribute`` of ``module`` is a ``typer.Typer`` (a
    group of commands) or the function of a single command."""

    module: str
    attribute: str
    #: the line ``tarsus --help`` shows; the same as the command's own first help line
    summary: str
    no_args_is_help: bool = False

    def load(self, name: str) -> Any:
        """The click command, built from the module."""
        target = getattr(importlib.import_module(self.module), self.attribute)
        if isinstance(target, typer.Typer):
            group = typer.main.get_group(target)
            group.name = name
            return group
        single = typer.Typer()
        single.command(name=name, no_args_is_help=self.no_args_is_help)(target)
        return typer.main.get_command(single)


COMMANDS: dict[str, LazyCommand] = {
    "call": LazyCommand(
        "tarsus.cli.call",
        "call",
        "Call METHOD on the servant PROXY and print the result as one JSON object.",
        no_args_is_help=True,
    ),
    "up": LazyCommand(
        "tarsus.cli.up",
        "up",
        "Start the framework on this machine (registry, admin registry, node agent) and run "
        "examples/hello; Ctrl-C stops everything.",
    ),
    "idl": LazyCommand("tarsus.cli.idl", "app", "Check .tars files and generate Python code."),
    "server": LazyCommand(
        "tarsus.cli.server",
        "app",
        "Deploy, publish, start, stop and inspect servers (through the admin registry).",
    ),
    "package": LazyCommand(
        "tarsus.cli.package",
        "app",
        "The package store of a server: upload, list, delete, default.",
    ),
    "node": LazyCommand(
        "tarsus.cli.node",
        "app",
        "Run this machine's node agent (tarsus node --locator ...), or list and ping the nodes "
        "the admin registry knows.",
    ),
    "web": LazyCommand(
        "tarsus.cli.web",
        "app",
        "Run the HTTP app (the script API upload_and_publish), or print its token.",
    ),
    "log": LazyCommand(
        "tarsus.cli.log",
        "app",
        "A server's log files, local (per node) and remote (tars.tarslog): list, tail, search.",
    ),
    "notify": LazyCommand(
        "tarsus.cli.notify",
        "app",
        "A server's recent alarms and events (tars.tarsnotify): list, send.",
    ),
    "template": LazyCommand(
        "tarsus.cli.template",
        "app",
        "Configuration templates (t_profile_template): list, show, set, delete.",
    ),
    "config": LazyCommand(
        "tarsus.cli.config",
        "app",
        "Configuration files in the config center: add, edit, show, list, history, diff, "
        "restore, delete, push.",
    ),
    "install": LazyCommand(
        "tarsus.cli.install",
        "app",
        "Install the framework or a node on this machine, as a service (docs/install.md).",
    ),
    "alert": LazyCommand(
        "tarsus.cli.alert",
        "app",
        "Alert rules (tars.tarsalarm): list, add, delete, test, events.",
    ),
}


class LazyGroup(TyperGroup):
    """The top-level group: subcommands of :data:`COMMANDS` are loaded when resolved."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMANDS:
            found = self.commands[cmd_name] = COMMANDS[cmd_name].load(cmd_name)
        return found

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from :data:`COMMANDS`' summaries, without importing anything."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            lazy = COMMANDS.get(name)
            if lazy is not None and name not in self.commands:
                rows.append((name, lazy.summary))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="tarsus",
    help="Tarsus: the Tars microservice platform in Python.",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _tarsus() -> None:
    """Tarsus: the Tars microservice platform in Python."""


@app.command()
def version() -> None:
    """Print the Tarsus version."""
    typer.echo(f"tarsus {__version__}")


def main() -> None:
    app()
