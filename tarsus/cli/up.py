"""``tarsus up``: the whole framework on this machine with one command.

    tarsus up                         # SQLite under ./.tarsus, node agent, examples/hello
    tarsus up --db mysql://root@127.0.0.1:3306/db_tars --host 198.18.0.10 --no-example

Starts the registry (QueryObj 17890, RegistryObj 17891), the admin registry (AdminRegObj
12000), the package store (PatchObj 18793, files under ``<data-dir>/patchs``) and a node
agent (ServerObj 19386) in one process — or, with ``--processes``, the node agent here and
each framework service as its own process under it (``tars.tarsregistry``,
``tars.tarsAdminRegistry``, ``tars.tarspatch``, upstream's production layout) — then deploys,
installs and starts
``examples/hello`` so that a call by name answers at once. The HTTP app (the console, the
REST API and the script API ``POST /api/upload_and_publish``; docs/web.md) is served on port
3000 (``--web-port``, ``--no-web``): by this process, or with ``--processes`` as the framework
service ``tars.tarsweb`` in a process of its own under the node (:mod:`tarsus.web.service`)::

    tarsus call --locator 'tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890' \\
        --idl examples/hello/Hello.tars Test.HelloServer.HelloObj sayHello '{"name":"x"}'

Ctrl-C (or SIGTERM) stops everything it started, the services included.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.status import Status

import tarsus
from tarsus.codec.constants import ADMIN_REG_OBJ
from tarsus.framework.admin import AdminSettings
from tarsus.framework.admin.inventory import Inventory
from tarsus.framework.allinone import (
    FRAMEWORK_SERVICES,
    READY_TIMEOUT,
    AllInOne,
    AllInOneSettings,
    Ports,
    left_running,
)
from tarsus.framework.registry import RegistrySettings
from tarsus.package import PackageError, open_package
from tarsus.patching import wait_patch
from tarsus.protocol.gen import AdminReg, NodeDescriptor, QueryF
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import EndpointError
from tarsus.rpc.errors import TarsError
from tarsus.store import Store, StoreError
from tarsus.store.servers import AdapterSpec, ServerSpec
from tarsus.web.service import WEB_SPEC
from tarsus.web.settings import DEFAULT_PORT as DEFAULT_WEB_PORT
from tarsus.web.settings import WebSettings
from tarsus.web.token import TokenError, ensure_token

if TYPE_CHECKING:
    from tarsus.web.server import WebServer

EXAMPLE_SERVER = ("Test", "HelloServer")
#: :func:`run_framework`'s answer to SIGHUP with ``handover``: stopped, the framework services
#: left running for the next process to adopt (an upgrade in place, docs/install.md)
HANDED_OVER = 75
EXAMPLE_TEMPLATE = "tars.tarspython.default"

log = logging.getLogger("tarsus.cli.up")


def find_example() -> Path | None:
    """``examples/hello`` in the current directory, else beside the installed package."""
    for base in (Path.cwd(), Path(tarsus.__file__).resolve().parents[1]):
        candidate = base / "examples" / "hello"
        if (candidate / "tarsus.toml").is_file():
            return candidate
    return None


def up(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the store, node data and logs live.")
    ] = Path(".tarsus"),
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Store URL (mysql://user:pw@host:3306/db_tars); default SQLite in --data-dir.",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on and advertise (node name too).")
    ] = "127.0.0.1",
    node: Annotated[bool, typer.Option("--node/--no-node", help="Run a node agent.")] = True,
    example: Annotated[
        bool, typer.Option("--example/--no-example", help="Deploy and start examples/hello.")
    ] = True,
    node_timeout: Annotated[
        float,
        typer.Option(
            "--node-timeout",
            help="Seconds without a node heartbeat before its services are routed around "
            "(upstream 250).",
        ),
    ] = 30.0,
    processes: Annotated[
        bool,
        typer.Option(
            "--processes",
            help="Run each framework service as its own process under the node agent "
            "(upstream's production layout) instead of all in this one.",
        ),
    ] = False,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Make a new store in an existing but empty SQLite file (refused otherwise).",
        ),
    ] = False,
    web: Annotated[
        bool,
        typer.Option(
            "--web/--no-web",
            help="Serve the HTTP app (the script API upload_and_publish; docs/web.md).",
        ),
    ] = True,
    web_port: Annotated[
        int | None,
        typer.Option(
            "--web-port",
            help=f"Its port (default {DEFAULT_WEB_PORT}, upstream TarsWeb's; if that one is "
            "taken, tarsus up goes on without the web and says so).",
        ),
    ] = None,
    stat_window: Annotated[
        int,
        typer.Option(
            "--stat-window",
            min=1,
            max=3600,
            help="Seconds per call-statistics and property window (tars.tarsstat and "
            "tars.tarsproperty; upstream 300). Servers still report every report-interval "
            "of their config (60 s; TarsCpp and Tarsus at least 10 s).",
        ),
    ] = 60,
    locator: Annotated[
        str | None,
        typer.Option(
            "--locator",
            help="Every framework host's registry, for a second framework host over the same "
            "--db: 'tars.tarsregistry.QueryObj@tcp -h A -p 17890:tcp -h B -p 17890' "
            "(docs/failover.md). Default: this host's only.",
        ),
    ] = None,
    patch_dir: Annotated[
        Path | None,
        typer.Option(
            "--patch-dir",
            help="The package store's files (default <data-dir>/patchs); framework hosts "
            "share one, as upstream's share a patch directory.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
) -> None:
    """Start the framework on this machine (registry, admin registry, node agent) and run
    examples/hello; Ctrl-C stops everything."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    console = Console(stderr=True)
    if processes and not node:
        console.print("[red]tarsus up:[/red] --processes runs the framework under the node agent")
        raise typer.Exit(2)
    if locator is not None:
        try:
            Communicator._check_locator(locator)
        except (ValueError, EndpointError) as e:
            console.print(f"[red]tarsus up:[/red] --locator: {e}")
            raise typer.Exit(2) from None
    settings = AllInOneSettings(
        data_dir=data_dir,
        db_url=db,
        host=host,
        run_node=node,
        processes=processes,
        create_store=create,
        stat_window=stat_window,
        cluster_locator=locator,
        patch_directory=patch_dir.resolve() if patch_dir else None,
        # the node is in this process: poll its install progress often (upstream: every 1 s)
        admin=AdminSettings(patch_poll_interval=0.05),
        registry=RegistrySettings(
            node_timeout=node_timeout, node_sweep_interval=min(15.0, max(1.0, node_timeout / 2))
        ),
    )
    web_settings = None
    if web:
        web_settings = WebSettings(
            data_dir=data_dir,
            host=host,
            port=DEFAULT_WEB_PORT if web_port is None else web_port,
            locator=settings.locator,
            admin=f"{ADMIN_REG_OBJ}@tcp -h {host} -p {settings.ports.admin}",
        )
    try:
        code = asyncio.run(
            run_framework(settings, example and node, console, web_settings, web_port is not None)
        )
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


async def run_framework(
    settings: AllInOneSettings,
    example: bool,
    console: Console,
    web_settings: WebSettings | None = None,
    web_port_chosen: bool = False,
    *,
    on_ready: Callable[[], None] | None = None,
    handover: bool = False,
) -> int:
    """Start the framework (and the web app, and the example), wait for SIGINT/SIGTERM, stop
    everything; the exit code. Also what an installed framework runs (``tarsus install``),
    which calls ``on_ready`` once everything is up and, with ``handover``, takes SIGHUP as
    "stop, but leave the framework services running" (:data:`HANDED_OVER`)."""
    started = time.monotonic()
    # A web app an earlier run left running holds its port: the node adopts it.
    if web_settings is not None and not (settings.processes and left_running(settings, WEB_SPEC)):
        try:
            web_settings = _claim_web_port(web_settings, web_port_chosen, console)
        except OSError as e:
            console.print(f"[red]tarsus up failed:[/red] the web app: {e}")
            return 1
    settings.web_port = web_settings.port if web_settings is not None else None
    platform = AllInOne(settings)
    web: WebServer | None = None
    shown: WebShown | None = None
    stop = asyncio.Event()
    handing_over = False
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM]
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    if handover:

        def hand_over() -> None:
            nonlocal handing_over
            handing_over = True
            stop.set()

        signals.append(signal.SIGHUP)
        loop.add_signal_handler(signal.SIGHUP, hand_over)
    try:
        try:
            with console.status("starting the framework") as status:
                # Ctrl-C/SIGTERM is obeyed during start-up too, not only once it is up.
                starting = asyncio.ensure_future(
                    _start(platform, settings, example, console, status)
                )
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not starting.done():
                    # Cancelled again until it ends: Python 3.11's wait_for (under the
                    # database drivers) can swallow one cancellation that meets a result.
                    while not starting.done():
                        starting.cancel()
                        await asyncio.wait({starting}, timeout=1)
                    _ = starting.cancelled() or starting.exception()  # retrieved, not logged
                    console.print("stopped during start-up")
                    return 1
                starting.result()
        except (StoreError, PackageError, OSError, RuntimeError, TarsError) as e:
            console.print(f"[red]tarsus up failed:[/red] {e}")
            return 1
        if web_settings is not None:
            web_settings.data_dir = settings.data_dir  # resolved by the start
            try:
                if settings.processes:
                    shown = await _web_service_ready(web_settings, platform, console)
                else:
                    web = await _start_web(web_settings, platform.store)
                    shown = WebShown.of(web)
            except (OSError, TokenError) as e:
                console.print(f"[red]tarsus up failed:[/red] the web app: {e}")
                return 1
        elapsed = time.monotonic() - started
        assert platform.store is not None
        _print_ready(console, settings, platform.store.url, elapsed, example, shown)
        if on_ready is not None:
            on_ready()
        await stop.wait()
        if handing_over:
            console.print("handing over: the framework services keep running")
            platform.keep_services()
            return HANDED_OVER
        console.print("stopping: services first, then the framework")
        return 0
    finally:
        if web is not None:
            await web.stop()
        await platform.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)


@dataclass(frozen=True)
class WebShown:
    """What the ready message says of the web app, wherever it runs."""

    url: str
    token: str
    token_file: Path
    #: the first ``admin``'s generated password, when this start made that user
    admin_password: str | None

    @classmethod
    def of(cls, web: WebServer) -> WebShown:
        s = web.settings
        return cls(web.url, web.token, s.token_file, web.admin_password)


def _claim_web_port(
    settings: WebSettings, port_chosen: bool, console: Console
) -> WebSettings | None:
    """``settings`` with a port that is free now (port 0: one picked). The default port taken
    (an upstream TarsWeb, another app on 3000) is no failure of the framework: said, and None
    (the web left out). A port chosen with ``--web-port`` that is taken is (``OSError``)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, settings.port))
        except OSError as e:
            if port_chosen or e.errno != errno.EADDRINUSE:
                raise OSError(f"port {settings.port}: {e.strerror or e}") from None
            console.print(
                f"[yellow]the web app is not served: port {settings.port} is taken "
                f"({e.strerror or e}); --web-port N picks another, --no-web leaves it out[/yellow]"
            )
            return None
        return replace(settings, port=int(sock.getsockname()[1]))


async def _web_service_ready(
    settings: WebSettings, platform: AllInOne, console: Console
) -> WebShown | None:
    """Until ``tars.tarsweb``, started by the node, answers HTTP on its port; what to show
    of it. One that does not come up is said, and the framework goes on without it."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{settings.port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while not await _answers_http(settings.host, settings.port):
        if time.monotonic() > deadline:
            log_dir = platform.settings.node_dir / "app_log" / "tars" / "tarsweb"
            console.print(
                f"[yellow]the web app (tars.tarsweb) does not answer at {url} after "
                f"{READY_TIMEOUT:.0f} s; see {log_dir}[/yellow]"
            )
            return None
        await asyncio.sleep(0.05)
    token = ensure_token(settings.token_file)
    return WebShown(url, token, settings.token_file, platform.web_admin_password)


async def _answers_http(host: str, port: int) -> bool:
    """Whether an HTTP server answers a request on ``host:port`` (any status)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"HEAD / HTTP/1.1\r\nHost: tarsus-up\r\nConnection: close\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
        return line.startswith(b"HTTP/")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def _start_web(settings: WebSettings, store: Store | None = None) -> WebServer:
    """The HTTP app in this process (the one-process layout), over the framework's store.
    ``OSError`` when its port was taken since :func:`_claim_web_port` looked."""
    from tarsus.web.server import WebServer

    server = WebServer(settings, store=store)
    try:
        await server.start()
    except OSError as e:
        raise OSError(f"port {settings.port}: {e.strerror or e}") from None
    return server


async def _start(
    platform: AllInOne, settings: AllInOneSettings, example: bool, console: Console, status: Status
) -> None:
    await platform.start(progress=lambda msg: status.update(msg))
    if example:
        status.update("deploying examples/hello")
        await _deploy_example(platform, settings, console)


async def _deploy_example(platform: AllInOne, settings: AllInOneSettings, console: Console) -> None:
    """Deploy ``examples/hello`` on this node (once), install its package when it changed,
    start it, and wait until the registry routes calls to it.

    The row is written by the admin registry's own deploy (over the store this process has
    open); installing and starting go through ``AdminRegObj`` and readiness through
    ``QueryObj``, as for any client: the same whether the framework runs in this process or
    each service in its own."""
    example_dir = find_example()
    if example_dir is None:
        console.print("[yellow]examples/hello not found: nothing deployed[/yellow]")
        return
    store = platform.store
    assert store is not None
    app, server = EXAMPLE_SERVER
    node = settings.host
    package = open_package(str(example_dir), settings.data_dir / "packages")
    servants = package.manifest.servant_ports() if package.manifest else {"HelloObj": 18601}
    row = await store.servers.get(app, server, node)
    if row is None:
        row = await Inventory(store).deploy(
            ServerSpec(
                application=app,
                server_name=server,
                node_name=node,
                server_type="tars_python",
                template_name=EXAMPLE_TEMPLATE,
            ),
            [
                AdapterSpec(
                    servant=f"{app}.{server}.{name}",
                    endpoint=f"tcp -h {node} -p {port} -t 60000",
                )
                for name, port in servants.items()
            ],
            user="tarsus-up",
        )
    servant = f"{app}.{server}.{next(iter(servants))}"
    async with Communicator(settings.locator, cache_dir=None) as comm:
        admin = comm.string_to_proxy(
            AdminReg.AdminRegProxy,
            f"tars.tarsAdminRegistry.AdminRegObj@tcp -h {node} -p {settings.ports.admin}",
        ).with_options(timeout_ms=30000)
        query = comm.string_to_proxy(QueryF.QueryFProxy, settings.locator)
        if row.patch_version != package.md5:  # new, or the example changed since last time
            await _install(admin, app, server, node, str(package.archive), package.md5)
            ret, result = await admin.restartServer(app, server, node)
        else:
            ret, result = await admin.startServer(app, server, node)
        if ret != 0:
            raise RuntimeError(f"starting {app}.{server}: {result}")
        deadline = time.monotonic() + 30
        # Ready = the node saw the server come up (its first keepAlive) and the registry routes
        # to it. The database's present_state alone may still be what the last run left.
        while time.monotonic() < deadline:
            code, desc, _ = await admin.getServerState(app, server, node)
            if code == 0 and desc.presentStateInNode.lower() == "active":
                break
            await asyncio.sleep(0.02)
        while time.monotonic() < deadline:
            if await query.findObjectById(servant):
                return
            await asyncio.sleep(0.02)
    raise RuntimeError(f"{servant} did not become active within 30 s (see the node's logs)")


async def _install(
    admin: AdminReg.AdminRegProxy, app: str, server: str, node: str, archive: str, md5: str
) -> None:
    """``batchPatch`` the package, then follow ``getPatchPercent`` to the end."""
    req = NodeDescriptor.PatchRequest(
        appname=app,
        servername=server,
        nodename=node,
        version=md5,
        user="tarsus-up",
        md5=md5,
        filepath=archive,
    )
    ret, result = await admin.batchPatch(req)
    if ret != 0:
        raise RuntimeError(f"installing {app}.{server}: {result or f'error {ret}'}")
    judged, _, _ = await wait_patch(
        lambda: admin.getPatchPercent(app, server, node), timeout=300.0, interval=0.05
    )
    if judged.succeeded:
        return
    if judged.failed:
        raise RuntimeError(f"installing {app}.{server}: {judged.reason or 'failed'}")
    raise RuntimeError(f"installing {app}.{server}: not finished after 300 s")


def _print_ready(
    console: Console,
    settings: AllInOneSettings,
    store_url: str,
    elapsed: float,
    example: bool,
    web: WebShown | None = None,
) -> None:
    """What runs where; ``store_url`` as the store shows it (password hidden)."""
    p: Ports = settings.ports
    h = settings.host
    layout = "each framework service its own process" if settings.processes else "one process"
    console.print(f"[green]Tarsus {tarsus.__version__} is up[/green] in {elapsed:.2f} s ({layout})")
    console.print(f"  locator         tars.tarsregistry.QueryObj@tcp -h {h} -p {p.query}")
    for spec in FRAMEWORK_SERVICES:
        servants = ", ".join(
            f"{servant.rsplit('.', 1)[-1]} {port}"
            for servant, port in settings.service_ports(spec).items()
        )
        console.print(f"  {spec.server_id:<24}{servants}")
    if settings.run_node:
        console.print(f"  node agent      {h} (ServerObj {p.node})")
    console.print(f"  store           {store_url}")
    if web is not None:
        console.print(f"  web console     {web.url} (log in as admin; docs/console.md)")
        if web.admin_password is not None:
            console.print(
                f"  admin password  {web.admin_password} (shown this once: change it at "
                f"{web.url}/password)",
                soft_wrap=True,
            )
        console.print(f"  web token       {web.token} (in {web.token_file})", soft_wrap=True)
    if example:
        console.print(
            "  try:  tarsus call --locator "
            f"'tars.tarsregistry.QueryObj@tcp -h {h} -p {p.query}' "
            "--idl examples/hello/Hello.tars Test.HelloServer.HelloObj sayHello "
            '\'{"name":"x"}\''
        )
    console.print("Ctrl-C stops everything.")
