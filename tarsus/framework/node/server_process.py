"""One server on the node: the :class:`ServerProcess` state machine (upstream ``ServerObject``
and the ``Command*`` classes: start, stop, heartbeats, exits, hangs, loading, patching).

States (what the registry sees in parentheses): ``Inactive``, ``Activating``, ``Active``,
``Deactivating``, ``Destroying``, and the node-internal ``Loading`` and ``Patching``
(``Inactive``). A start goes Inactive → Activating → Active on the server's first keepAlive
(for ``not_tars`` servers: as soon as the process runs); a stop goes → Deactivating →
Inactive. Every state or pid change is handed to the host's ``report`` (the registry's
``updateServer``).

What keeps a server running:

- **crashes**: the node waits on the process (pidfd, or a poll for processes it did not
  start), so an exit is seen at once, and an enabled server is started again right away;
- **hangs**: an Active server that has sent no keepAlive for its ``hearttimeout`` (ms; the
  node's ``heart_timeout`` when unset) is stopped gracefully and started again;
- **stuck starts**: a server the node started that is still Activating, without heartbeats,
  after ``activating-timeout`` is killed (and started again);
- **crash loops**: the activation limiter (:mod:`.limiter`) holds node-initiated starts back.

Auto-starts need the server enabled (``setting_state`` active, and not stopped by an
operator), loaded, installed, not in a transitional state and not limited. An operator's start
enables the server, resets the limiter and is never refused by it; an operator's stop disables
it until an operator starts it again.

A :class:`ServerProcess` lives in a :class:`ServerHost` (the node's
:class:`~tarsus.framework.node.supervisor.Supervisor`), which gives it the node's settings,
records and reports it, and reaches servers' admin objects. See docs/node.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tarsus.framework.node.cache import CacheEntry
from tarsus.framework.node.config import (
    ConfigGenError,
    GeneratedConfig,
    RuntimeConfig,
    ServerLayout,
)
from tarsus.framework.node.container import (
    CONTAINER,
    LABEL_DATA_DIR,
    LABEL_NODE,
    LABEL_SERVER,
    ContainerEngine,
    ContainerError,
    ContainerHandle,
    container_name,
    server_mounts,
)
from tarsus.framework.node.errors import NodeError, NodeErrorCode
from tarsus.framework.node.launch import LaunchError, LaunchSpec, launch_spec
from tarsus.framework.node.limiter import ActivationLimiter
from tarsus.framework.node.package import (
    PackageError,
    PackageSource,
    UnpackLimits,
    install_package,
    record_version,
)
from tarsus.framework.node.process import ProcessHandle, process_cmdline, process_create_time
from tarsus.framework.node.settings import NodeSettings
from tarsus.protocol.gen import AdminF, NodeDescriptor, RegistryDescriptor

__all__ = [
    "ADMIN_ADAPTER",
    "DOWN",
    "ConfigGenerator",
    "InternalState",
    "PatchStatus",
    "ServerHost",
    "ServerProcess",
]

log = logging.getLogger("tarsus.framework.node.server_process")

ADMIN_ADAPTER = "AdminAdapter"
#: why the node starts a server by itself (upstream's alarm text)
DOWN = "[alarm] down, server is inactive"


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


class ServerHost(Protocol):
    """What a :class:`ServerProcess` needs from the collection it lives in (the node's
    :class:`~tarsus.framework.node.supervisor.Supervisor`)."""

    @property
    def settings(self) -> NodeSettings: ...

    @property
    def closing(self) -> bool:
        """The node is shutting down: start nothing more."""
        ...

    def report(self, sp: ServerProcess) -> None:
        """Hand the server's current state to the registry (queued, never blocking)."""

    def event(self, sp: ServerProcess, message: str) -> None:
        """Report an event of the server to notify, with upstream's level markers
        (``[alarm]``, ``[error]``...; queued, never blocking)."""

    def save(self, sp: ServerProcess) -> None:
        """Record the server in the local cache."""

    def admin_proxy(self, local: str) -> AdminF.AdminFProxy:
        """A proxy on a server's ``AdminObj`` at its ``local`` endpoint."""

    @property
    def containers(self) -> ContainerEngine:
        """The container engine that starts servers of run type ``container``."""
        ...


#: ``generate(descriptor)``: the server's config written, with what it tells the node
ConfigGenerator = Callable[[Any], Awaitable[GeneratedConfig]]


class ServerProcess:
    """One server on this node: its descriptor, config, process and state."""

    def __init__(
        self,
        host: ServerHost,
        descriptor: RegistryDescriptor.ServerDescriptor,
        *,
        operator_stopped: bool = False,
    ) -> None:
        self.host = host
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
        #: an operator stopped it: no reload re-enables it, only an operator's start
        self.operator_stopped = operator_stopped
        #: the node may start it by itself (``setting_state`` active, not stopped by an operator)
        self.enabled: bool = descriptor.settingState == "active" and not operator_stopped
        self.loaded = False
        #: False once a start found nothing to run (upstream ``patched``)
        self.installed = True
        #: the node started the current process (upstream ``_started``)
        self.node_started = False
        #: whether the process's command line was recorded again after its start grace
        self._recorded_after_grace = False
        #: monotonic time of the last start
        self.start_time = 0.0
        #: monotonic time of the last heartbeat, overall and per adapter
        self.last_heartbeat = 0.0
        self.adapter_heartbeats: dict[str, float] = {}
        #: no auto-start before this monotonic time (waiting for a keepAlive after node start)
        self.wait_until = 0.0
        #: a keepAlive came while Loading/Patching hid the state: Activating may become Active
        self._beat_while_hidden = False
        #: the last pid whose heartbeats were refused (to log each impostor once)
        self._refused_pid = 0
        self.patch = PatchStatus()
        self.limiter = ActivationLimiter(host.settings.limits)
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
    def in_container(self) -> bool:
        """Run type ``container``: started in a container from its base image
        (:mod:`.container`)."""
        return (self.descriptor.runType or "").strip().lower() == CONTAINER

    @property
    def settings(self) -> NodeSettings:
        return self.host.settings

    @property
    def busy(self) -> bool:
        """A start, stop, load, install or replacement is under way (the monitor waits)."""
        return self.lock.locked() or bool(self._tasks)

    def heart_timeout(self) -> float:
        return self.runtime.heart_timeout or self.settings.heart_timeout

    def activating_timeout(self) -> float:
        return self.runtime.activating_timeout or self.settings.activating_timeout

    def deactivating_timeout(self) -> float:
        low, high = self.settings.deactivating_timeout_range
        value = self.runtime.deactivating_timeout or self.settings.deactivating_timeout
        return min(max(value, low), high)

    def held_until(self) -> float | None:
        """Wall time (epoch s) until which the activation limiter holds automatic starts
        back; None when it does not."""
        until = self.limiter.held_until()
        if until is None:
            return None
        return time.time() + (until - self.limiter.clock())

    def notes(self) -> list[str]:
        """What an operator should know beyond the state (``getStateInfo``'s text)."""
        notes = []
        held = self.held_until()
        if held is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(held))
            interval = self.limiter.limits.time_interval
            notes.append(
                f"held back by the activation limiter until {when} (started "
                f"{self.limiter.count + 1} times, each within {interval:g} s of the previous): "
                "the node will not start it by itself before then; an operator's start "
                "starts it at once and resets the limiter"
            )
        if self.operator_stopped:
            notes.append("stopped by an operator: it stays stopped until an operator starts it")
        return notes

    def state_info(self) -> NodeDescriptor.ServerStateInfo:
        """The ``ServerStateInfo`` the registry and ``getStateInfo`` get. ``exState`` also
        carries ``LIMITED_UNTIL`` (epoch s) while the activation limiter holds it back."""
        state = self.state.wire if self.runtime.enable_working else 0
        ex: dict[str, str] = {}
        if self.handle is not None:
            started = int(self.handle.create_time)
            ex = {"PROC_START_TIME": str(started), "RUN_SECONDS": str(int(time.time()) - started)}
            if isinstance(self.handle, ContainerHandle):
                ex["CONTAINER_ID"] = self.handle.container_id
        held = self.held_until()
        if held is not None:
            ex["LIMITED_UNTIL"] = str(int(held))
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
            self.host.report(self)

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
        self._recorded_after_grace = False
        self.wait_until = 0.0  # its process is known: no more waiting for one to report
        self._beat()
        handle.watch(self._on_exit, self.settings.adopt_poll_interval)

    def _detach(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.stop_watching()
        self.node_started = False

    def _save(self) -> None:
        self.host.save(self)

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
        self.track(task)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` as work on this server until it ends (see :attr:`busy`)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def release(self) -> None:
        """Let the process run on without the node (the node is exiting)."""
        if self.handle is not None:
            self.handle.release()

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
        self._detach()
        self.host.event(self, f"[alarm] down, pid {handle.pid} {how}")
        if self.state == InternalState.PATCHING:
            self.last_state = InternalState.INACTIVE
            self._save()
            return
        self._set_state(InternalState.INACTIVE)
        self._save()
        self.start_if_due(DOWN)

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
            and not self.host.closing
        )

    def check(self, now: float) -> None:
        """One monitor pass (upstream ``checkServer``): start what must run, replace what
        hangs. Long actions run as tasks; a server busy with one is skipped."""
        if self.busy or self.host.closing:
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
        if self.handle is not None and not self._recorded_after_grace:
            # the command line read at spawn can predate the exec (empty, or the node's
            # own): record it again once the process has settled, so adoption after a
            # node restart compares against what really runs
            self._recorded_after_grace = True
            self._save()
        if self.state == InternalState.ACTIVATING and self._must_replace(False, now):
            self._spawn_task(
                self._replace("[alarm] activating timed out", graceful=False), "replace"
            )
        elif self.state == InternalState.ACTIVE and self.is_tars and self.handle is not None:
            stale = self.heartbeat_stale(now)
            if stale is not None:
                self._spawn_task(
                    self._replace(f"[alarm] zombie process, {stale}", graceful=True), "replace"
                )
        elif self.can_auto_start(now):
            self._spawn_task(self.auto_start(DOWN), "start")

    async def auto_start(self, reason: str) -> None:
        async with self.lock:
            if not self.can_auto_start():
                return
            log.warning("%s: %s; starting it", self.server_id, reason)
            try:
                started = await self._start(manual=False)
            except NodeError as e:
                log.error("%s: automatic start failed: %s", self.server_id, e)
                self.host.event(self, f"[error] automatic start failed: {e}")
            else:
                self.host.event(self, f"restarted ({reason}): {started}")

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
            self.host.event(self, f"{reason}; stopping pid {self.pid}")
            try:
                await self._stop(manual=False, graceful=graceful)
            except NodeError as e:
                log.error("%s: stop failed: %s", self.server_id, e)
                return
        await self.auto_start(reason)

    # -- heartbeats ----------------------------------------------------------------------

    def _admit_reporter(self, pid: int) -> bool | None:
        """Whether to believe a heartbeat naming ``pid``: None when it is refused, False
        for the process the node supervises (or a descendant of it), True when the node had
        none running and ``pid`` is one a node started for this server, adopted now.

        Upstream takes any reported pid as the server's process, so a caller of ServerObj
        could make the node stop (kill) any process. Here a pid is believed only when the
        node started it, adopted it from its cache (pid, start time and command line), or,
        with no process known, when its command line runs this server's generated config
        (only a node starts that; a cache that was lost leaves no other trace)."""
        handle = self.handle
        if handle is not None and handle.alive():
            if handle.owns(pid):
                return False
            self._refuse(pid, f"the node supervises pid {handle.pid}")
            return None
        if self.state in (InternalState.DEACTIVATING, InternalState.DESTROYING):
            return None
        reason = self._foreign(pid)
        candidate = ProcessHandle.adopt(pid) if reason is None else None
        if candidate is None:
            self._refuse(pid, reason or "no such process")
            return None
        if handle is not None:
            self._detach()
        log.info("%s: adopting pid %d (it runs this server's config)", self.server_id, pid)
        self._attach(candidate, node_started=False)
        self._save()
        return True

    def _foreign(self, pid: int) -> str | None:
        """Why ``pid`` cannot be this server's process; None when its command line runs
        this server's generated config (``--config=<conf>``) as the node's user."""
        if self.layout is None:
            return "the server is not loaded"
        cmdline = process_cmdline(pid)
        if cmdline is None:
            return "no such process of the node's user"
        if f"--config={self.layout.conf_file}" not in cmdline:
            return "its command line does not run this server's config"
        return None

    def _refuse(self, pid: int, why: str) -> None:
        """Ignore a heartbeat naming ``pid``: logged once per pid, and only at debug level
        when no such process runs (a late beat from a process that just ended)."""
        running = process_create_time(pid) is not None
        level = logging.WARNING if running and pid != self._refused_pid else logging.DEBUG
        self._refused_pid = pid
        log.log(level, "%s: heartbeat naming pid %d ignored: %s", self.server_id, pid, why)

    def on_keep_alive(self, pid: int, adapter: str) -> None:
        if pid <= 0:
            return
        adopted = self._admit_reporter(pid)
        if adopted is None or self.handle is None:
            return
        self._beat(adapter)
        if self.state in (InternalState.LOADING, InternalState.PATCHING):
            self._beat_while_hidden = True
        may_change = not self.state.transitional or self.state == InternalState.ACTIVATING
        if may_change and (self.state != InternalState.ACTIVE or adopted):
            self._set_state(InternalState.ACTIVE)
            self._save()  # the command line it runs now (a start script has exec'd by now)
        self.loaded = True
        self.installed = True

    def on_keep_activing(self, pid: int) -> None:
        if pid <= 0:
            return
        adopted = self._admit_reporter(pid)
        if adopted is None or self.handle is None:
            return
        self._beat()
        # A late keepActiving from a process already Active does not send it back.
        if self.state == InternalState.INACTIVE or (self.state == InternalState.ACTIVE and adopted):
            self._set_state(InternalState.ACTIVATING)

    # -- start ---------------------------------------------------------------------------

    async def _start(self, *, manual: bool) -> str:
        """Start the server (``lock`` held). Upstream ``CommandStart``."""
        if manual:
            self.limiter.reset()  # an operator's start gets the whole allowance again
            if not self.enabled or self.operator_stopped:
                self.enabled = True
                self.operator_stopped = False
                self._save()
        elif not self.enabled:
            raise NodeError("server is disabled", NodeErrorCode.SERVICE_STATE)
        if self.state in (InternalState.ACTIVE, InternalState.ACTIVATING):
            self.host.report(self)
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
                image_python=self.settings.container_python if self.in_container else "",
            )
        except LaunchError as e:
            if not e.installed:
                self.installed = False
            raise NodeError(str(e)) from e
        self.installed = True
        if self.in_container and not await self.host.containers.ping():
            # nothing can start: not an activation (the limiter would punish a healthy
            # server for the engine's outage); the monitor tries again after a pause
            retry = self.settings.container_retry
            self.wait_until = time.monotonic() + retry
            raise NodeError(
                f"server start error: container engine {self.host.containers.url} does not "
                f"answer; trying again every {retry:g} s"
            )
        self.limiter.record()
        if self.limiter.is_limited():
            self.host.event(
                self,
                f"[alarm] started too often: no automatic start for "
                f"{self.settings.limits.punish_interval:g}s",
            )
            log.error(
                "%s: activating is limited: no automatic start for %gs",
                self.server_id,
                self.settings.limits.punish_interval,
            )
        self._set_state(InternalState.ACTIVATING, report=False)
        handle: ProcessHandle
        try:
            if self.in_container:
                handle = await self._run_container(spec)
            else:
                handle = ProcessHandle.spawn(
                    spec.argv, cwd=spec.cwd, env=spec.env, log_file=spec.log_file
                )
        except (OSError, ContainerError) as e:
            message = f"server start error: {e}"
            self._set_state(InternalState.INACTIVE)
            raise NodeError(message) from e
        log.info("%s: started %r: %s", self.server_id, handle, " ".join(spec.argv))
        self._attach(handle, node_started=True)
        if not self.is_tars:
            self._set_state(InternalState.ACTIVE, report=False)
        self.host.report(self)
        self._save()
        return f"pid {handle.pid}"

    async def _run_container(self, spec: LaunchSpec) -> ContainerHandle:
        image = (self.descriptor.baseImage or "").strip()
        if not image:
            raise ContainerError(
                "run type is container but the server has no base image "
                "(tarsus server deploy --container IMAGE)"
            )
        assert self.layout is not None
        return await self.host.containers.run(
            name=container_name(self.settings.node_name, self.server_id, self.settings.data_dir),
            image=image,
            spec=spec,
            mounts=server_mounts(self.layout),
            labels=self._container_labels(),
        )

    def _container_labels(self) -> dict[str, str]:
        return {
            LABEL_SERVER: self.server_id,
            LABEL_NODE: self.settings.node_name,
            LABEL_DATA_DIR: str(Path(self.settings.data_dir).absolute()),
        }

    async def adopt_container(self) -> bool:
        """First load in this node process of a server in a container: adopt its running
        container, found through the engine by its labels. False when there is none, or the
        engine does not answer (then the cache's pid is tried, as for a process)."""
        if not self.in_container or self.handle is not None:
            return False
        try:
            handle = await self.host.containers.find(self._container_labels())
        except ContainerError as e:
            log.warning("%s: cannot look for its container: %s", self.server_id, e)
            return False
        if handle is None or self._foreign(handle.pid) is not None:
            return False
        log.info("%s: container %s is running: adopted", self.server_id, handle.container_id)
        self._attach(handle, node_started=False)
        self.start_time = 0.0  # no start grace: it has been running
        self._set_state(InternalState.ACTIVE)
        return True

    # -- stop ----------------------------------------------------------------------------

    async def _stop(self, *, manual: bool, graceful: bool = True) -> str:
        """Stop the server (``lock`` held). Upstream ``CommandStop``: a graceful request
        (``AdminF.shutdown``; a stop script; SIGTERM for ``not_tars``), up to the
        deactivating timeout, then SIGKILL to the process group and 2 s more."""
        if manual and (self.enabled or not self.operator_stopped):
            self.enabled = False
            self.operator_stopped = True
            self._save()
        if self.state == InternalState.INACTIVE and self.handle is None:
            self.host.report(self)
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
        proxy = self.host.admin_proxy(self.runtime.local).with_options(
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

    # -- what the node asks of this server ------------------------------------------------

    async def start_by_operator(self) -> str:
        """An operator's start: enables the server, resets the limiter, never limited."""
        async with self.lock:
            return await self._start(manual=True)

    async def stop_by_operator(self) -> str:
        """An operator's stop: disables the server until an operator starts it."""
        async with self.lock:
            return await self._stop(manual=True)

    async def stop_for_exit(self) -> None:
        """Stop the process because the node exits (the server stays enabled)."""
        async with self.lock:
            if self.handle is None:
                return
            try:
                await self._stop(manual=False)
            except NodeError as e:
                log.error("%s: %s", self.server_id, e)

    async def load(
        self, desc: RegistryDescriptor.ServerDescriptor, generate: ConfigGenerator
    ) -> None:
        """Take ``desc`` (new or changed) and have ``generate`` write the server's config
        (upstream ``CommandLoad``)."""
        async with self.lock:
            if self.state.transitional and self.state != InternalState.ACTIVATING:
                raise NodeError(
                    f"cannot load server in state {self.state.value}",
                    NodeErrorCode.SERVICE_STATE,
                )
            # Loading is internal and short: the registry is not told (upstream reports it
            # as Inactive, which drops the server's endpoints for a moment).
            previous = self._hide_state(InternalState.LOADING)
            try:
                generated = await generate(desc)
            except ConfigGenError as e:
                self.host.event(self, f"[error] cannot write the config: {e}")
                raise NodeError(str(e), NodeErrorCode.LOAD_SERVICE_DESC) from e
            finally:
                self._unhide_state(previous, report=False)
            self.descriptor = desc
            # a reload (the registry's setting may still say active: a restart stops,
            # reloads, then starts) never re-enables a server an operator stopped
            self.enabled = desc.settingState == "active" and not self.operator_stopped
            self.layout = generated.layout
            self.runtime = generated.runtime
            self.ports = generated.ports
            self.loaded = True
            self._reset_adapters()

    def adopt_cached(self, entry: CacheEntry | None, *, wait_until: float) -> None:
        """First load in this node process: adopt the process the cache remembers, if it
        still runs; with no memory of one, wait until ``wait_until`` (monotonic) for a
        running one to report itself before starting one."""
        if entry is None:
            self.wait_until = wait_until
            return
        if entry.pid <= 0 or self.handle is not None:
            return
        handle = ProcessHandle.adopt(entry.pid, entry.create_time)
        # same start time, and the command line cached (or one running this server's
        # config: a start script may have exec'd the server since it was cached)
        if handle is not None and (
            (entry.cmdline and handle.cmdline() == entry.cmdline)
            or self._foreign(entry.pid) is None
        ):
            log.info("%s: pid %d is still running: adopted", self.server_id, entry.pid)
            self._attach(handle, node_started=False)
            self.start_time = 0.0  # no start grace: it has been running
            self._set_state(InternalState.ACTIVE)
            return
        log.warning(
            "%s: pid %d from the cache is gone (or is another process now)",
            self.server_id,
            entry.pid,
        )

    async def destroy(self, remove_files: Callable[[ServerLayout], None]) -> None:
        """Go Destroying, delete the server's files with ``remove_files(layout)`` (in a
        thread), then Destroyed. Only an Inactive server with no process."""
        async with self.lock:
            if self.state != InternalState.INACTIVE or self.handle is not None:
                raise NodeError(
                    f"server state is not Inactive. the current state is {self.state.value}",
                    NodeErrorCode.SERVICE_STATE,
                )
            self._set_state(InternalState.DESTROYING)
            if self.layout is not None:
                await asyncio.to_thread(remove_files, self.layout)
            self._set_state(InternalState.DESTROYED)

    # -- packages --------------------------------------------------------------------------

    async def begin_patch(self, version: str) -> None:
        """Enter Patching, if the server can take a package now (else :class:`NodeError`)."""
        async with self.lock:
            if self.state == InternalState.PATCHING or self.patch.patching:
                raise NodeError(
                    f"{self.server_id} is already being patched: reduplicate request",
                    NodeErrorCode.REQ_ALREADY,
                )
            if self.state.transitional and self.state != InternalState.ACTIVATING:
                raise NodeError(
                    f"cannot patch the server, the server state is {self.state.value}",
                    NodeErrorCode.SERVICE_STATE,
                )
            if self.layout is None:
                raise NodeError("server is not loaded", NodeErrorCode.LOAD_SERVICE_DESC)
            self.last_state = self._hide_state(InternalState.PATCHING)
            self.patch = PatchStatus(
                patching=True, percent=0, modify_time=int(time.time()), version=version
            )

    async def install(self, location: str, md5: str, source: PackageSource) -> bool:
        """Install the package at ``location`` (after :meth:`begin_patch`), following it in
        :attr:`patch`; leave Patching whatever the outcome. True if it was installed."""
        assert self.layout is not None

        def progress(percent: int) -> None:
            self.patch.percent = min(percent, 99)
            self.patch.modify_time = int(time.time())

        ok, result = False, "installation interrupted"
        try:
            installed = await install_package(
                location,
                self.layout,
                md5=md5,
                source=source,
                python=self.settings.python,
                pip_timeout=self.settings.pip_timeout,
                progress=progress,
                limits=UnpackLimits(self.settings.max_unpacked_size, self.settings.disk_reserve),
            )
            ok, result = True, f"patch succ: {installed.summary} installed"
            try:
                record_version(installed.bin_dir, self.patch.version, installed.md5)
            except OSError as e:  # installed all the same; only a rollback's label is lost
                log.warning("%s: cannot record the installed version: %s", self.server_id, e)
        except PackageError as e:
            result = str(e)
        except Exception as e:
            log.exception("%s: package installation failed", self.server_id)
            result = f"{type(e).__name__}: {e}"
        finally:
            # percent 100 whatever the outcome, as upstream: read bSucc
            self.patch.percent = 100
            self.patch.modify_time = int(time.time())
            self.patch.patching = False
            self.patch.succ = ok
            self.patch.result = result
            self.installed = True
            self._unhide_state(self.last_state, report=True)
        if not ok:
            log.error("%s: package installation failed: %s", self.server_id, result)
        self.host.event(self, result if ok else f"[fail] patch failed: {result}")
        return ok

    def start_if_due(self, reason: str) -> None:
        """Start the server (as a task) if the node should start it by itself now."""
        if self.can_auto_start():
            self._spawn_task(self.auto_start(reason), "start")
