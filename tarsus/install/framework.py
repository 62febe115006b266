"""``tarsus install framework``: a framework host, from nothing or over an earlier install.

In order, each step keeping what is already right (docs/install.md):

1. the ports the framework will listen on are free (unless it is this install's, running);
2. the database, its tables and the framework's own user (:mod:`~tarsus.install.database`);
3. the keys and certificates (:mod:`~tarsus.install.pki`);
4. the wheelhouse new nodes install from (:mod:`~tarsus.install.wheelhouse`);
5. ``/etc/tarsus/framework.toml`` and the ``tarsus-framework`` unit; when the framework
   listens beyond loopback, also ``/etc/tarsus/client.conf`` (the CLI's keys) and the join
   token new nodes show for theirs (docs/security.md);
6. the framework started (systemd or detached) — or, with ``--foreground``, run by the caller —
   and waited for until its registry routes the admin registry.

What runs is upstream's production layout (``tarsus up --processes``, docs/running.md): this
host's node agent with each framework service its own process under it, and the web app.
A newer Tarsus over an older install migrates the database (step 2), hands the running
framework process over to the new code and restarts the framework services one at a time
(:mod:`~tarsus.install.upgrade`); business services keep answering all along, as they never
depend on the framework for calls already routed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

import tarsus
from tarsus.codec.constants import QUERY_OBJ
from tarsus.framework.allinone import FRAMEWORK_SERVICES, Ports, not_routed
from tarsus.framework.security import SECURED_OBJECTS, FrameworkAuth
from tarsus.install.database import DatabaseGrant, provision
from tarsus.install.errors import DatabaseUnreachable, InstallError
from tarsus.install.layout import Layout
from tarsus.install.pki import ensure_keys, ensure_pair, read_pair
from tarsus.install.ports import check_ports_free, default_host
from tarsus.install.settings import FrameworkSettings, load_settings, write_private
from tarsus.install.units import Service, verify_unit
from tarsus.install.wheelhouse import build_wheelhouse
from tarsus.rpc.auth import Credentials
from tarsus.rpc.tls import TlsConfig

__all__ = [
    "FrameworkOptions",
    "framework_auth",
    "framework_health",
    "install_framework",
    "is_loopback",
    "node_server_credentials",
    "wait_framework_ready",
]

#: seconds the install waits for a started framework to route its admin registry
READY_TIMEOUT = 120.0


@dataclass
class FrameworkOptions:
    db: str
    layout: Layout = field(default_factory=Layout)
    host: str | None = None
    ports: Ports = field(default_factory=Ports)
    web_port: int = 3000
    db_user_host: str = "%"
    #: take the wheelhouse's wheels from here (no index needed)
    wheels: Path | None = None
    rebuild_wheels: bool = False
    wheelhouse: bool = True
    #: serve the guarded objects on ``ssl`` endpoints too (beyond loopback only)
    tls: bool = False
    #: write and check the service unit (not for ``--foreground``: containers run no systemd)
    unit: bool = True
    #: a secured framework's join token, given (a container's secret) instead of generated
    join_token: str = ""
    #: seconds to wait for a database that does not answer yet (a container started beside it)
    db_wait: float = 0.0


@dataclass(frozen=True)
class FrameworkInstall:
    settings: FrameworkSettings
    #: the settings or the unit changed: a running framework must restart to take them
    changed: bool
    service: Service
    #: only the Tarsus version changed: an upgrade in place (:mod:`tarsus.install.upgrade`)
    upgrade: bool = False


def _previous(path: Path) -> FrameworkSettings | None:
    if not path.is_file():
        return None
    try:
        found = load_settings(path)
    except InstallError:
        return None
    return found if isinstance(found, FrameworkSettings) else None


def _same_server(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    return (ua.host, ua.port or 3306, ua.database) == (ub.host, ub.port or 3306, ub.database)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def framework_auth(auth_dir: Path, tls_dir: Path | None = None) -> FrameworkAuth:
    """The framework's keys as an install wrote them (:class:`InstallError` if missing); with
    ``tls_dir`` (``--tls``) also its certificates, for ``ssl`` endpoints."""
    try:
        access, secret = read_pair(auth_dir / "accesskey", auth_dir / "secretkey")
    except OSError as e:
        raise InstallError(f"the framework's keys: {e}; run `tarsus install framework`") from None
    tls = None
    if tls_dir is not None:
        files = [tls_dir / name for name in ("ca.crt", "server.crt", "server.key")]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise InstallError(f"missing {', '.join(missing)}; run `tarsus install framework`")
        ca, cert, key = (str(f) for f in files)
        tls = TlsConfig(ca=ca, cert=cert, key=key)
    return FrameworkAuth(Credentials(access, secret), tls=tls)


def node_server_credentials(auth_dir: Path) -> Credentials:
    """The keys the framework host's node agent takes on its ServerObj."""
    d = auth_dir / "node"
    try:
        return Credentials(*read_pair(d / "accesskey", d / "secretkey"))
    except OSError as e:
        raise InstallError(f"the node's keys: {e}; run `tarsus install framework`") from None


def _secure_files(
    layout: Layout, data_dir: Path, join_token: str = "", *, tls: bool = False
) -> list[str]:
    """The node's ServerObj keys, ``client.conf`` and the join token (made when missing;
    ``join_token``, when given, replaces another)."""
    from tarsus.web.settings import WebSettings
    from tarsus.web.token import TokenError, ensure_token, write_new_token

    made = []
    if ensure_pair(layout.node_auth_dir / "accesskey", layout.node_auth_dir / "secretkey", "node"):
        made.append("node keys")
    auth = framework_auth(layout.auth_dir, layout.tls_dir if tls else None)
    if write_private(layout.client_keys_file, auth.client_config()):
        made.append(str(layout.client_keys_file))
    token_file = WebSettings(data_dir=data_dir).join_token_file
    existed = token_file.is_file()
    try:
        if join_token and (not existed or ensure_token(token_file) != join_token):
            write_new_token(token_file, join_token)
            return [*made, "join token (given)"]
        ensure_token(token_file)
    except TokenError as e:
        raise InstallError(str(e)) from None
    if not existed:
        made.append("join token")
    return made


async def _provision(
    opts: FrameworkOptions, password: str | None, say: Callable[[str], None]
) -> DatabaseGrant:
    """:func:`provision`, trying again for ``opts.db_wait`` seconds while no database answers
    (wrong credentials and missing rights fail at once)."""
    deadline = time.monotonic() + opts.db_wait
    while True:
        try:
            return await provision(opts.db, password=password, user_host=opts.db_user_host)
        except DatabaseUnreachable as e:
            if time.monotonic() >= deadline:
                raise
            say(f"database: waiting ({e})")
            await asyncio.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def port_map(ports: Ports, web_port: int) -> dict[str, int]:
    return {**dataclasses.asdict(ports), "web": web_port}


async def install_framework(
    opts: FrameworkOptions, say: Callable[[str], None] = lambda _m: None
) -> FrameworkInstall:
    """Steps 1-5 (the module docstring); the caller starts or runs the framework."""
    layout = opts.layout
    service = Service("framework", layout)
    previous = _previous(service.settings_file)
    host = opts.host or (previous.host if previous else None) or default_host()
    if service.running_pid() is None and not service.uses_systemd():
        check_ports_free(host, port_map(opts.ports, opts.web_port))
    password = None
    if previous is not None and _same_server(previous.db, opts.db):
        password = make_url(previous.db).password  # keep the running framework's login
    say("database: creating or migrating")
    grant = await _provision(opts, str(password) if password else None, say)
    say(f"database: {'created' if grant.created else 'kept'}, tables at head, user {grant.user}")
    keys = ensure_keys(layout.tls_dir, layout.auth_dir, host)
    say(f"keys: {len(keys.made)} files made in {layout.etc_dir}" if keys.made else "keys: kept")
    if opts.wheelhouse:
        built = await asyncio.to_thread(
            build_wheelhouse, layout.wheelhouse_dir, source=opts.wheels, rebuild=opts.rebuild_wheels
        )
        say(f"wheelhouse: {'built' if built else 'up to date'} in {layout.wheelhouse_dir}")
    secure = not is_loopback(host)
    settings = FrameworkSettings(
        version=tarsus.__version__,
        host=host,
        data_dir=layout.data_dir,
        db=grant.url,
        web_port=opts.web_port,
        ports=opts.ports,
        secure=secure,
        tls=secure and opts.tls,
    )
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    if secure:
        made = _secure_files(layout, layout.data_dir, opts.join_token, tls=opts.tls)
        how = "ssl and -e 1" if opts.tls else "-e 1"
        say(f"secured ({how} on {', '.join(SECURED_OBJECTS)}): {', '.join(made) or 'kept'}")
    changed = write_private(service.settings_file, settings.render())
    if opts.unit:
        changed = service.write_unit() or changed
        complaint = verify_unit(service.unit_file)
        if complaint:
            raise InstallError(f"systemd-analyze verify {service.unit_file}:\n{complaint}")
    say(f"settings: {service.settings_file} ({'changed' if changed else 'unchanged'})")
    upgrade = (
        previous is not None
        and previous.version != settings.version
        and dataclasses.replace(previous, version=settings.version) == settings
    )
    return FrameworkInstall(settings=settings, changed=changed, service=service, upgrade=upgrade)


async def _answers(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def framework_health(settings: FrameworkSettings, timeout_ms: int = 1000) -> str:
    """What is wrong with a running framework ("" when its registry routes every framework
    object and its web app answers): the readiness of an install, a container's health
    check."""
    from tarsus.protocol.gen import QueryF
    from tarsus.rpc.communicator import Communicator
    from tarsus.rpc.errors import TarsError

    locator = f"{QUERY_OBJ}@tcp -h {settings.host} -p {settings.ports.query}"
    async with Communicator(locator, cache_dir=None) as comm:
        query = comm.string_to_proxy(QueryF.QueryFProxy, locator)
        try:
            missing = await not_routed(query, FRAMEWORK_SERVICES, timeout_ms)
            if missing:
                return f"the registry routes no {', '.join(missing)} yet"
        except TarsError as e:
            return f"the registry at {settings.host}:{settings.ports.query}: {e}"
    if not await _answers(settings.host, settings.web_port):
        return f"the web app does not answer on port {settings.web_port}"
    return ""


async def wait_framework_ready(settings: FrameworkSettings, service: Service) -> float:
    """Until the registry routes the admin registry and the web app (which serves new nodes
    their ``node.sh``) answers (seconds waited); :class:`InstallError`
    with the end of the framework's log if it died or did not come up."""
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < READY_TIMEOUT:
        dead = service.died()
        if dead is not None:
            raise InstallError(f"the framework stopped while starting; its log ends:\n{dead}")
        if not service.ready_file.is_file():  # written once the node agent takes commands
            await asyncio.sleep(0.2)
            last = "the framework process is not up yet"
            continue
        last = await framework_health(settings)
        if not last:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise InstallError(
        f"the framework did not come up within {READY_TIMEOUT:.0f} s ({last}); see "
        f"{service.layout.log_file('framework')}"
    )
