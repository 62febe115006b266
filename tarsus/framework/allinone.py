"""The whole framework on one machine: what ``tarsus up`` runs, in one of two layouts.

The framework services — the registry (``tars.tarsregistry``: ``QueryObj`` 17890,
``RegistryObj`` 17891) and the admin registry (``tars.tarsAdminRegistry``: ``AdminRegObj``
12000) — are recorded in the store as ordinary servers of application ``tars`` on this node,
with upstream's object names and ports (TarsFramework ``deploy/framework/sql/tars_servers.sql``),
so the admin registry lists them and upstream TarsWeb's framework list shows them; with a web
port, the HTTP app too, as ``tars.tarsweb`` (:mod:`tarsus.web.service`). A node agent
for this machine (``ServerObj`` 19386) runs the business services as processes of their own.

* **One process** (the default, for a laptop): the services are served by this process. Their
  rows show ``active`` with this process's pid while it runs and ``inactive`` once it stopped;
  the node agent knows they live in its own process and never starts or stops them. Without
  a node (``run_node=False``) they are not recorded.
* **Processes** (``processes=True``, upstream's production layout): each service is its own
  process (``python -m tarsus.framework.<service> --config=FILE``) under the node agent, which
  brings them up from its local cache when nothing else runs yet (upstream ``tarsnode``
  adopting the framework services it finds in ``t_server_conf``), restarts them when they die
  and lets them be stopped, started and listed like any server.

Stopping (Ctrl-C) stops the node agent *and the services it started* — the framework's own
in the processes layout — then what runs in this process: nothing is left running. (A node
agent started with ``tarsus node`` leaves its services running when it exits, as upstream's
tarsnode does.) See docs/running.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tarsus.codec.constants import ADMIN_REG_OBJ as ADMIN_OBJ
from tarsus.codec.constants import (
    ADMIN_REG_PORT,
    ALARM_OBJ,
    ALARM_PORT,
    CONFIG_EXT_OBJ,
    CONFIG_EXT_PORT,
    CONFIG_OBJ,
    CONFIG_PORT,
    LOG_EXT_OBJ,
    LOG_EXT_PORT,
    LOG_OBJ,
    LOG_PORT,
    NODE_SERVER_PORT,
    NOTIFY_OBJ,
    NOTIFY_PORT,
    PATCH_OBJ,
    PATCH_PORT,
    PROPERTY_OBJ,
    PROPERTY_PORT,
    QUERY_OBJ,
    QUERY_PORT,
    QUERY_PROPERTY_OBJ,
    QUERY_PROPERTY_PORT,
    QUERY_STAT_OBJ,
    QUERY_STAT_PORT,
    REGISTRY_PORT,
    STAT_OBJ,
    STAT_PORT,
)
from tarsus.framework.admin import AdminRegistry, AdminSettings, add_admin
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.admin.server import ADMIN_SPEC
from tarsus.framework.alarm import ALARM_SPEC, AlarmService, add_alarm
from tarsus.framework.config import CONFIG_SPEC, ConfigService, add_config_center
from tarsus.framework.log import LOG_SPEC, LogService, LogSettings, add_log
from tarsus.framework.monitor.query_service import (
    QUERY_PROPERTY_SPEC,
    QUERY_STAT_SPEC,
    add_query_property,
    add_query_stat,
)
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.node.agent import NodeAgent, NodeAgentSettings
from tarsus.framework.node.cache import CacheEntry, NodeCache
from tarsus.framework.node.settings import NodeSettings
from tarsus.framework.notify import NOTIFY_SPEC, NotifyService, add_notify
from tarsus.framework.patch import PATCH_SPEC, PatchService, PatchSettings, add_patch
from tarsus.framework.property import PROPERTY_SPEC, add_property
from tarsus.framework.registry import Registry, RegistrySettings, add_registry
from tarsus.framework.registry.registry_obj import server_descriptor
from tarsus.framework.registry.service import REGISTRY_SPEC
from tarsus.framework.security import FrameworkAuth
from tarsus.framework.service import FRAMEWORK_APP, FrameworkService, ServiceSpec
from tarsus.framework.stat import STAT_SPEC, add_stat
from tarsus.protocol.gen import AdminReg, QueryF
from tarsus.rpc.application import Application
from tarsus.rpc.auth import Credentials
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import TarsError
from tarsus.rpc.notify import RemoteNotify
from tarsus.store import Store, open_store
from tarsus.store.engine import normalize_url
from tarsus.store.servers import AdapterSpec, ServerSpec
from tarsus.web.service import WEB_SPEC, first_admin, web_profile

__all__ = [
    "FRAMEWORK_SERVICES",
    "AllInOne",
    "AllInOneSettings",
    "Ports",
    "framework_services",
    "left_running",
    "not_routed",
]

log = logging.getLogger("tarsus.framework.allinone")

#: The framework services ``tarsus up`` runs.
FRAMEWORK_SERVICES: tuple[ServiceSpec, ...] = (
    REGISTRY_SPEC,
    ADMIN_SPEC,
    PATCH_SPEC,
    CONFIG_SPEC,
    LOG_SPEC,
    NOTIFY_SPEC,
    ALARM_SPEC,
    STAT_SPEC,
    PROPERTY_SPEC,
    QUERY_STAT_SPEC,
    QUERY_PROPERTY_SPEC,
)
#: The template of their rows; their own settings are in the private profile.
FRAMEWORK_TEMPLATE = "tars.tarspython.default"
#: Seconds to wait for the framework services to answer and the node to connect.
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Ports:
    """Upstream's default ports (TarsFramework ``deploy/framework/conf``)."""

    query: int = QUERY_PORT
    registry: int = REGISTRY_PORT
    admin: int = ADMIN_REG_PORT
    node: int = NODE_SERVER_PORT
    patch: int = PATCH_PORT
    config: int = CONFIG_PORT
    log: int = LOG_PORT
    notify: int = NOTIFY_PORT
    alarm: int = ALARM_PORT
    stat: int = STAT_PORT
    property: int = PROPERTY_PORT
    querystat: int = QUERY_STAT_PORT
    queryproperty: int = QUERY_PROPERTY_PORT
    #: ours, beside upstream's: the operators' objects of tars.tarsconfig and tars.tarslog
    configext: int = CONFIG_EXT_PORT
    logext: int = LOG_EXT_PORT


@dataclass
class AllInOneSettings:
    data_dir: Path = Path(".tarsus")
    #: ``None``: SQLite at ``<data_dir>/tarsus.db``; else a SQLAlchemy-style URL
    db_url: str | None = None
    #: the address the framework listens on and advertises (and the node's name)
    host: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    run_node: bool = True
    #: make a store in an existing but empty SQLite file (else refused: see open_store)
    create_store: bool = False
    #: each framework service its own process under the node agent (needs ``run_node``)
    processes: bool = False
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    #: seconds per stat/property window (tars.tarsstat, tars.tarsproperty; upstream 300,
    #: ours 60 by default: see :class:`~tarsus.framework.monitor.settings.IngestSettings`)
    stat_window: int = 60
    #: the registries of every framework host (``QueryObj@tcp -h A -p 17890:tcp -h B ...``),
    #: for this host's node agent; None: this host's registry only (docs/failover.md)
    cluster_locator: str | None = None
    #: the package store's files; None: ``<data_dir>/patchs``. Framework hosts share one
    #: (upstream: a shared patch directory) so a package uploaded to one is on the other
    patch_directory: Path | None = None
    #: a secured install (beyond loopback): the framework's keys, its operating objects
    #: served with ``-e 1`` (:mod:`tarsus.framework.security`; processes layout only)
    auth: FrameworkAuth | None = None
    #: the keys this host's node agent takes heartbeats with on its ``ServerObj`` (``-e 1``;
    #: every server it starts is given them); None: open, as on loopback
    node_server_credentials: Credentials | None = None
    #: the HTTP port of the web app, ``tars.tarsweb`` (:mod:`tarsus.web.service`): its own
    #: process under the node in the processes layout, served by the caller (``tarsus up``)
    #: in the one-process layout; None: no web app (its row, if any, set inactive)
    web_port: int | None = None

    @property
    def locator(self) -> str:
        """This host's registry."""
        return f"{QUERY_OBJ}@tcp -h {self.host} -p {self.ports.query}"

    @property
    def node_locator(self) -> str:
        """What this host's node agent asks: every framework host's registry."""
        return self.cluster_locator or self.locator

    @property
    def node_dir(self) -> Path:
        return self.data_dir / "node"

    @property
    def patch_dir(self) -> Path:
        """The package store's files (upstream's ``patchs/``: ``tars/``, ``tars.upload/``)."""
        return self.patch_directory or self.data_dir / "patchs"

    @property
    def remote_log_dir(self) -> Path:
        """The remote logs (tars.tarslog; upstream's ``remote_app_log``)."""
        return self.data_dir / "remote_app_log"

    def service_ports(self, spec: ServiceSpec) -> dict[str, int]:
        """``servant -> port`` of a framework service, with this run's ports."""
        by_servant = {
            REGISTRY_SPEC.servants[0][0]: self.ports.query,
            REGISTRY_SPEC.servants[1][0]: self.ports.registry,
            ADMIN_OBJ: self.ports.admin,
            PATCH_OBJ: self.ports.patch,
            CONFIG_OBJ: self.ports.config,
            CONFIG_EXT_OBJ: self.ports.configext,
            LOG_OBJ: self.ports.log,
            LOG_EXT_OBJ: self.ports.logext,
            NOTIFY_OBJ: self.ports.notify,
            ALARM_OBJ: self.ports.alarm,
            STAT_OBJ: self.ports.stat,
            PROPERTY_OBJ: self.ports.property,
            QUERY_STAT_OBJ: self.ports.querystat,
            QUERY_PROPERTY_OBJ: self.ports.queryproperty,
        }
        return {servant: by_servant.get(servant, port) for servant, port in spec.servants}


async def not_routed(
    query: QueryF.QueryFProxy, services: tuple[ServiceSpec, ...], timeout_ms: int = 1000
) -> list[str]:
    """The objects of ``services`` the registry behind ``query`` routes to no active
    endpoint yet (asked as any client would): a framework is ready when this is empty, so that
    an operator's first command (a package upload: ``tars.tarspatch.PatchObj``) finds what it
    calls."""
    names = [obj for spec in services for obj, _port in spec.servants]
    proxy = query.with_options(timeout_ms=timeout_ms)
    found = await asyncio.gather(*(proxy.findObjectById(name) for name in names))
    return [name for name, endpoints in zip(names, found, strict=True) if not endpoints]


def framework_services(settings: AllInOneSettings) -> tuple[ServiceSpec, ...]:
    """The framework services of this run: :data:`FRAMEWORK_SERVICES`, and ``tars.tarsweb``
    when it has a web port."""
    return FRAMEWORK_SERVICES + ((WEB_SPEC,) if settings.web_port is not None else ())


class AllInOne:
    """Start with :meth:`start`, stop with :meth:`stop` (or ``async with``)."""

    def __init__(self, settings: AllInOneSettings) -> None:
        if settings.processes and not settings.run_node:
            raise ValueError("the processes layout runs the framework under a node agent")
        if settings.auth is not None and not settings.processes:
            raise ValueError("a secured framework (auth) runs in the processes layout")
        self.settings = settings
        self.store: Store | None = None
        #: this process's servants (one-process layout only)
        self.app: Application | None = None
        self.registry: Registry | None = None
        self.admin: AdminRegistry | None = None
        self.channels: NodeChannels | None = None
        self.patch: PatchService | None = None
        self.config: ConfigService | None = None
        self.log: LogService | None = None
        self.notify: NotifyService | None = None
        self.alarm: AlarmService | None = None
        self.node: NodeAgent | None = None
        #: the console's first ``admin`` password, when the processes layout made that user
        #: before starting ``tars.tarsweb`` (shown once by the caller); else None
        self.web_admin_password: str | None = None

    async def start(self, progress: Callable[[str], None] = lambda _msg: None) -> None:
        s = self.settings
        s.data_dir = Path(s.data_dir).resolve()
        s.data_dir.mkdir(parents=True, exist_ok=True)
        progress("opening the store")
        self.store = await open_store(s.db_url, data_dir=s.data_dir, create=s.create_store)
        try:
            if s.processes:
                await self._start_processes(self.store, progress)
            else:
                await self._start_here(self.store, progress)
        except BaseException:
            await self.stop()
            raise

    # ------------------------------------------------------------------ one process

    async def _start_here(self, store: Store, progress: Callable[[str], None]) -> None:
        s = self.settings
        progress("starting the framework services")
        if s.run_node:
            # Without our node, another node agent may take this host's name; it would try
            # to start rows it cannot run. Upstream records them with the framework host's node.
            await record_framework(store, s)
        # Through the locator (our own registry), the admin registry reaches the package
        # store (tars.tarspatch.PatchObj) by name, as in its own process.
        app = Application(Communicator(s.locator, cache_dir=None))
        self.app = app
        self.registry = add_registry(
            app,
            store,
            query_endpoint=f"tcp -h {s.host} -p {s.ports.query} -t 60000",
            registry_endpoint=f"tcp -h {s.host} -p {s.ports.registry} -t 60000",
            settings=s.registry,
        )
        self.channels = NodeChannels(self_ip=s.host)
        patch_endpoint = f"tcp -h {s.host} -p {s.ports.patch} -t 60000"
        admin_settings = s.admin
        if admin_settings.patch_obj == PATCH_OBJ:
            # The package store serves in this process: the admin registry calls it at its
            # endpoint, also when no node records it for the registry (run_node=False).
            admin_settings = replace(admin_settings, patch_obj=f"{PATCH_OBJ}@{patch_endpoint}")
        self.admin = add_admin(
            app,
            store,
            self.channels,
            endpoint=f"tcp -h {s.host} -p {s.ports.admin} -t 60000",
            settings=admin_settings,
        )
        self.patch = add_patch(app, PatchSettings.under(s.patch_dir), endpoint=patch_endpoint)
        self.config = add_config_center(
            app,
            store,
            endpoint=f"tcp -h {s.host} -p {s.ports.config} -t 60000",
            ext_endpoint=f"tcp -h {s.host} -p {s.ports.configext} -t 60000",
        )
        self.log = add_log(
            app,
            LogSettings(directory=s.remote_log_dir),
            endpoint=f"tcp -h {s.host} -p {s.ports.log} -t 60000",
            ext_endpoint=f"tcp -h {s.host} -p {s.ports.logext} -t 60000",
        )
        self.notify = add_notify(
            app, store, endpoint=f"tcp -h {s.host} -p {s.ports.notify} -t 60000"
        )
        # The query servants it reads through the locator, as in its own process.
        self.alarm = add_alarm(
            app,
            store,
            endpoint=f"tcp -h {s.host} -p {s.ports.alarm} -t 60000",
            communicator=app.communicator,
        )
        ingest = IngestSettings(source_id=s.host, window_s=s.stat_window)
        add_stat(app, store, ingest, endpoint=f"tcp -h {s.host} -p {s.ports.stat} -t 60000")
        add_property(app, store, ingest, endpoint=f"tcp -h {s.host} -p {s.ports.property} -t 60000")
        add_query_stat(app, store, endpoint=f"tcp -h {s.host} -p {s.ports.querystat} -t 60000")
        add_query_property(
            app, store, endpoint=f"tcp -h {s.host} -p {s.ports.queryproperty} -t 60000"
        )
        # Their events go to NotifyObj here, as in their own processes (where the config's
        # notify names it); sent until the application stops.
        notify_obj = f"{NOTIFY_OBJ}@tcp -h {s.host} -p {s.ports.notify} -t 60000"
        reporters: list[FrameworkService] = [self.registry, self.admin]
        for service in reporters:
            service.notifier = RemoteNotify(
                app.communicator,
                notify_obj,
                application=FRAMEWORK_APP,
                server=service.spec.name,
                node=s.host,
            )

        async def close_notifiers(_app: Application) -> None:
            for service in reporters:
                if service.notifier is not None:
                    await service.notifier.close(timeout=0.5)

        app.on_destroy(close_notifiers)
        await app.start()
        # Announce our own servants and route them now, not at the first timer tick: the
        # node agent's first lookups (RegistryObj, AdminRegObj) come right after this.
        await self.registry.heartbeat()
        await self.admin.heartbeat.beat()
        if s.run_node:
            await _set_present(store, s, "active", os.getpid())
        await self.registry.load(full=False)
        if s.run_node:
            progress("starting the node agent")
            self.node = NodeAgent(
                self._node_settings(hosted=frozenset(f.server_id for f in framework_services(s)))
            )
            await self.node.start()
            await self._wait_ready()

    # ------------------------------------------------------------------ processes

    async def _start_processes(self, store: Store, progress: Callable[[str], None]) -> None:
        s = self.settings
        progress("recording the framework services")
        node_settings = self._node_settings(hosted=frozenset())
        launchers = _stage_launchers(node_settings.data_dir / "data", framework_services(s))
        await record_framework(store, s, launchers=launchers)
        await _seed_node_cache(store, s)
        if s.web_port is not None:
            # before the node starts it, so that the password is ours to show
            self.web_admin_password = await first_admin(store, s.data_dir)
        progress("starting the node agent and, under it, the framework services")
        self.node = NodeAgent(node_settings)
        await self.node.start()
        progress("waiting for the framework services")
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        """Until our node has loaded its servers from the registry, the registry routes the
        admin registry, which reaches the node over its push channel, and every framework
        object (asked as any client would)."""
        s = self.settings
        deadline = time.monotonic() + READY_TIMEOUT
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.node is None or not self.node.loaded:
                last_error = "the node has not loaded its servers from the registry"
            else:
                # A fresh client each attempt: one whose first connection was refused (the
                # registry was not listening yet) shields that endpoint for a while.
                security = s.auth.client_security() if s.auth else None
                async with Communicator(s.locator, cache_dir=None, security=security) as comm:
                    try:
                        if not await self._node_takes_commands(comm):
                            last_error = "the node does not take commands yet"
                        else:
                            query = comm.string_to_proxy(QueryF.QueryFProxy, s.locator)
                            missing = await not_routed(query, framework_services(s))
                            if not missing:
                                return
                            last_error = f"the registry routes no {', '.join(missing)} yet"
                    except TarsError as e:
                        last_error = str(e)
            await asyncio.sleep(0.05)
        raise RuntimeError(
            f"the framework services did not come up within {READY_TIMEOUT:.0f} s "
            f"({last_error}); see {s.node_dir / 'app_log' / FRAMEWORK_APP}"
        )

    async def _node_takes_commands(self, comm: Communicator) -> bool:
        """The registry routes the admin registry, which pushes a ``ping`` to our node and
        gets its answer."""
        s = self.settings
        query = comm.string_to_proxy(QueryF.QueryFProxy, s.locator)
        found = await query.with_options(timeout_ms=1000).findObjectById(ADMIN_OBJ)
        if not found:
            return False
        admin = comm.string_to_proxy(
            AdminReg.AdminRegProxy, f"{ADMIN_OBJ}@{Endpoint.from_endpointf(found[0])}"
        )
        ok, _result = await admin.with_options(timeout_ms=6000).pingNode(s.host)
        return bool(ok)

    # ------------------------------------------------------------------ both

    def _node_settings(self, *, hosted: frozenset[str]) -> NodeAgentSettings:
        s = self.settings
        return NodeAgentSettings(
            locator=s.node_locator,
            node_name=s.host,
            host=s.host,
            port=s.ports.node,
            data_dir=s.node_dir,
            stop_services_on_exit=True,
            hosted=hosted,
            security=s.auth.client_security() if s.auth else {},
            server_credentials=s.node_server_credentials,
        )

    def keep_services(self) -> None:
        """Let :meth:`stop` leave the services this host's node agent runs — the framework's
        own in the processes layout — running, for the next agent to adopt (an upgrade in
        place hands the framework over this way; docs/install.md)."""
        if self.node is not None:
            self.node.settings.stop_services_on_exit = False

    async def stop(self) -> None:
        node, self.node = self.node, None
        if node is not None:
            with contextlib.suppress(Exception):
                await node.stop()
        app, self.app = self.app, None
        if app is not None:
            await app.stop(drain_timeout=1.0)
        store, self.store = self.store, None
        if store is not None:
            if app is not None and self.settings.run_node:  # ours stopped with this process
                with contextlib.suppress(Exception):
                    await _set_present(store, self.settings, "inactive", 0)
            await store.close()

    async def __aenter__(self) -> AllInOne:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ---------------------------------------------------------------------- the tars rows


def framework_profile(settings: AllInOneSettings, spec: ServiceSpec) -> str:
    """The private profile of a framework service's row: where the store is, and what
    ``tarsus up`` was told (the store URL holds its password, as upstream's templates of the
    framework services hold theirs; the registry's node timeout as given, see
    :meth:`~tarsus.framework.registry.service.Registry.from_config`)."""
    auth = settings.auth
    lines = [
        "<tars>",
        "  <application>",
        "    <server>",
        "      logLevel = INFO",  # the template's DEBUG would log every SQL statement
        # a secured install: the keys its -e 1 adapters take, and those it signs with
        *(auth.adapter_domains(s for s, _port in spec.servants) if auth else []),
        "    </server>",
        *(["    <client>", *auth.client_domains(), "    </client>"] if auth else []),
        "  </application>",
    ]
    if spec.uses_store:
        url = normalize_url(settings.db_url, settings.data_dir)
        lines += ["  <db>", f"    url = {url.render_as_string(hide_password=False)}", "  </db>"]
    if spec is PATCH_SPEC:  # upstream's tars.tarspatch keys
        patch = PatchSettings.under(settings.patch_dir)
        lines += [
            f"  directory = {patch.directory}",
            f"  uploadDirectory = {patch.upload_directory}",
        ]
    if spec is LOG_SPEC:  # upstream's tars.tarslog keys
        lines += ["  <log>", f"    logpath = {settings.remote_log_dir}", "  </log>"]
    if spec is STAT_SPEC or spec is PROPERTY_SPEC:  # ours: windows of any length, in seconds
        lines += ["  <tarsus>", f"    window = {settings.stat_window}", "  </tarsus>"]
    if spec is WEB_SPEC and settings.web_port is not None:
        admin_endpoint = f"tcp -h {settings.host} -p {settings.ports.admin}"
        lines += web_profile(
            host=settings.host,
            port=settings.web_port,
            data_dir=settings.data_dir,
            locator=settings.node_locator,
            # -e 1 when secured: the keys are sent to an endpoint that says it takes them
            admin=f"{ADMIN_OBJ}@{_secured(settings, ADMIN_OBJ, admin_endpoint)}",
            node_keys=auth is not None,
        )
    if spec is REGISTRY_SPEC:
        r = settings.registry
        lines += [
            "  <tarsus>",  # ours: without upstream's 15 s floor of /tars/reap<nodeTimeout>
            f"    nodeTimeout = {r.node_timeout:g}",
            f"    nodeTimeoutInterval = {r.node_sweep_interval:g}",
            "  </tarsus>",
        ]
    lines.append("</tars>")
    return "\n".join(lines) + "\n"


async def record_framework(
    store: Store, settings: AllInOneSettings, *, launchers: dict[str, Path] | None = None
) -> None:
    """Record the framework services as servers of application ``tars`` on this node
    (``t_server_conf`` / ``t_adapter_conf``, upstream's objects and ports), replacing what a
    previous run recorded. ``launchers`` (server name -> file): what the node runs for each
    (processes layout); without, the rows carry no executable (one-process layout). Without
    a web port, a ``tars.tarsweb`` row an earlier run recorded is set inactive, so that no
    node starts it."""
    if settings.web_port is None and await store.servers.get(
        FRAMEWORK_APP, WEB_SPEC.name, settings.host
    ):
        await store.servers.set_setting_state(
            FRAMEWORK_APP, WEB_SPEC.name, settings.host, "inactive"
        )
        await store.servers.update_present(
            settings.host, FRAMEWORK_APP, WEB_SPEC.name, "inactive", 0
        )
    for spec in framework_services(settings):
        exe = str(launchers[spec.name]) if launchers else ""
        ports = settings.service_ports(spec)
        await store.servers.deploy(
            ServerSpec(
                application=FRAMEWORK_APP,
                server_name=spec.name,
                node_name=settings.host,
                template_name=FRAMEWORK_TEMPLATE,
                profile=framework_profile(settings, spec),
                exe_path=exe,
            ),
            [
                AdapterSpec(servant=servant, endpoint=_secured(settings, servant, endpoint))
                for servant, endpoint in spec.endpoints(settings.host, ports).items()
            ],
            replace=True,
        )
        await store.servers.set_setting_state(FRAMEWORK_APP, spec.name, settings.host, "active")


def _secured(settings: AllInOneSettings, servant: str, endpoint: str) -> str:
    """``endpoint`` as a secured install serves ``servant`` (``-e 1``, maybe ``ssl``)."""
    return endpoint if settings.auth is None else settings.auth.endpoint(servant, endpoint)


async def _set_present(store: Store, settings: AllInOneSettings, state: str, pid: int) -> None:
    for spec in framework_services(settings):
        await store.servers.update_present(settings.host, FRAMEWORK_APP, spec.name, state, pid)


def _stage_launchers(node_data: Path, specs: tuple[ServiceSpec, ...]) -> dict[str, Path]:
    """Each service's launcher under ``<node data>/tars.<service>/bin/`` (where upstream's
    installer puts each framework binary); rewritten when it changed."""
    out = {}
    for spec in specs:
        path = node_data / spec.server_id / "bin" / f"{spec.name}.py"
        text = spec.launcher()
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        out[spec.name] = path
    return out


def left_running(settings: AllInOneSettings, spec: ServiceSpec) -> bool:
    """Whether the process of ``spec`` an earlier processes-layout run left (``tarsus up``
    killed without its Ctrl-C) still runs, for this run's node to adopt from its cache: what
    holds that service's ports is then its own process, not another program."""
    from tarsus.framework.node.process import ProcessHandle

    cache_file = _node_where(settings).cache_file
    if not cache_file.is_file():
        return False
    entry = NodeCache(cache_file).get(spec.server_id)
    if entry is None or entry.pid <= 0:
        return False
    return ProcessHandle.adopt(entry.pid, entry.create_time or None) is not None


def _node_where(settings: AllInOneSettings) -> NodeSettings:
    """Where the node of the processes layout keeps its files (its cache among them)."""

    node_data = settings.node_dir / "data"
    return NodeSettings(
        node_name=settings.host, data_dir=node_data, log_dir=node_data.parent / "app_log"
    )


async def _seed_node_cache(store: Store, settings: AllInOneSettings) -> None:
    """Put the framework services' descriptors, as the registry would send them, into the
    node's local cache, enabled: a node that cannot reach a registry starts what its cache
    holds, which is how the framework comes up (upstream: tarsnode's ``serversCache.dat``).
    The pid of a process still running from an earlier run is kept, so it is adopted; the
    web app's entry is dropped when this run has none."""
    node = settings.host
    lookup = Registry(store)  # only its database reads, no loops
    cache = NodeCache(_node_where(settings).cache_file)
    if settings.web_port is None:
        cache.remove(WEB_SPEC.server_id)
    for spec in framework_services(settings):
        views = await lookup.servers_of(FRAMEWORK_APP, spec.name, node)
        descriptor: Any = server_descriptor(views[0])
        old = cache.get(spec.server_id)
        pid, created = (old.pid, old.create_time) if old is not None else (0, 0.0)
        cache.put(
            spec.server_id, CacheEntry(descriptor, enabled=True, pid=pid, create_time=created)
        )
