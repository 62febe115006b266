"""The node's supervision: the :class:`Supervisor` owns one
:class:`~tarsus.framework.node.server_process.ServerProcess` per server of this node (upstream
``ServerFactory`` and ``KeepAliveThread``, with the ``NodeImp``/``ServerImp`` entry points).

It loads servers (config generation, with the ports of every server in view), restores them
from the local cache, runs the monitor that looks at every server each ``monitor_interval``,
routes commands and heartbeats to the right server, installs packages, records every server
in the cache and hands every state change to ``on_state`` (the registry's ``updateServer``),
in order, without ever blocking supervision. What one server does (its states, starts, stops,
heartbeats, crashes and hangs) is :mod:`.server_process`'s; the two meet only through
:class:`~tarsus.framework.node.server_process.ServerHost` and the server's public methods.
See docs/node.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tarsus.framework.node.cache import CacheEntry, NodeCache
from tarsus.framework.node.config import (
    GeneratedConfig,
    ServerLayout,
    generate_config,
    remove_server_files,
)
from tarsus.framework.node.container import ContainerEngine
from tarsus.framework.node.errors import NodeError, NodeErrorCode
from tarsus.framework.node.package import LocalPackageSource, PackageSource
from tarsus.framework.node.server_process import DOWN, InternalState, ServerProcess
from tarsus.framework.node.settings import NodeSettings
from tarsus.protocol.gen import AdminF, NodeDescriptor, NodeF, RegistryDescriptor
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.notify import RemoteNotify
from tarsus.rpc.periodic import Backoff, Periodic

__all__ = ["PatchedCallback", "StateCallback", "Supervisor", "VersionCallback"]

log = logging.getLogger("tarsus.framework.node.supervisor")

#: ``on_state(info)``: info is a ``ServerStateInfo`` (application, serverName, nodeName,
#: serverState, processId, settingState, exState).
StateCallback = Callable[[NodeDescriptor.ServerStateInfo], Awaitable[None]]
#: ``on_patched(app, server, version, user)``: a package was installed (upstream: the node
#: then calls ``Registry.updatePatchResult``).
PatchedCallback = Callable[[str, str, str, str], Awaitable[None]]
#: ``on_version(app, server, version)``: a server reported its Tars library version.
VersionCallback = Callable[[str, str, str], Awaitable[None]]


class Supervisor:
    """Every server of this node: load, start, stop, watch, restart, report.

    Typical wiring (the node application)::

        sup = Supervisor(settings, on_state=push_to_registry)
        await sup.start()
        # registry reachable: for desc in registry.getServers(...): await sup.load(desc)
        # registry down:      await sup.restore()
        ...
        await sup.shutdown(stop_services=False)   # services keep running, as upstream
    """

    def __init__(
        self,
        settings: NodeSettings,
        *,
        on_state: StateCallback | None = None,
        on_version: VersionCallback | None = None,
        on_patched: PatchedCallback | None = None,
        cache: NodeCache | None = None,
        package_source: PackageSource | None = None,
        communicator: Communicator | None = None,
        notifier: RemoteNotify | None = None,
    ) -> None:
        self.settings = settings
        #: the servers' events to notify (tars.tarsnotify), None to report none
        self.notifier = notifier
        self.on_state = on_state
        self.on_version = on_version
        self.on_patched = on_patched
        self.cache = cache if cache is not None else NodeCache(settings.cache_file)
        self.package_source: PackageSource = package_source or LocalPackageSource()
        self._own_communicator = communicator is None
        self.communicator = communicator or Communicator(cache_dir=None)
        self._servers: dict[str, ServerProcess] = {}
        #: starts (and finds, after a node restart) the servers of run type container
        self.containers = ContainerEngine(
            settings.container_engine, timeout=settings.container_timeout
        )
        self._load_lock = asyncio.Lock()
        self._reports: asyncio.Queue[NodeDescriptor.ServerStateInfo] = asyncio.Queue()
        #: server id -> the resend of its failed report (``_retry_report``), and the pace
        self._report_retries: dict[str, asyncio.TimerHandle] = {}
        self._report_backoff: dict[str, Backoff] = {}
        self._monitor = Periodic(
            "tarsus-node-monitor",
            lambda: self.settings.monitor_interval,
            self._monitor_pass,
            run_first=True,
        )
        self._reporter: asyncio.Task[None] | None = None
        self.started_at = time.monotonic()
        #: wall time (s) of the monitor's last pass (``ServerF.getLatestKeepAliveTime``)
        self.latest_keepalive_time = int(time.time())
        #: monitor passes done since :meth:`start`
        self.passes = 0
        self.closing = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Run the monitor and the state reporter."""
        if not self._monitor.running:
            self.started_at = time.monotonic()
            self._monitor.start()
            # Not a Periodic: it waits on the queue of state reports, not on a timer.
            self._reporter = asyncio.get_running_loop().create_task(
                self._report_loop(), name="tarsus-node-reporter"
            )

    async def shutdown(self, stop_services: bool = False) -> None:
        """Stop supervising. Services keep running (as upstream) unless ``stop_services``;
        either way the cache says what runs, for the next node start to adopt."""
        self.closing = True
        await self._monitor.stop()
        servers = list(self._servers.values())
        for sp in servers:
            sp.cancel_tasks()
        if stop_services:
            await asyncio.gather(*(sp.stop_for_exit() for sp in servers))
        for sp in servers:
            sp.release()
            self.save(sp)
        for retry in self._report_retries.values():
            retry.cancel()
        self._report_retries.clear()
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.report_timeout):
                    await self._reports.join()
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        if self.notifier is not None:
            await self.notifier.close(timeout=self.settings.report_timeout)
        await self.containers.close()
        if self._own_communicator:
            await self.communicator.close()

    # -- servers -------------------------------------------------------------------------

    def get(self, app: str, server: str) -> ServerProcess | None:
        return self._servers.get(f"{app}.{server}")

    def require(self, app: str, server: str) -> ServerProcess:
        sp = self.get(app, server)
        if sp is None:
            raise NodeError(f"server {app}.{server} is not exist", NodeErrorCode.LOAD_SERVICE_DESC)
        return sp

    def servers(self) -> list[ServerProcess]:
        return list(self._servers.values())

    async def load(
        self, descriptor: RegistryDescriptor.ServerDescriptor, *, locator: str | None = None
    ) -> ServerProcess:
        """Take ``descriptor`` (new or changed) and (re)generate the server's config
        (upstream ``CommandLoad``). A server first seen by this node process picks up a
        process still running for it from the cache. ``locator``: the registry's current
        QueryObj list for ``${locator}`` (else the node's own)."""
        desc = descriptor
        sid = f"{desc.application}.{desc.serverName}"
        sp = self._servers.get(sid)
        new = sp is None
        if sp is None:
            cached = self.cache.get(sid)
            sp = ServerProcess(self, desc, operator_stopped=cached is not None and cached.stopped)
            self._servers[sid] = sp

        async def generate(desc: Any) -> GeneratedConfig:
            async with self._load_lock:
                used = self._used_ports(exclude=sid)
                return await asyncio.to_thread(
                    generate_config, desc, self.settings, used_ports=used, locator=locator
                )

        try:
            await sp.load(desc, generate)
        except BaseException:
            if new and not sp.loaded:
                self._servers.pop(sid, None)
            raise
        if new and not await sp.adopt_container():
            sp.adopt_cached(
                self.cache.get(sid), wait_until=self.started_at + self.settings.startup_grace
            )
        self.save(sp)
        self._monitor.run_now()
        return sp

    def _used_ports(self, *, exclude: str) -> set[int]:
        return {port for sid, sp in self._servers.items() if sid != exclude for port in sp.ports}

    async def load_all(
        self,
        descriptors: Iterable[RegistryDescriptor.ServerDescriptor],
        *,
        locator: str | None = None,
    ) -> list[ServerProcess]:
        """A full load (upstream loads every server of the node at start): load each
        descriptor; servers no longer listed are forgotten when they are not running."""
        loaded = []
        names = set()
        for desc in descriptors:
            try:
                sp = await self.load(desc, locator=locator)
            except NodeError as e:
                log.error("%s.%s: %s", desc.application, desc.serverName, e)
                continue
            loaded.append(sp)
            names.add(sp.server_id)
        for sid, sp in list(self._servers.items()):
            if sid not in names and sp.handle is None and sp.state == InternalState.INACTIVE:
                log.info("%s: no longer on this node: forgotten", sid)
                del self._servers[sid]
                self.cache.remove(sid)
        return loaded

    async def restore(self) -> list[ServerProcess]:
        """Load every server from the local cache (the registry is unreachable): configs
        regenerated with the node's own locator, running processes adopted, dead enabled
        ones started."""
        restored = []
        for sid, entry in self.cache.entries().items():
            desc = entry.descriptor.replace(settingState="active" if entry.enabled else "inactive")
            try:
                restored.append(await self.load(desc))
            except NodeError as e:
                log.error("%s: cannot restore from the cache: %s", sid, e)
        self._monitor.run_now()
        return restored

    # -- commands ------------------------------------------------------------------------

    async def start_server(self, app: str, server: str) -> str:
        """Start (an operator's request: enables the server, resets the limiter)."""
        return await self.require(app, server).start_by_operator()

    async def stop_server(self, app: str, server: str) -> str:
        """Stop (an operator's request: disables the server until an operator starts it)."""
        return await self.require(app, server).stop_by_operator()

    async def notify(self, app: str, server: str, command: str) -> str:
        """``AdminF.notify(command)`` on the server's admin object; its answer."""
        sp = self.require(app, server)
        if sp.state in (InternalState.INACTIVE, InternalState.DESTROYING) or sp.handle is None:
            raise NodeError(
                f"server state is {sp.state.value}, cannot notify", NodeErrorCode.SERVICE_STATE
            )
        if not sp.runtime.local:
            raise NodeError("the server has no admin endpoint (local)", NodeErrorCode.PARAMETER)
        proxy = self.admin_proxy(sp.runtime.local).with_options(
            timeout_ms=self.settings.notify_timeout_ms
        )
        try:
            result: str = await proxy.notify(command)
        except Exception as e:
            raise NodeError(f"notify failed: {e}") from e
        return result

    async def destroy(self, app: str, server: str) -> str:
        """Forget an Inactive server and delete its files (server dir, logs, backups)."""
        sp = self.require(app, server)
        await sp.destroy(self._remove_files)
        self._servers.pop(sp.server_id, None)
        self.cache.remove(sp.server_id)
        return "server is destroyed"

    def _remove_files(self, layout: ServerLayout) -> None:
        remove_server_files(layout, self.settings)

    # -- packages ------------------------------------------------------------------------

    async def begin_install(
        self,
        app: str,
        server: str,
        location: str,
        *,
        md5: str = "",
        version: str = "",
        user: str = "",
        source: PackageSource | None = None,
    ) -> asyncio.Task[str]:
        """Check that the server can take a package now and start installing it; the task
        gives the result (or raises :class:`NodeError`). Progress: :meth:`patch_info`.
        ``source``: where ``location`` is fetched from (default: :attr:`package_source`)."""
        sp = self.require(app, server)
        await sp.begin_patch(version)
        task = asyncio.get_running_loop().create_task(
            self._install(sp, location, md5, user, source or self.package_source),
            name=f"tarsus-node-install-{sp.server_id}",
        )
        sp.track(task)
        return task

    async def install(
        self, app: str, server: str, location: str, *, md5: str = "", version: str = ""
    ) -> str:
        """Install a package and wait for the result."""
        task = await self.begin_install(app, server, location, md5=md5, version=version)
        return await task

    async def _install(
        self, sp: ServerProcess, location: str, md5: str, user: str, source: PackageSource
    ) -> str:
        ok = await sp.install(location, md5, source)
        if ok and self.on_patched is not None:
            try:
                await self.on_patched(sp.app, sp.server, sp.patch.version, user)
            except Exception as e:  # the package is installed: a lost record is no failure
                log.warning("%s: recording the patch result failed: %s", sp.server_id, e)
        sp.start_if_due(DOWN)
        if not ok:
            raise NodeError(sp.patch.result)
        return sp.patch.result

    def patch_info(self, app: str, server: str) -> NodeDescriptor.PatchInfo:
        """The ``PatchInfo`` of the server's last (or current) installation."""
        return self.require(app, server).patch.to_patch_info()

    # -- ServerF (heartbeats from the servers) ---------------------------------------------

    def keep_alive(self, info: NodeF.ServerInfo) -> int:
        sp = self.get(info.application, info.serverName)
        if sp is None:
            log.debug("keepAlive from unknown server %s.%s", info.application, info.serverName)
            return -1
        sp.on_keep_alive(int(info.pid), info.adapter or "")
        return 0

    def keep_activing(self, info: NodeF.ServerInfo) -> int:
        sp = self.get(info.application, info.serverName)
        if sp is None:
            log.debug("keepActiving from unknown server %s.%s", info.application, info.serverName)
            return -1
        sp.on_keep_activing(int(info.pid))
        return 0

    async def report_version(self, app: str, server: str, version: str) -> int:
        if self.get(app, server) is None:
            return -1
        if self.on_version is not None:
            try:
                async with asyncio.timeout(self.settings.report_timeout):
                    await self.on_version(app, server, version)
            except Exception as e:
                log.debug("on_version failed for %s.%s: %s", app, server, e)
        return 0

    def state_infos(self) -> list[NodeDescriptor.ServerStateInfo]:
        """Every server's ``ServerStateInfo``, for a periodic ``updateServerBatch`` (upstream
        resends all states every 60 s, so a registry that missed a report catches up)."""
        return [sp.state_info() for sp in self._servers.values()]

    # -- helpers -------------------------------------------------------------------------

    def admin_proxy(self, local: str) -> AdminF.AdminFProxy:
        """A proxy on a server's ``AdminObj`` (a :class:`ServerHost` duty)."""
        return self.communicator.string_to_proxy(AdminF.AdminFProxy, f"AdminObj@{local}")

    def save(self, sp: ServerProcess) -> None:
        """Record ``sp`` in the local cache (a :class:`ServerHost` duty)."""
        if sp.server_id not in self._servers:
            return
        desc = sp.descriptor
        desc = desc.replace(settingState="active" if sp.enabled else "inactive")
        handle = sp.handle
        self.cache.put(
            sp.server_id,
            CacheEntry(
                descriptor=desc,
                enabled=sp.enabled,
                pid=handle.pid if handle is not None else 0,
                create_time=handle.create_time if handle is not None else 0.0,
                cmdline=handle.cmdline() if handle is not None else (),
                stopped=sp.operator_stopped,
            ),
        )

    def event(self, sp: ServerProcess, message: str) -> None:
        """Report an event of ``sp`` to notify, queued (a :class:`ServerHost` duty)."""
        if self.notifier is not None:
            self.notifier.report(message, application=sp.app, server=sp.server)

    def report(self, sp: ServerProcess) -> None:
        """Queue ``sp``'s state for ``on_state`` (a :class:`ServerHost` duty)."""
        if self.on_state is not None:
            retry = self._report_retries.pop(sp.server_id, None)
            if retry is not None:  # this report supersedes the one waiting to be resent
                retry.cancel()
            self._reports.put_nowait(sp.state_info())

    async def _report_loop(self) -> None:
        while True:
            info = await self._reports.get()
            server_id = f"{info.application}.{info.serverName}"
            try:
                if self.on_state is not None:
                    async with asyncio.timeout(self.settings.report_timeout):
                        await self.on_state(info)
                self._report_backoff.pop(server_id, None)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                wait = self._retry_report(server_id)
                log.warning("reporting %s state failed (again in %g s): %s", server_id, wait, e)
            finally:
                self._reports.task_done()

    def _retry_report(self, server_id: str) -> float:
        """Send ``server_id``'s state again later (its state then), unless a newer report
        comes first. Returns the wait."""
        backoff = self._report_backoff.setdefault(
            server_id, Backoff(self.settings.report_retry, self.settings.report_retry_max)
        )
        wait = backoff.next()
        old = self._report_retries.pop(server_id, None)
        if old is not None:
            old.cancel()
        self._report_retries[server_id] = asyncio.get_running_loop().call_later(
            wait, self._resend, server_id
        )
        return wait

    def _resend(self, server_id: str) -> None:
        self._report_retries.pop(server_id, None)
        sp = self._servers.get(server_id)
        if sp is not None and not self.closing and self.on_state is not None:
            self._reports.put_nowait(sp.state_info())

    def check_now(self) -> None:
        """Run a monitor pass now instead of at the next tick."""
        self._monitor.run_now()

    async def _monitor_pass(self) -> None:
        now = time.monotonic()
        self.latest_keepalive_time = int(time.time())
        for sp in list(self._servers.values()):
            try:
                sp.check(now)
            except Exception:
                log.exception("%s: check failed", sp.server_id)
        self.passes += 1
