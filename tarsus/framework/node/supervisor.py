"""The node's supervision: one :class:`ServerProcess` state machine per server, and the
:class:`Supervisor` that owns them (upstream ``ServerObject``, ``ServerFactory``,
``KeepAliveThread`` and the ``Command*`` classes, §4.3-4.7).

States (what the registry sees in parentheses): ``Inactive``, ``Activating``, ``Active``,
``Deactivating``, ``Destroying``, and the node-internal ``Loading`` and ``Patching``
(``Inactive``). A start goes Inactive → Activating → Active on the server's first keepAlive
(for ``not_tars`` servers: as soon as the process runs); a stop goes → Deactivating →
Inactive. Every state or pid change is handed to ``on_state`` (the registry's
``updateServer``), in order, without ever blocking supervision.

What keeps servers running:

- **crashes**: the node waits on each process (pidfd, or a poll for processes it did not
  start), so an exit is seen at once, and an enabled server is started again right away;
- **hangs**: an Active server that has sent no keepAlive for its ``hearttimeout`` (ms; the
  node's ``heart_timeout`` when unset) is stopped gracefully and started again;
- **stuck starts**: a server the node started that is still Activating, without heartbeats,
  after ``activating-timeout`` is killed (and started again);
- **crash loops**: the activation limiter (:mod:`.limiter`) holds node-initiated starts back.

Auto-starts need the server enabled (``setting_state`` active), loaded, installed, not in a
transitional state and not limited. Manual starts (``start_server``) enable the server and
skip the limiter; manual stops disable it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarsus.framework.node.cache import CacheEntry, NodeCache
from tarsus.framework.node.config import (
    ConfigGenError,
    RuntimeConfig,
    ServerLayout,
    generate_config,
)
from tarsus.framework.node.errors import NodeError, NodeErrorCode
from tarsus.framework.node.launch import LaunchError, launch_spec
from tarsus.framework.node.limiter import ActivationLimiter
from tarsus.framework.node.package import (
    LocalPackageSource,
    PackageError,
    PackageSource,
    install_package,
)
from tarsus.framework.node.process import ProcessHandle
from tarsus.framework.node.settings import NodeSettings
from tarsus.protocol.gen import AdminF, NodeDescriptor, NodeF, RegistryDescriptor
from tarsus.rpc.communicator import Communicator

__all__ = [
    "InternalState",
    "PatchStatus",
    "ServerProcess",
    "StateCallback",
    "Supervisor",
    "VersionCallback",
]

log = logging.getLogger("tarsus.framework.node.supervisor")

#: ``on_state(info)``: info is a ``ServerStateInfo`` (application, serverName, nodeName,
#: serverState, processId, settingState, exState).
StateCallback = Callable[[NodeDescriptor.ServerStateInfo], Awaitable[None]]
#: ``on_patched(app, server, version, user)``: a package was installed (upstream: the node
#: then calls ``Registry.updatePatchResult``).
PatchedCallback = Callable[[str, str, str, str], Awaitable[None]]
#: ``on_version(app, server, version)``: a server reported its Tars library version.
VersionCallback = Callable[[str, str, str], Awaitable[None]]

ADMIN_ADAPTER = "AdminAdapter"


class InternalState(enum.Enum):
    INACTIVE = "Inactive"
    ACTIVATING = "Activating"
    ACTIVE = "Active"
    DEACTIVATING = "Deactivating"
    DESTROYING = "Destroying"
    DESTROYED = "Destroyed"
    LOADING = "Loading"
    PATCHING = "Patching"

    @property
    def transitional(self) -> bool:
        """Upstream's test: the name ends in "ing"."""
        return self.value.endswith("ing")

    @property
    def wire(self) -> int:
        """The ``ServerState`` sent to the registry (internal states are ``Inactive``)."""
        return _WIRE.get(self, 0)


_WIRE = {
    InternalState.INACTIVE: 0,
    InternalState.ACTIVATING: 1,
    InternalState.ACTIVE: 2,
    InternalState.DEACTIVATING: 3,
    InternalState.DESTROYING: 4,
    InternalState.DESTROYED: 5,
}


@dataclass
class PatchStatus:
    """A server's package installation, as ``getPatchPercent`` reports it (``PatchInfo``)."""

    patching: bool = False
    percent: int = 0
    modify_time: int = 0
    version: str = ""
    result: str = ""
    succ: bool = False

    def to_patch_info(self) -> NodeDescriptor.PatchInfo:
        return NodeDescriptor.PatchInfo(
            bPatching=self.patching,
            iPercent=self.percent,
            iModifyTime=self.modify_time,
            sVersion=self.version,
            sResult=self.result,
            bSucc=self.succ,
        )


class ServerProcess:
    """One server on this node: its descriptor, config, process and state."""

    def __init__(
        self, supervisor: Supervisor, descriptor: RegistryDescriptor.ServerDescriptor
    ) -> None:
        self.supervisor = supervisor
        self.app: str = descriptor.application
        self.server: str = descriptor.serverName
        self.descriptor = descriptor
        self.layout: ServerLayout | None = None
        self.runtime = RuntimeConfig()
        #: ports this server uses on the node (adapters and admin)
        self.ports: frozenset[int] = frozenset()
        self.state = InternalState.INACTIVE
        #: the state to go back to after Patching
        self.last_state = InternalState.INACTIVE
        self.handle: ProcessHandle | None = None
        self.enabled: bool = descriptor.settingState == "active"
        self.loaded = False
        #: False once a start found nothing to run (upstream ``patched``)
        self.installed = True
        #: the node started the current process (upstream ``_started``)
        self.node_started = False
        #: monotonic time of the last start
        self.start_time = 0.0
        #: monotonic time of the last heartbeat, overall and per adapter
        self.last_heartbeat = 0.0
        self.adapter_heartbeats: dict[str, float] = {}
        #: no auto-start before this monotonic time (waiting for a keepAlive after node start)
        self.wait_until = 0.0
        #: a keepAlive came while Loading/Patching hid the state: Activating may become Active
        self._beat_while_hidden = False
        self.version = ""
        self.message = ""
        self.patch = PatchStatus()
        self.limiter = ActivationLimiter(supervisor.settings.limits)
        #: serializes start, stop, load, destroy and the install bookkeeping
        self.lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- views ---------------------------------------------------------------------------

    @property
    def server_id(self) -> str:
        return f"{self.app}.{self.server}"

    @property
    def pid(self) -> int:
        return self.handle.pid if self.handle is not None else 0

    @property
    def is_tars(self) -> bool:
        return (self.descriptor.serverType or "").strip().lower() != "not_tars"

    @property
    def settings(self) -> NodeSettings:
        return self.supervisor.settings

    def heart_timeout(self) -> float:
        return self.runtime.heart_timeout or self.settings.heart_timeout

    def activating_timeout(self) -> float:
        return self.runtime.activating_timeout or self.settings.activating_timeout

    def deactivating_timeout(self) -> float:
        low, high = self.settings.deactivating_timeout_range
        value = self.runtime.deactivating_timeout or self.settings.deactivating_timeout
        return min(max(value, low), high)

    def state_info(self) -> NodeDescriptor.ServerStateInfo:
        """The ``ServerStateInfo`` the registry and ``getStateInfo`` get."""
        state = self.state.wire if self.runtime.enable_working else 0
        ex: dict[str, str] = {}
        if self.handle is not None:
            started = int(self.handle.create_time)
            ex = {"PROC_START_TIME": str(started), "RUN_SECONDS": str(int(time.time()) - started)}
        server_state = NodeDescriptor.ServerState
        return NodeDescriptor.ServerStateInfo(
            serverState=server_state(state),
            processId=self.pid,
            nodeName=self.settings.node_name,
            application=self.app,
            serverName=self.server,
            settingState=server_state.Active if self.enabled else server_state.Inactive,
            exState=ex,
        )

    def __repr__(self) -> str:
        return f"<ServerProcess {self.server_id} {self.state.value} pid={self.pid}>"

    # -- bookkeeping ---------------------------------------------------------------------

    def _set_state(self, state: InternalState, *, report: bool = True) -> None:
        if state != self.state:
            log.info("%s: %s -> %s", self.server_id, self.state.value, state.value)
            self.state = state
        if report:
            self.supervisor._report(self)

    def _beat(self, adapter: str = "") -> None:
        now = time.monotonic()
        self.last_heartbeat = now
        if not adapter:
            for name in self.adapter_heartbeats:
                self.adapter_heartbeats[name] = now
        elif adapter in self.adapter_heartbeats:
            self.adapter_heartbeats[adapter] = now
        else:
            log.debug("%s: keepAlive from unknown adapter %r", self.server_id, adapter)

    def _reset_adapters(self) -> None:
        now = time.monotonic()
        names = [n for n in (self.descriptor.adapters or {}) if n] + [ADMIN_ADAPTER]
        self.adapter_heartbeats = {n: self.adapter_heartbeats.get(n, now) for n in names}

    def heartbeat_stale(self, now: float | None = None) -> str | None:
        """Why the server counts as hung (None if it does not): the overall heartbeat, or
        any adapter's, older than the heart timeout (upstream ``isTimeOut``)."""
        now = time.monotonic() if now is None else now
        timeout = self.heart_timeout()
        if now - self.last_heartbeat > timeout:
            return f"no keepAlive for {now - self.last_heartbeat:.0f}s"
        for name, beat in self.adapter_heartbeats.items():
            if now - beat > timeout:
                return f"no keepAlive from {name} for {now - beat:.0f}s"
        return None

    def _attach(self, handle: ProcessHandle, *, node_started: bool) -> None:
        self.handle = handle
        self.node_started = node_started
        self.start_time = time.monotonic()
        self.wait_until = 0.0  # its process is known: no more waiting for one to report
        self._beat()
        handle.watch(self._on_exit, self.settings.adopt_poll_interval)

    def _detach(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.stop_watching()
        self.node_started = False

    def _save(self) -> None:
        self.supervisor._save(self)

    def _hide_state(self, state: InternalState) -> InternalState:
        """Enter Loading or Patching (not reported); returns the state to come back to."""
        previous = self.state
        self._beat_while_hidden = False
        self._set_state(state, report=False)
        return previous

    def _unhide_state(self, previous: InternalState, *, report: bool) -> None:
        """Leave Loading/Patching for ``previous``, or for Active when the server reported
        itself alive meanwhile."""
        if self.state not in (InternalState.LOADING, InternalState.PATCHING):
            return
        target = previous
        alive = self.handle is not None and self.handle.alive()
        if previous == InternalState.ACTIVATING and self._beat_while_hidden and alive:
            target = InternalState.ACTIVE
        self._beat_while_hidden = False
        if target != previous:
            report = True
        self._set_state(target, report=report)

    def _spawn_task(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"tarsus-node-{name}-{self.server_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- process exit --------------------------------------------------------------------

    def _on_exit(self, handle: ProcessHandle) -> None:
        if handle is not self.handle:
            return
        how = handle.describe_exit()
        if self.state in (InternalState.DEACTIVATING, InternalState.DESTROYING):
            log.info("%s: pid %d %s", self.server_id, handle.pid, how)
            return  # the stop in progress finishes the job
        tail = self._output_tail() if handle.returncode != 0 else ""
        log.warning(
            "%s: pid %d %s (state %s)%s",
            self.server_id,
            handle.pid,
            how,
            self.state.value,
            f"; its output ended with:\n{tail}" if tail else "",
        )
        self.message = f"pid {handle.pid} {how}"
        self._detach()
        if self.state == InternalState.PATCHING:
            self.last_state = InternalState.INACTIVE
            self._save()
            return
        self._set_state(InternalState.INACTIVE)
        self._save()
        if self.can_auto_start():
            self._spawn_task(self.auto_start("[alarm] down, server is inactive"), "restart")

    def _output_tail(self, lines: int = 5, limit: int = 8192) -> str:
        """The last lines the server wrote to its output log (why it died, usually)."""
        if self.layout is None:
            return ""
        try:
            with open(self.layout.log_file, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if line.strip()][-lines:]
        return "\n".join(f"    {line}" for line in kept)

    # -- the monitor's look at this server -------------------------------------------------

    def can_auto_start(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return (
            self.state == InternalState.INACTIVE
            and self.handle is None
            and self.enabled
            and self.loaded
            and self.installed
            and now >= self.wait_until
            and not self.limiter.is_limited()
            and not self.supervisor.closing
        )

    def check(self, now: float) -> None:
        """One monitor pass (upstream ``checkServer``): start what must run, replace what
        hangs. Long actions run as tasks; a server busy with one is skipped."""
        if self.lock.locked() or self._tasks or self.supervisor.closing:
            return
        if self.state == InternalState.INACTIVE and not self.enabled:
            return
        handle = self.handle
        if handle is not None and not handle.alive() and not handle.exited.is_set():
            handle.exited.set()  # the watcher missed it: handle the exit here
            self._on_exit(handle)
            return
        if self.handle is not None and now - self.start_time < self.settings.start_grace:
            return
        if self.state == InternalState.ACTIVATING and self._must_replace(False, now):
            self._spawn_task(self._replace("activating timed out", graceful=False), "replace")
        elif self.state == InternalState.ACTIVE and self.is_tars and self.handle is not None:
            stale = self.heartbeat_stale(now)
            if stale is not None:
                self._spawn_task(
                    self._replace(f"[alarm] zombie process, {stale}", graceful=True), "replace"
                )
        elif self.can_auto_start(now):
            self._spawn_task(self.auto_start("[alarm] down, server is inactive"), "start")

    async def auto_start(self, reason: str) -> None:
        async with self.lock:
            if not self.can_auto_start():
                return
            log.warning("%s: %s; starting it", self.server_id, reason)
            try:
                await self._start(manual=False)
            except NodeError as e:
                log.error("%s: automatic start failed: %s", self.server_id, e)

    def _must_replace(self, graceful: bool, now: float) -> bool:
        if self.handle is None:
            return False
        if graceful:  # hung
            return self.state == InternalState.ACTIVE and self.heartbeat_stale(now) is not None
        return (  # stuck activating
            self.state == InternalState.ACTIVATING
            and self.node_started
            and now - self.start_time >= self.activating_timeout()
            and now - self.last_heartbeat >= self.activating_timeout()
        )

    async def _replace(self, reason: str, *, graceful: bool) -> None:
        async with self.lock:
            if not self._must_replace(graceful, time.monotonic()):
                return  # it recovered (or changed) meanwhile
            log.error("%s: %s; stopping pid %d", self.server_id, reason, self.pid)
            self.message = reason
            try:
                await self._stop(manual=False, graceful=graceful)
            except NodeError as e:
                log.error("%s: stop failed: %s", self.server_id, e)
                return
        await self.auto_start(reason)

    # -- heartbeats ----------------------------------------------------------------------

    def _adopt_reporter(self, pid: int) -> bool:
        """A process reports as this server while the node knows none running for it: from
        now on it is this server's process (upstream takes the reported pid)."""
        if self.handle is not None and self.handle.alive():
            if self.handle.pid != pid:
                log.debug(
                    "%s: heartbeat from pid %d, supervising pid %d", self.server_id, pid, self.pid
                )
            return False
        if self.state in (InternalState.DEACTIVATING, InternalState.DESTROYING):
            return False
        handle = ProcessHandle.adopt(pid)
        if handle is None:
            return False
        if self.handle is not None:
            self._detach()
        log.info("%s: adopting pid %d (it reports as this server)", self.server_id, pid)
        self._attach(handle, node_started=False)
        self._save()
        return True

    def on_keep_alive(self, pid: int, adapter: str) -> None:
        if pid <= 0:
            return
        adopted = self._adopt_reporter(pid)
        if self.handle is None:
            return  # a late beat from a process that is gone
        self._beat(adapter)
        if self.state in (InternalState.LOADING, InternalState.PATCHING):
            self._beat_while_hidden = True
        may_change = not self.state.transitional or self.state == InternalState.ACTIVATING
        if may_change and (self.state != InternalState.ACTIVE or adopted):
            self._set_state(InternalState.ACTIVE)
        self.loaded = True
        self.installed = True

    def on_keep_activing(self, pid: int) -> None:
        if pid <= 0:
            return
        adopted = self._adopt_reporter(pid)
        if self.handle is None:
            return
        self._beat()
        # A late keepActiving from a process already Active does not send it back.
        if self.state == InternalState.INACTIVE or (self.state == InternalState.ACTIVE and adopted):
            self._set_state(InternalState.ACTIVATING)

    # -- start ---------------------------------------------------------------------------

    async def _start(self, *, manual: bool) -> str:
        """Start the server (``lock`` held). Upstream ``CommandStart``."""
        if manual:
            if not self.enabled:
                self.enabled = True
                self._save()
        elif not self.enabled:
            raise NodeError("server is disabled", NodeErrorCode.SERVICE_STATE)
        if self.state in (InternalState.ACTIVE, InternalState.ACTIVATING):
            self.supervisor._report(self)
            return f"server is already {self.state.value}"
        if self.state != InternalState.INACTIVE:
            raise NodeError(
                f"server state is not Inactive. the current state is {self.state.value}",
                NodeErrorCode.SERVICE_STATE,
            )
        if self.layout is None:
            raise NodeError("server is not loaded", NodeErrorCode.LOAD_SERVICE_DESC)
        try:
            spec = launch_spec(
                self.layout,
                self.runtime,
                explicit_exe=bool((self.descriptor.exePath or "").strip()),
                python=self.settings.python,
            )
        except LaunchError as e:
            if not e.installed:
                self.installed = False
            self.message = str(e)
            raise NodeError(str(e)) from e
        self.installed = True
        self.limiter.record()
        if self.limiter.is_limited():
            log.error(
                "%s: activating is limited: no automatic start for %gs",
                self.server_id,
                self.settings.limits.punish_interval,
            )
        self._set_state(InternalState.ACTIVATING, report=False)
        try:
            handle = ProcessHandle.spawn(
                spec.argv, cwd=spec.cwd, env=spec.env, log_file=spec.log_file
            )
        except OSError as e:
            self.message = f"server start error: {e}"
            self._set_state(InternalState.INACTIVE)
            raise NodeError(self.message) from e
        log.info("%s: started pid %d: %s", self.server_id, handle.pid, " ".join(spec.argv))
        self._attach(handle, node_started=True)
        self.message = ""
        if not self.is_tars:
            self._set_state(InternalState.ACTIVE, report=False)
        self.supervisor._report(self)
        self._save()
        return f"pid {handle.pid}"

    # -- stop ----------------------------------------------------------------------------

    async def _stop(self, *, manual: bool, graceful: bool = True) -> str:
        """Stop the server (``lock`` held). Upstream ``CommandStop``: a graceful request
        (``AdminF.shutdown``; a stop script; SIGTERM for ``not_tars``), up to the
        deactivating timeout, then SIGKILL to the process group and 2 s more."""
        if manual and self.enabled:
            self.enabled = False
            self._save()
        if self.state == InternalState.INACTIVE and self.handle is None:
            self.supervisor._report(self)
            return "server state is Inactive. "
        if self.state == InternalState.DESTROYING:
            raise NodeError("server state is Destroying. ", NodeErrorCode.SERVICE_STATE)
        if self.state == InternalState.PATCHING:
            raise NodeError(
                f"server is Patching {self.patch.percent}%, please try again later.....",
                NodeErrorCode.SERVICE_STATE,
            )
        handle = self.handle
        self._set_state(InternalState.DEACTIVATING)
        if handle is not None and handle.alive():
            waited = False
            if graceful:
                waited = await self._ask_to_stop(handle)
            exited = waited and await handle.wait_exited(self.deactivating_timeout())
            if not exited and handle.alive():
                log.warning("%s: killing pid %d (group)", self.server_id, handle.pid)
                handle.signal(signal.SIGKILL)
                await handle.wait_exited(self.settings.kill_wait)
            if handle.alive():
                self._set_state(InternalState.ACTIVE)
                raise NodeError(f"server pid {handle.pid} is still exist")
        self._detach()
        self._set_state(InternalState.INACTIVE)
        self._save()
        return "server is stopped"

    async def _ask_to_stop(self, handle: ProcessHandle) -> bool:
        """Ask the process to exit; False when asking failed (then it is killed at once)."""
        layout = self.layout
        if layout is not None and layout.stop_script:
            return await self._run_stop_script(layout.stop_script)
        if not self.is_tars:
            return handle.signal(signal.SIGTERM)
        if not self.runtime.local:
            return handle.signal(signal.SIGTERM)
        proxy = self.supervisor.admin_proxy(self.runtime.local).with_options(
            timeout_ms=self.settings.admin_call_timeout_ms
        )
        try:
            await proxy.shutdown()
        except Exception as e:
            if not handle.alive():
                return True
            log.warning("%s: AdminF.shutdown failed (%s): killing", self.server_id, e)
            return False
        return True

    async def _run_stop_script(self, script: str) -> bool:
        path = Path(script)
        if not path.is_file():
            log.warning("%s: stop script %s is missing", self.server_id, script)
            return False
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                str(path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=str(self.layout.log_dir) if self.layout else None,
                env={**os.environ, **self.runtime.env},
            )
            async with asyncio.timeout(self.deactivating_timeout()):
                await proc.wait()
        except TimeoutError:
            log.warning("%s: stop script %s did not finish", self.server_id, script)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return True
        except OSError as e:
            log.warning("%s: stop script %s failed: %s", self.server_id, script, e)
            return False
        return True


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
    ) -> None:
        self.settings = settings
        self.on_state = on_state
        self.on_version = on_version
        self.on_patched = on_patched
        self.cache = cache if cache is not None else NodeCache(settings.cache_file)
        self.package_source: PackageSource = package_source or LocalPackageSource()
        self._own_communicator = communicator is None
        self.communicator = communicator or Communicator(cache_dir=None)
        self._servers: dict[str, ServerProcess] = {}
        self._load_lock = asyncio.Lock()
        self._reports: asyncio.Queue[NodeDescriptor.ServerStateInfo] = asyncio.Queue()
        self._monitor: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.started_at = time.monotonic()
        #: wall time (s) of the monitor's last pass (``ServerF.getLatestKeepAliveTime``)
        self.latest_keepalive_time = int(time.time())
        self.closing = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Run the monitor and the state reporter."""
        if self._monitor is None:
            self.started_at = time.monotonic()
            loop = asyncio.get_running_loop()
            self._monitor = loop.create_task(self._monitor_loop(), name="tarsus-node-monitor")
            self._reporter = loop.create_task(self._report_loop(), name="tarsus-node-reporter")

    async def shutdown(self, stop_services: bool = False) -> None:
        """Stop supervising. Services keep running (as upstream) unless ``stop_services``;
        either way the cache says what runs, for the next node start to adopt."""
        self.closing = True
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
        servers = list(self._servers.values())
        for sp in servers:
            for task in list(sp._tasks):
                task.cancel()
        if stop_services:
            await asyncio.gather(*(self._stop_for_exit(sp) for sp in servers))
        for sp in servers:
            if sp.handle is not None:
                sp.handle.release()
            self._save(sp)
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.report_timeout):
                    await self._reports.join()
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        if self._own_communicator:
            await self.communicator.close()

    async def _stop_for_exit(self, sp: ServerProcess) -> None:
        async with sp.lock:
            if sp.handle is None:
                return
            try:
                await sp._stop(manual=False)
            except NodeError as e:
                log.error("%s: %s", sp.server_id, e)

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
            sp = ServerProcess(self, desc)
            self._servers[sid] = sp
        try:
            async with sp.lock:
                if sp.state.transitional and sp.state != InternalState.ACTIVATING:
                    raise NodeError(
                        f"cannot load server in state {sp.state.value}",
                        NodeErrorCode.SERVICE_STATE,
                    )
                await self._load_locked(sp, desc, locator)
        except BaseException:
            if new and not sp.loaded:
                self._servers.pop(sid, None)
            raise
        if new:
            self._restore_process(sp)
        self._save(sp)
        self._wake.set()
        return sp

    async def _load_locked(
        self, sp: ServerProcess, desc: RegistryDescriptor.ServerDescriptor, locator: str | None
    ) -> None:
        # Loading is internal and short: the registry is not told (upstream reports it as
        # Inactive, which drops the server's endpoints for a moment; §11.4).
        previous = sp._hide_state(InternalState.LOADING)
        try:
            async with self._load_lock:
                used = self._used_ports(exclude=sp.server_id)
                generated = await asyncio.to_thread(
                    generate_config, desc, self.settings, used_ports=used, locator=locator
                )
        except ConfigGenError as e:
            sp.message = str(e)
            raise NodeError(str(e), NodeErrorCode.LOAD_SERVICE_DESC) from e
        finally:
            sp._unhide_state(previous, report=False)
        sp.descriptor = desc
        sp.enabled = desc.settingState == "active"
        sp.layout = generated.layout
        sp.runtime = generated.runtime
        sp.ports = generated.ports
        sp.loaded = True
        sp._reset_adapters()

    def _restore_process(self, sp: ServerProcess) -> None:
        """First load in this node process: adopt the process the cache remembers, if it
        still runs; with no memory of one, give a running one time to report itself."""
        entry = self.cache.get(sp.server_id)
        if entry is None:
            sp.wait_until = self.started_at + self.settings.startup_grace
            return
        if entry.pid > 0 and sp.handle is None:
            handle = ProcessHandle.adopt(entry.pid, entry.create_time)
            if handle is not None:
                log.info("%s: pid %d is still running: adopted", sp.server_id, entry.pid)
                sp._attach(handle, node_started=False)
                sp.start_time = 0.0  # no start grace: it has been running
                sp._set_state(InternalState.ACTIVE)
                return
            log.warning("%s: pid %d from the cache is gone", sp.server_id, entry.pid)

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
        self._wake.set()
        return restored

    # -- commands ------------------------------------------------------------------------

    async def start_server(self, app: str, server: str) -> str:
        """Start (an admin's request: enables the server, ignores the limiter)."""
        sp = self.require(app, server)
        async with sp.lock:
            return await sp._start(manual=True)

    async def stop_server(self, app: str, server: str) -> str:
        """Stop (an admin's request: disables the server, so it is not restarted)."""
        sp = self.require(app, server)
        async with sp.lock:
            return await sp._stop(manual=True)

    async def restart_server(self, app: str, server: str) -> str:
        await self.stop_server(app, server)
        return await self.start_server(app, server)

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
        async with sp.lock:
            if sp.state != InternalState.INACTIVE or sp.handle is not None:
                raise NodeError(
                    f"server state is not Inactive. the current state is {sp.state.value}",
                    NodeErrorCode.SERVICE_STATE,
                )
            sp._set_state(InternalState.DESTROYING)
            layout = sp.layout
            if layout is not None:
                await asyncio.to_thread(self._remove_files, layout)
            sp._set_state(InternalState.DESTROYED)
            self._servers.pop(sp.server_id, None)
            self.cache.remove(sp.server_id)
        return "server is destroyed"

    def _remove_files(self, layout: ServerLayout) -> None:
        data_dir = Path(self.settings.data_dir).resolve()
        server_dir = layout.server_dir.resolve()
        ours = server_dir.is_relative_to(data_dir) or layout.conf_file.exists()
        if ours and server_dir != data_dir and len(server_dir.parts) > 2:
            shutil.rmtree(server_dir, ignore_errors=True)
        else:
            log.error("%s: not deleting %s: not a server directory", layout.server_id, server_dir)
        shutil.rmtree(layout.log_dir, ignore_errors=True)
        shutil.rmtree(layout.backup_dir, ignore_errors=True)

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
    ) -> asyncio.Task[str]:
        """Check that the server can take a package now and start installing it; the task
        gives the result (or raises :class:`NodeError`). Progress: :meth:`patch_info`."""
        sp = self.require(app, server)
        async with sp.lock:
            if sp.state == InternalState.PATCHING or sp.patch.patching:
                raise NodeError(
                    f"{sp.server_id} is already being patched: reduplicate request",
                    NodeErrorCode.REQ_ALREADY,
                )
            if sp.state.transitional and sp.state != InternalState.ACTIVATING:
                raise NodeError(
                    f"cannot patch the server, the server state is {sp.state.value}",
                    NodeErrorCode.SERVICE_STATE,
                )
            if sp.layout is None:
                raise NodeError("server is not loaded", NodeErrorCode.LOAD_SERVICE_DESC)
            sp.last_state = sp._hide_state(InternalState.PATCHING)
            sp.patch = PatchStatus(
                patching=True, percent=0, modify_time=int(time.time()), version=version, succ=False
            )
        task = asyncio.get_running_loop().create_task(
            self._install(sp, location, md5, user), name=f"tarsus-node-install-{sp.server_id}"
        )
        sp._tasks.add(task)
        task.add_done_callback(sp._tasks.discard)
        return task

    async def install(
        self, app: str, server: str, location: str, *, md5: str = "", version: str = ""
    ) -> str:
        """Install a package and wait for the result."""
        task = await self.begin_install(app, server, location, md5=md5, version=version)
        return await task

    async def _install(self, sp: ServerProcess, location: str, md5: str, user: str = "") -> str:
        assert sp.layout is not None

        def progress(percent: int) -> None:
            sp.patch.percent = min(percent, 99)
            sp.patch.modify_time = int(time.time())

        ok, result = False, "installation interrupted"
        try:
            installed = await install_package(
                location,
                sp.layout,
                md5=md5,
                source=self.package_source,
                python=self.settings.python,
                pip_timeout=self.settings.pip_timeout,
                progress=progress,
            )
            ok, result = True, f"patch succ: {installed.manifest.name} installed"
        except PackageError as e:
            result = str(e)
        except Exception as e:
            log.exception("%s: package installation failed", sp.server_id)
            result = f"{type(e).__name__}: {e}"
        finally:
            # percent 100 whatever the outcome, as upstream: read bSucc (§11.14)
            sp.patch.percent = 100
            sp.patch.modify_time = int(time.time())
            sp.patch.patching = False
            sp.patch.succ = ok
            sp.patch.result = result
            sp.installed = True
            sp._unhide_state(sp.last_state, report=True)
        if not ok:
            log.error("%s: package installation failed: %s", sp.server_id, result)
        elif self.on_patched is not None:
            try:
                await self.on_patched(sp.app, sp.server, sp.patch.version, user)
            except Exception as e:  # the package is installed: a lost record is no failure
                log.warning("%s: recording the patch result failed: %s", sp.server_id, e)
        if sp.can_auto_start():
            sp._spawn_task(sp.auto_start("[alarm] down, server is inactive"), "start")
        if not ok:
            raise NodeError(result)
        return result

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
        sp = self.get(app, server)
        if sp is None:
            return -1
        sp.version = version
        if self.on_version is not None:
            try:
                async with asyncio.timeout(self.settings.report_timeout):
                    await self.on_version(app, server, version)
            except Exception as e:
                log.debug("on_version failed for %s.%s: %s", app, server, e)
        return 0

    def state_info(self, app: str, server: str) -> NodeDescriptor.ServerStateInfo:
        return self.require(app, server).state_info()

    def state_infos(self) -> list[NodeDescriptor.ServerStateInfo]:
        """Every server's ``ServerStateInfo``, for a periodic ``updateServerBatch`` (upstream
        resends all states every 60 s, so a registry that missed a report catches up)."""
        return [sp.state_info() for sp in self._servers.values()]

    # -- helpers -------------------------------------------------------------------------

    def admin_proxy(self, local: str) -> AdminF.AdminFProxy:
        return self.communicator.string_to_proxy(AdminF.AdminFProxy, f"AdminObj@{local}")

    def _save(self, sp: ServerProcess) -> None:
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
            ),
        )

    def _report(self, sp: ServerProcess) -> None:
        if self.on_state is not None:
            self._reports.put_nowait(sp.state_info())

    async def _report_loop(self) -> None:
        while True:
            info = await self._reports.get()
            try:
                if self.on_state is not None:
                    async with asyncio.timeout(self.settings.report_timeout):
                        await self.on_state(info)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning(
                    "reporting %s.%s state failed: %s", info.application, info.serverName, e
                )
            finally:
                self._reports.task_done()

    def check_now(self) -> None:
        """Run a monitor pass now instead of at the next tick."""
        self._wake.set()

    async def _monitor_loop(self) -> None:
        while True:
            now = time.monotonic()
            self.latest_keepalive_time = int(time.time())
            for sp in list(self._servers.values()):
                try:
                    sp.check(now)
                except Exception:
                    log.exception("%s: check failed", sp.server_id)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.monitor_interval):
                    await self._wake.wait()
