"""``NodeAgent``: the node process (upstream ``tarsnode``) — the supervisor wired to the framework.

What it adds to the :class:`~tarsus.framework.node.supervisor.Supervisor`:

- ``tars.tarsnode.ServerObj`` (19386), where the servers it runs send their heartbeats;
- registration with the registry (``RegistryObj.registerNode``, retried until it succeeds)
  and ``keepAlive`` with the machine's load every 10 s;
- the servers of this node from ``RegistryObj.getServers`` — or, with the registry out of
  reach, from the local cache, so services keep running and crashed ones are restarted
  whatever the framework's state; the full load is retried until the registry answers;
- every state change reported with ``updateServer`` as it happens, and every server's state
  resent with ``updateServerBatch`` every 60 s (so the registry converges after an outage);
- the push channel to the admin registries (``tarsus.framework.node.channel``), whose
  commands :class:`~tarsus.framework.node.commands.NodeCommands` carries out.

Every call to the framework is short and its failure is only logged: a framework outage
never stops a business process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tarsus
from tarsus.codec.constants import NOTIFY_OBJ, PROPERTY_OBJ, QUERY_OBJ, REGISTRY_OBJ
from tarsus.framework.node.channel import ADMIN_OBJ, AdminChannel
from tarsus.framework.node.commands import NodeCommands
from tarsus.framework.node.config import atomic_write
from tarsus.framework.node.memsize import DEFAULT_SAMPLE_INTERVAL, MemoryReporter
from tarsus.framework.node.servant import SERVER_OBJ, SERVER_OBJ_PORT, server_obj_servant
from tarsus.framework.node.settings import NodeSettings
from tarsus.framework.node.supervisor import Supervisor
from tarsus.protocol.gen import NodeDescriptor, QueryF, Registry, RegistryDescriptor
from tarsus.protocol.gen.EndpointF import EndpointF
from tarsus.rpc.application import Application
from tarsus.rpc.auth import Credentials
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint, EndpointError, parse_proxy
from tarsus.rpc.errors import ConnectError, InvokeTimeout, NoEndpointError, TarsError
from tarsus.rpc.notify import RemoteNotify
from tarsus.rpc.periodic import Backoff, Periodic
from tarsus.rpc.proxy import ServantProxy
from tarsus.rpc.security import ServantSecurity

__all__ = ["NodeAgent", "NodeAgentSettings"]

log = logging.getLogger("tarsus.framework.node.agent")

#: Under the data directory: the name the registry told a node started without one.
NODE_NAME_FILE = "node-name"

P = TypeVar("P", bound=ServantProxy)
#: Retries (s) of a registry that did not answer yet: the first, doubling up to the last.
FIRST_RETRY = 0.1
MAX_RETRY = 1.0


@dataclass
class NodeAgentSettings:
    """How a node agent finds the framework and where it keeps things."""

    #: ``tars.tarsregistry.QueryObj@tcp -h HOST -p 17890`` (several endpoints joined by ``:``)
    locator: str
    data_dir: Path
    #: the node's name in the registry; "" asks the registry for the address it sees us at
    node_name: str = ""
    #: the address ``ServerObj`` listens on and servers are told is theirs ("" = node_name)
    host: str = ""
    port: int = SERVER_OBJ_PORT
    #: ``<log_dir>/<app>/<server>/`` per server (default ``<data_dir>/app_log``)
    log_dir: Path | None = None
    #: stop the services on exit (``tarsus up``); upstream's tarsnode leaves them running
    stop_services_on_exit: bool = False
    keepalive_interval: float = 10.0
    sync_interval: float = 60.0
    admin_report_interval: float = 10.0
    #: how long one call to the registry may take (upstream 1000 ms for registerNode and
    #: updateServer)
    registry_timeout_ms: int = 1000
    #: how often the client side re-asks the registry for endpoints (ms)
    refresh_endpoint_interval_ms: int = 10000
    #: where the servers' ``<App.Server>.memsize`` properties go ("" turns them off)
    property_obj: str = PROPERTY_OBJ
    #: seconds between two looks at the servers' memory
    memsize_interval: float = DEFAULT_SAMPLE_INTERVAL
    #: extra :class:`NodeSettings` fields (monitor interval, heart timeout, limits, ...)
    supervision: Mapping[str, Any] = field(default_factory=dict)
    #: ``App.Server`` ids served by the process this agent runs in (``tarsus up``'s
    #: one-process layout): recorded in the store like any server, never started by us
    hosted: frozenset[str] = frozenset()
    #: where the node reports its servers' events (crash, restart, hang-kill, limiter,
    #: publish results; upstream tarsnode's ``notify``); "" reports none
    notify_obj: str = NOTIFY_OBJ
    #: by object name, the access keys / TLS files of the node's calls to framework objects
    #: served with ``-e 1`` or ``ssl`` (AdminRegObj's push channel, RegistryObj, ...;
    #: docs/security.md); empty on loopback installs
    security: Mapping[str, ServantSecurity] = field(default_factory=dict)
    #: the keys this node's own ``ServerObj`` takes (served with ``-e 1``; the servers it
    #: starts are given them); None: ServerObj open, as on loopback
    server_credentials: Credentials | None = None


class _Load:
    """``avg1`` = the OS 1-minute load; ``avg5``/``avg15`` = means of the last 5/15 samples
    (upstream tarsnode's definition, `PlatformInfo::getLoadInfo`)."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def sample(self) -> NodeDescriptor.LoadInfo:
        try:
            avg1 = os.getloadavg()[0]
        except OSError:
            avg1 = 0.0
        self.samples = [*self.samples[-14:], avg1]
        avg5 = sum(self.samples[-5:]) / len(self.samples[-5:])
        avg15 = sum(self.samples) / len(self.samples)
        return NodeDescriptor.LoadInfo(avg1, avg5, avg15, 0)


class NodeAgent:
    """Start with :meth:`start`; stop with :meth:`stop` (or ``run_forever`` until a signal)."""

    def __init__(self, settings: NodeAgentSettings) -> None:
        self.settings = settings
        self.node_name = settings.node_name
        self.communicator: Communicator | None = None
        self.app: Application | None = None
        self.supervisor: Supervisor | None = None
        self.commands: NodeCommands | None = None
        self.channel: AdminChannel | None = None
        self.memory: MemoryReporter | None = None
        self.registered = False
        self.loaded = False
        self._registry_lost = False
        #: ``App.Server`` -> its last state report, when it did not reach the registry
        self._unreported: dict[str, NodeDescriptor.ServerStateInfo] = {}
        self._registry: Registry.RegistryProxy | None = None
        self._query: QueryF.QueryFProxy | None = None
        self._load = _Load()
        #: the pace of registration attempts until the registry answers
        self._retry = Backoff(FIRST_RETRY, MAX_RETRY)
        self.loops = [
            Periodic(
                "tarsus-node-keepalive", self._keepalive_interval, self._keepalive, run_first=True
            ),
            Periodic("tarsus-node-sync", settings.sync_interval, self._sync_round),
        ]
        self._locator_cache: tuple[float, str | None] = (0.0, None)
        self._stop_requested = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        s = self.settings
        parse_proxy(s.locator)  # a bad locator is an error now, not a silent retry loop
        # Absolute: services run with their log directory as cwd, and their configs, venvs and
        # scripts name paths under here.
        data_dir = Path(s.data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        comm = Communicator(
            s.locator,
            cache_dir=data_dir / "cache",
            refresh_endpoint_interval_ms=s.refresh_endpoint_interval_ms,
            security=s.security,
        )
        self.communicator = comm
        self._registry = comm.string_to_proxy(Registry.RegistryProxy, REGISTRY_OBJ)
        self._query = comm.string_to_proxy(QueryF.QueryFProxy, s.locator)
        if not self.node_name:
            self.node_name = await self._learn_node_name(data_dir / NODE_NAME_FILE)
        host = s.host or self.node_name
        app = Application(comm)
        server_endpoint = f"tcp -h {host} -p {s.port} -t 60000"
        keys = s.server_credentials
        if keys is not None:
            server_endpoint += " -e 1"
        self.app = app
        # The supervisor is made before ServerObj listens, so no heartbeat is lost.
        node_settings = NodeSettings(
            node_name=self.node_name,
            data_dir=data_dir / "data",
            log_dir=Path(s.log_dir).resolve() if s.log_dir else data_dir / "app_log",
            locator=s.locator,
            node_endpoint=server_endpoint,
            node_keys=(keys.access_key, keys.secret_key) if keys else None,
            local_ip=host,
            **dict(s.supervision),
        )
        sup = Supervisor(
            node_settings,
            on_state=self._report_state,
            on_version=self._report_version,
            on_patched=self._report_patched,
            communicator=comm,
            notifier=RemoteNotify(
                comm, s.notify_obj, application="tars", server="tarsnode", node=self.node_name
            ),
        )
        self.supervisor = sup
        adapter = app.add_servant(
            server_obj_servant(sup),
            SERVER_OBJ,
            server_endpoint,
            security=ServantSecurity(keys) if keys else None,
        )
        await app.start()
        if s.port == 0:  # tests: tell servers the port actually bound
            sup.settings = node_settings.replace(node_endpoint=str(adapter.bound_endpoint))
        await sup.start()
        if s.property_obj:
            self.memory = MemoryReporter(
                comm,
                lambda: [(sp.server_id, sp.pid) for sp in sup.servers()],
                property_obj=s.property_obj,
                sample_interval=s.memsize_interval,
            )
            await self.memory.start()
        self.commands = NodeCommands(
            sup,
            self._load_descriptor,
            registry_locator=self._registry_locator,
            on_shutdown=self.request_stop,
        )
        await self._initial_load()
        self.channel = AdminChannel(
            comm,
            self.node_name,
            self.commands,
            resolve=self._admin_endpoints,
            interval=s.admin_report_interval,
        )
        self.channel.start()
        for periodic in self.loops:
            periodic.start()
        log.info(
            "node %s up: ServerObj on %s, %d server(s), registry %s",
            self.node_name,
            adapter.bound_endpoint,
            len(sup.servers()),
            "reachable" if self.loaded else "unreachable (running from the local cache)",
        )

    async def stop(self) -> None:
        for periodic in reversed(self.loops):
            await periodic.stop()
        if self.channel is not None:
            await self.channel.stop()
            self.channel = None
        memory, self.memory = self.memory, None
        if memory is not None:
            await memory.stop()
        if self.supervisor is not None:
            await self.supervisor.shutdown(stop_services=self.settings.stop_services_on_exit)
            self.supervisor = None
        if self.app is not None:
            await self.app.stop(drain_timeout=1.0)
            self.app = None
        if self.communicator is not None:
            await self.communicator.close()
            self.communicator = None

    def request_stop(self) -> None:
        """Ask ``run_forever`` to return (the admin registry's ``shutdown`` push)."""
        self._stop_requested.set()

    async def run_forever(self) -> None:
        """Run until :meth:`request_stop`, SIGTERM or SIGINT, then stop."""
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._stop_requested.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            await self.stop()

    # ------------------------------------------------------------------ the registry
    def _timed(self, proxy: P | None, timeout_ms: int | None = None) -> P:
        if proxy is None:
            raise RuntimeError("the node agent is not started")
        return proxy.with_options(timeout_ms=timeout_ms or self.settings.registry_timeout_ms)

    async def _learn_node_name(self, remembered: Path) -> str:
        """No name given: the address the registry sees us at, kept in ``remembered``; when
        the registry cannot be asked (the framework down while this agent restarts), the
        name it told the last time, so the node still comes up and guards its servers."""
        try:
            last = remembered.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            last = ""
        try:
            name = await self._ask_node_name()
        except RuntimeError as e:
            if not last:
                raise
            log.warning("%s; going on as %s, the name it told the last time", e, last)
            return last
        if name != last:
            atomic_write(remembered, f"{name}\n".encode())
        return name

    async def _ask_node_name(self) -> str:
        """The address the registry sees us at (upstream ``getClientIp``)."""
        where = self.settings.locator
        try:
            ret, ip = await self._timed(self._registry, 3000).getClientIp()
        except (ConnectError, NoEndpointError, InvokeTimeout) as e:
            raise RuntimeError(
                f"no node name given, and the registry cannot be reached to tell our address "
                f"({where}): {e} (with --node-name the node starts without it)"
            ) from e
        except TarsError as e:
            raise RuntimeError(
                f"no node name given and the registry ({where}) cannot tell our address: {e}; "
                f"pass --node-name"
            ) from e
        if ret != 0 or not ip:
            raise RuntimeError("the registry did not tell our address; pass --node-name")
        return str(ip)

    async def _register(self) -> bool:
        info = NodeDescriptor.NodeInfo(
            self.node_name,
            "",  # no NodeObj: commands arrive over the push channel (3.x nodes)
            "",
            0,
            0,
            str(self.settings.data_dir),
            tarsus.__version__,
            "",
            0,
        )
        try:
            ret = await self._timed(self._registry).registerNode(
                self.node_name, info, self._load.sample()
            )
        except TarsError as e:
            log.debug("registerNode failed: %s", e)
            return False
        if ret != 0:
            log.error(
                "the registry refused node %s (another node of that name is active)",
                self.node_name,
            )
            return False
        log.info("registered node %s", self.node_name)
        return True

    async def _initial_load(self) -> None:
        assert self.supervisor is not None
        try:
            descriptors = await self._timed(self._registry, 3000).getServers("", "", self.node_name)
        except TarsError as e:
            log.warning(
                "cannot load this node's servers from the registry (%s): "
                "running what the local cache has",
                e,
            )
            await self.supervisor.restore()
            return
        ours = [d for d in descriptors if not self._hosted(d.application, d.serverName)]
        await self.supervisor.load_all(ours, locator=await self._registry_locator())
        self.loaded = True

    def _hosted(self, app: str, server: str) -> bool:
        return f"{app}.{server}" in self.settings.hosted

    async def _load_descriptor(
        self, app: str, server: str
    ) -> RegistryDescriptor.ServerDescriptor | None:
        if self._hosted(app, server):
            log.warning("%s.%s runs inside this node's own process: not managed", app, server)
            return None
        try:
            found = await self._timed(self._registry, 3000).getServers(app, server, self.node_name)
        except TarsError as e:
            log.warning("getServers(%s.%s) failed: %s", app, server, e)
            return None
        return found[0] if found else None

    async def _registry_locator(self) -> str | None:
        """``${locator}`` for generated configs: QueryObj at every active registry
        (upstream ``findObjectById4All``), else None (the node's own); cached 60 s.

        The registries of the node's own locator are added when the answer lacks them
        (deliberately unlike upstream): a framework host's node asks while its own registry
        is not up yet, and its services must not get a locator without it."""
        at, cached = self._locator_cache
        if time.monotonic() - at < 60.0 and cached is not None:
            return cached
        try:
            ret, active, _inactive = await self._timed(self._query).findObjectById4All(QUERY_OBJ)
        except TarsError:
            return cached
        endpoints = _endpoint_strings(active)
        if ret == 0 and endpoints:
            known = {(ep.host, ep.port) for ep in map(Endpoint.parse, endpoints)}
            for ep in parse_proxy(self.settings.locator).endpoints:
                if (ep.host, ep.port) not in known:
                    endpoints.append(str(ep))
        locator = f"{QUERY_OBJ}@{':'.join(endpoints)}" if ret == 0 and endpoints else None
        self._locator_cache = (time.monotonic(), locator)
        return locator

    async def _admin_endpoints(self) -> list[str]:
        active = await self._timed(self._query, 3000).findObjectById(ADMIN_OBJ)
        return _endpoint_strings(active)

    async def _report_state(self, info: NodeDescriptor.ServerStateInfo) -> None:
        # Wire order as tarsnode sends it: node name first (upstream ServerObject::setState).
        key = f"{info.application}.{info.serverName}"
        try:
            ret = await self._timed(self._registry).updateServer(
                self.node_name, info.application, info.serverName, info
            )
        except TarsError:
            # Sent again once the registry answers: an upstream registry's batch would not
            # carry a new pid (it skips batch entries whose state it already has).
            self._unreported[key] = info
            raise
        if ret != 0:
            # The registry answered but could not store it (its database is away): sent
            # again at the next round.
            log.debug("updateServer of %s answered %s; sent again later", key, ret)
            self._unreported[key] = info
            return
        self._unreported.pop(key, None)

    async def _report_unreported(self) -> None:
        """Report again, as they are now, the servers whose state report failed while the
        registry was away."""
        pending, self._unreported = self._unreported, {}
        sup = self.supervisor
        if sup is None or not pending:
            return
        for info in sup.state_infos():
            if f"{info.application}.{info.serverName}" in pending:
                try:
                    await self._report_state(info)
                except TarsError as e:
                    log.debug("resending the state of %s failed: %s", info.serverName, e)

    async def _report_patched(self, app: str, server: str, version: str, user: str) -> None:
        result = Registry.PatchResult(app, server, self.node_name, version, user)
        await self._timed(self._registry, 3000).updatePatchResult(result)

    async def _report_version(self, app: str, server: str, version: str) -> None:
        await self._timed(self._registry).reportVersion(app, server, self.node_name, version)

    # ------------------------------------------------------------------ loops
    def _keepalive_interval(self) -> float:
        """Upstream's 10 s once registered and loaded (an outage after that too: nodes must
        not all hammer a registry coming back); until then the registry is retried sooner
        (0.1 s, doubling up to 1 s), so a node started together with its framework (``tarsus
        up --processes``) is registered as soon as the registry listens."""
        if self.registered and self.loaded:
            self._retry.reset()
            return self.settings.keepalive_interval
        return min(self._retry.next(), self.settings.keepalive_interval)

    async def _keepalive(self) -> None:
        try:
            if not self.registered:
                self.registered = await self._register()
                if self.registered and self.channel is not None:
                    self.channel.report_now()  # take commands now, not at the next round
            if self.registered:
                await self._keep_alive()
                if self._registry_lost:
                    # Back after an outage: what changed meanwhile reaches the registry
                    # now, not at the next 60 s batch.
                    self._registry_lost = False
                    log.info("the registry answers again: sending every server's state")
                    await self._report_unreported()
                    await self._sync_all()
            if not self.loaded and self.registered:
                await self._initial_load()
                if self.loaded:
                    await self._sync_all()
        except TarsError as e:
            if not self._registry_lost:
                log.warning("the registry does not answer (%s); services keep running", e)
            self._registry_lost = True

    async def _keep_alive(self) -> None:
        """``keepAlive``; one that fails is sent again at once, which goes to the next
        registry: a framework host cut off does not cost the node a heartbeat (nor, after
        ``nodeTimeout``, its routes; docs/failover.md)."""
        try:
            await self._timed(self._registry).keepAlive(self.node_name, self._load.sample())
        except TarsError as e:
            log.debug("keepAlive failed (%s): sending it again", e)
            await self._timed(self._registry).keepAlive(self.node_name, self._load.sample())

    async def _sync_round(self) -> None:
        try:
            await self._report_unreported()
            await self._sync_all()
        except Exception as e:
            log.debug("updateServerBatch failed: %s", e)

    async def _sync_all(self) -> None:
        """Every server's state in one ``updateServerBatch`` (upstream every 60 s)."""
        sup = self.supervisor
        if sup is None:
            return
        states = sup.state_infos()
        if states:
            await self._timed(self._registry, 3000).updateServerBatch(states)


def _endpoint_strings(endpointfs: Iterable[EndpointF] | None) -> list[str]:
    out: list[str] = []
    for ef in endpointfs or ():
        try:
            out.append(str(Endpoint.from_endpointf(ef)))
        except EndpointError as e:
            log.warning("the registry sent an unusable endpoint: %s", e)
    return out
