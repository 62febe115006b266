"""``tarsus install``: put Tarsus on a real machine, as a service (docs/install.md).

    tarsus install framework --db mysql://root:PW@127.0.0.1:3306/db_tars
    tarsus install node --locator 'tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890'
    curl -fsS http://10.0.0.1:3000/install/node.sh | sh       # the same, from the framework

Both are safe to run again: what is right is kept, what changed is redone, a running service
restarted only when its settings changed. ``--prefix DIR`` installs under DIR instead of
``/etc/tarsus``, ``/var/lib/tarsus`` and ``/etc/systemd/system``; ``--foreground`` runs the
role in this process instead of as a service. ``tarsus install run ROLE`` is what the unit runs;
``tarsus install check ROLE`` is a container's health check (docs/containers.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tarsus.install.errors import InstallError
from tarsus.install.layout import Layout

if TYPE_CHECKING:
    from tarsus.install.settings import FrameworkSettings, NodeSettings

app = typer.Typer(
    help="Install the framework or a node on this machine, as a service (docs/install.md).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

Prefix = Annotated[
    Path | None,
    typer.Option(
        "--prefix",
        help="Install under this directory (etc/tarsus, var/lib/tarsus, etc/systemd/system) "
        "instead of /; the service then runs detached, never through systemd.",
    ),
]
Foreground = Annotated[
    bool,
    typer.Option(
        "--foreground", help="Run it in this process (Ctrl-C stops) instead of as a service."
    ),
]


def _quiet_clients() -> None:
    """The RPC client's "shielded" warnings while a framework starts, and the database's
    "already exists" notes of an install run again, are expected, not news."""
    logging.getLogger("tarsus.rpc").setLevel(logging.ERROR)
    logging.getLogger("asyncmy").setLevel(logging.ERROR)


def _say(message: str) -> None:
    typer.echo(f"tarsus install: {message}", err=True)


def _fail(e: InstallError) -> typer.Exit:
    typer.echo(f"tarsus install: {e}", err=True)
    return typer.Exit(1)


def _parse_ports(given: list[str]) -> dict[str, int]:
    from tarsus.framework.allinone import Ports

    names = {f.name for f in dataclasses.fields(Ports)} | {"web"}
    out: dict[str, int] = {}
    for item in given:
        name, _, value = item.partition("=")
        if name not in names or not value.isdigit() or not 0 < int(value) < 65536:
            raise typer.BadParameter(
                f"{item!r}: NAME=PORT with NAME one of {', '.join(sorted(names))}",
                param_hint="--port",
            )
        out[name] = int(value)
    return out


@app.command()
def framework(
    db: Annotated[
        str,
        typer.Option(
            "--db",
            envvar="TARSUS_DB",
            show_envvar=True,
            help="MySQL/MariaDB as an account that may create databases and users "
            "(mysql://root:PW@HOST:3306/db_tars); used while installing, never stored.",
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            envvar="TARSUS_HOST",
            help="Address to listen on and advertise (default: this host's first).",
        ),
    ] = None,
    prefix: Prefix = None,
    port: Annotated[
        list[str] | None,
        typer.Option(
            "--port",
            metavar="NAME=PORT",
            help="Another port: query=17890, admin=12000, web=3000, ...",
        ),
    ] = None,
    db_user_host: Annotated[
        str,
        typer.Option("--db-user-host", help="Where the framework's database user may log in from."),
    ] = "%",
    wheels: Annotated[
        Path | None,
        typer.Option(
            "--wheels", help="Take the nodes' wheels from this directory (no package index needed)."
        ),
    ] = None,
    rebuild_wheels: Annotated[
        bool, typer.Option("--rebuild-wheels", help="Build the wheelhouse again.")
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Beyond loopback, serve the framework's guarded objects on ssl endpoints "
            "too, with the install's certificates (docs/install.md).",
        ),
    ] = False,
    join_token: Annotated[
        str,
        typer.Option(
            "--join-token",
            envvar="TARSUS_JOIN_TOKEN",
            show_envvar=True,
            help="A secured framework's join token, given (e.g. a container's secret) instead "
            "of generated; better in the environment than on the command line.",
        ),
    ] = "",
    db_wait: Annotated[
        float,
        typer.Option(
            "--db-wait",
            envvar="TARSUS_DB_WAIT",
            metavar="SECONDS",
            min=0,
            help="Wait this long for a database that does not answer yet (containers).",
        ),
    ] = 0.0,
    foreground: Foreground = False,
) -> None:
    """Install the framework services on this host (database, keys, settings, service)."""
    from tarsus.framework.allinone import Ports
    from tarsus.install.framework import (
        FrameworkOptions,
        framework_auth,
        install_framework,
        wait_framework_ready,
    )
    from tarsus.install.upgrade import roll_framework

    _quiet_clients()
    ports = _parse_ports(port or [])
    web_port = ports.pop("web", 3000)
    opts = FrameworkOptions(
        db=db,
        layout=Layout(prefix.resolve() if prefix else None),
        host=host,
        ports=Ports(**ports),
        web_port=web_port,
        db_user_host=db_user_host,
        wheels=wheels,
        rebuild_wheels=rebuild_wheels,
        tls=tls,
        unit=not foreground,
        join_token=join_token,
        db_wait=db_wait,
    )
    try:
        done = asyncio.run(install_framework(opts, _say))
        if foreground:
            raise typer.Exit(_run_framework(done.settings, done.service.settings_file))
        if done.upgrade and done.service.can_hand_over():
            _say(f"upgrading in place to {done.settings.version}")
            _say(done.service.hand_over())
            waited = asyncio.run(wait_framework_ready(done.settings, done.service))
            tls_dir = opts.layout.tls_dir if done.settings.tls else None
            auth = framework_auth(opts.layout.auth_dir, tls_dir) if done.settings.secure else None
            rolled = asyncio.run(roll_framework(done.settings, auth, _say))
            _say(f"upgraded: {len(rolled)} framework services restarted one at a time")
        else:
            _say(done.service.start(changed=done.changed))
            waited = asyncio.run(wait_framework_ready(done.settings, done.service))
    except InstallError as e:
        raise _fail(e) from None
    s = done.settings
    _say(
        f"framework is up ({waited:.1f} s): locator "
        f"tars.tarsregistry.QueryObj@tcp -h {s.host} -p {s.ports.query}"
    )
    join = ""
    if s.secure:
        from tarsus.web.settings import WebSettings

        token = WebSettings(data_dir=s.data_dir).join_token_file.read_text().strip()
        join = f"TARSUS_JOIN_TOKEN={token} "
        _say(f"secured: the CLI here signs with {opts.layout.client_keys_file}")
    _say(f"add a node:  curl -fsS http://{s.host}:{s.web_port}/install/node.sh | {join}sh")


@app.command()
def node(
    locator: Annotated[
        str,
        typer.Option(
            "--locator",
            envvar="TARSUS_LOCATOR",
            help="The registry: tars.tarsregistry.QueryObj@tcp -h HOST -p 17890.",
        ),
    ],
    prefix: Prefix = None,
    node_name: Annotated[
        str,
        typer.Option(
            "--node-name",
            envvar="TARSUS_NODE_NAME",
            help="Default: our address as the registry sees it.",
        ),
    ] = "",
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="TARSUS_HOST",
            help="Address ServerObj listens on (default: node name).",
        ),
    ] = "",
    port: Annotated[int, typer.Option("--port", help="ServerObj port.")] = 19386,
    web: Annotated[
        str,
        typer.Option(
            "--web",
            envvar="TARSUS_WEB",
            help="The framework's web app (http://FW:3000): where a join token is shown.",
        ),
    ] = "",
    join_token: Annotated[
        str,
        typer.Option(
            "--join-token",
            envvar="TARSUS_JOIN_TOKEN",
            show_envvar=True,
            help="A secured framework's join token (printed by `tarsus install framework`); "
            "better given in the environment than on the command line.",
        ),
    ] = "",
    registry_wait: Annotated[
        float,
        typer.Option(
            "--registry-wait",
            envvar="TARSUS_REGISTRY_WAIT",
            metavar="SECONDS",
            min=0,
            help="Wait this long for a framework that does not answer yet (containers).",
        ),
    ] = 0.0,
    foreground: Foreground = False,
) -> None:
    """Install this host's node agent against a framework (settings, service)."""
    from tarsus.install.node import NodeOptions, install_node

    _quiet_clients()
    opts = NodeOptions(
        locator=locator,
        layout=Layout(prefix.resolve() if prefix else None),
        node_name=node_name,
        host=host,
        port=port,
        web=web,
        join_token=join_token,
        unit=not foreground,
        registry_wait=registry_wait,
    )
    try:
        done = asyncio.run(install_node(opts, _say))
        if foreground:
            raise typer.Exit(_run_node(done.settings))
        _say(done.service.start(changed=done.changed))
    except InstallError as e:
        raise _fail(e) from None
    _say("node agent installed; `tarsus node list` on the framework shows it once it registered")


@app.command()
def run(
    role: Annotated[str, typer.Argument(help="framework or node")],
    config: Annotated[
        Path, typer.Option("--config", help="Its settings file (/etc/tarsus/ROLE.toml).")
    ],
) -> None:
    """Run an installed role in this process: what its service unit runs."""
    from tarsus.install.settings import FrameworkSettings, load_settings

    try:
        settings = load_settings(config)
    except InstallError as e:
        raise _fail(e) from None
    if settings.role != role:
        raise _fail(InstallError(f"{config} is the {settings.role}'s settings, not the {role}'s"))
    if isinstance(settings, FrameworkSettings):
        raise typer.Exit(_run_framework(settings, config.resolve()))
    raise typer.Exit(_run_node(settings))


@app.command()
def check(
    role: Annotated[str, typer.Argument(help="framework or node")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Its settings file (default /etc/tarsus/ROLE.toml)."),
    ] = None,
) -> None:
    """Whether the installed role running here answers (exit 0) or not (exit 1, saying why):
    a container's HEALTHCHECK."""
    from tarsus.install.framework import framework_health
    from tarsus.install.node import node_health
    from tarsus.install.settings import FrameworkSettings, load_settings

    _quiet_clients()
    path = config or Layout().settings_file(role)
    try:
        settings = load_settings(path)
    except InstallError as e:
        raise _fail(e) from None
    if settings.role != role:
        raise _fail(InstallError(f"{path} is the {settings.role}'s settings, not the {role}'s"))
    if isinstance(settings, FrameworkSettings):
        wrong = asyncio.run(framework_health(settings))
    else:
        wrong = asyncio.run(node_health(settings))
    if wrong:
        typer.echo(f"tarsus install check {role}: {wrong}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{role} healthy")


def _run_framework(s: FrameworkSettings, settings_file: Path) -> int:
    """The framework in the production layout (``tarsus up --processes``) with the web app;
    secured (docs/security.md) when the install listens beyond loopback."""
    from rich.console import Console

    import tarsus
    from tarsus.cli.up import HANDED_OVER, run_framework
    from tarsus.framework.allinone import AllInOneSettings
    from tarsus.install.framework import framework_auth, node_server_credentials
    from tarsus.install.units import ready_file, run_argv
    from tarsus.web.settings import WebSettings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    auth, node_keys = None, None
    etc_dir = settings_file.parent
    if s.secure:
        try:
            auth = framework_auth(etc_dir / "auth", etc_dir / "tls" if s.tls else None)
            node_keys = node_server_credentials(etc_dir / "auth")
        except InstallError as e:
            typer.echo(f"tarsus install run framework: {e}", err=True)
            return 1
    settings = AllInOneSettings(
        data_dir=s.data_dir,
        db_url=s.db,
        host=s.host,
        ports=s.ports,
        processes=True,
        auth=auth,
        node_server_credentials=node_keys,
    )
    web = WebSettings(
        data_dir=s.data_dir,
        host=s.host,
        port=s.web_port,
        locator=settings.locator,
        admin=s.admin_proxy,
        security=auth.client_security() if auth else {},
        node_auth=auth,
    )
    ready = ready_file(s.data_dir, "framework")

    def up() -> None:
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.write_text(f"{os.getpid()} {tarsus.__version__}\n")

    try:
        code = asyncio.run(
            run_framework(
                settings, False, Console(stderr=True), web, True, on_ready=up, handover=True
            )
        )
    except KeyboardInterrupt:
        return 0
    finally:
        ready.unlink(missing_ok=True)
    if code == HANDED_OVER:  # an upgrade in place: the code now installed adopts the services
        sys.stdout.flush()
        sys.stderr.flush()
        argv = run_argv("framework", settings_file)
        os.execv(argv[0], argv)
    return code


def _run_node(s: NodeSettings) -> int:
    from tarsus.cli.node_agent import run_agent
    from tarsus.rpc.auth import Credentials
    from tarsus.rpc.security import ServantSecurity
    from tarsus.rpc.tls import TlsConfig

    tls = TlsConfig(ca=s.ca) if s.ca else None  # the framework's CA: its ssl endpoints checked
    keys = ServantSecurity(Credentials(s.accesskey, s.secretkey), tls) if s.accesskey else None
    return run_agent(
        s.locator,
        data_dir=s.data_dir,
        node_name=s.node_name,
        host=s.host,
        port=s.port,
        security=dict.fromkeys(s.secured, keys) if keys else {},
        server_credentials=(
            Credentials(s.server_accesskey, s.server_secretkey) if s.server_accesskey else None
        ),
    )
