"""``NodeCommands``: what the node does for each command the admin registry pushes (``NodePush``).

One ``async`` method per ``NodePush`` function, named as the function and taking its
arguments after ``(requestId, nodeName)``. Each returns ``(ret, result)`` exactly as
upstream's ``reportResult`` carries them: ``result`` is text, except the Tars-encoded answers
of ``getStateInfo`` (``ServerStateInfo`` at tag 0, text at tag 1), ``getPatchPercent`` (a
``PatchInfo``), ``getLogFileList`` and ``forceDockerLogin`` (``vector<string>`` at tag 0),
returned as bytes. Return codes are upstream's (1003 cannot load, 1004 wrong state, 1005
duplicate, 1007 bad parameter, -1 other).

Descriptors come from an injected ``load_descriptor(app, server)`` (the registry's
``getServers``, falling back to the node's cache: the node application wires it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from tarsus.codec import encode, encode_value, types
from tarsus.codec.operation import Operation, Param
from tarsus.framework.node.download import PatchObjSource, batch_path
from tarsus.framework.node.errors import NodeError, NodeErrorCode
from tarsus.framework.node.logview import (
    LogCommandError,
    LogSearcher,
    SearchLimits,
    list_log_files,
    log_file,
)
from tarsus.framework.node.package import PackageSource
from tarsus.framework.node.supervisor import Supervisor
from tarsus.protocol.gen import NodeDescriptor, RegistryDescriptor

__all__ = ["DescriptorLoader", "NodeCommands"]

log = logging.getLogger("tarsus.framework.node.commands")

#: ``load_descriptor(app, server)``: the server's current ``ServerDescriptor`` for this node,
#: or None when there is none (unknown, or the registry unreachable and nothing cached).
DescriptorLoader = Callable[[str, str], Awaitable[RegistryDescriptor.ServerDescriptor | None]]

Result = tuple[int, str | bytes]


@functools.cache
def _state_info_answer() -> Operation:
    """``ServerStateInfo`` at tag 0 and a string at tag 1: the shape of a result struct."""
    return Operation(
        "getStateInfo",
        NodeDescriptor.ServerStateInfo,
        (Param(1, "result", types.STRING, out=True),),
    )


def _string_list(values: list[str]) -> bytes:
    return encode_value(values, types.Vector(types.STRING))


class NodeCommands:
    """The pushed commands, over a :class:`Supervisor`."""

    def __init__(
        self,
        supervisor: Supervisor,
        load_descriptor: DescriptorLoader,
        *,
        registry_locator: Callable[[], Awaitable[str | None]] | None = None,
        notify_self: Callable[[str], Awaitable[str]] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        """``registry_locator()``: the registry's current QueryObj list for ``${locator}``
        (None: the node's own); ``notify_self(cmd)``: the node's own AdminObj, for
        ``notifyServer("tars", "tarsnode", ...)``; ``on_shutdown()``: start stopping the
        node (called soon after ``shutdown`` answers)."""
        self.supervisor = supervisor
        self.load_descriptor = load_descriptor
        self.registry_locator = registry_locator
        self.notify_self = notify_self
        self.on_shutdown = on_shutdown
        settings = supervisor.settings
        self.log_searcher = LogSearcher(
            SearchLimits(
                timeout=settings.log_search_timeout,
                memory=settings.log_search_memory,
                max_read=settings.log_search_max_read,
            )
        )

    # -- loading -------------------------------------------------------------------------

    async def _load(self, app: str, server: str) -> bool:
        """Refresh the server from ``load_descriptor``; False when it gave nothing."""
        desc = await self.load_descriptor(app, server)
        if desc is None:
            return False
        locator = await self.registry_locator() if self.registry_locator is not None else None
        await self.supervisor.load(desc, locator=locator)
        return True

    async def _load_or_known(self, app: str, server: str) -> None:
        """Load; when nothing comes back, carry on with the server as the node knows it."""
        if not await self._load(app, server) and self.supervisor.get(app, server) is None:
            raise NodeError(
                "error::cannot load server description from registry.",
                NodeErrorCode.LOAD_SERVICE_DESC,
            )

    # -- NodePush ------------------------------------------------------------------------

    async def ping(self) -> Result:
        return 0, "ping succ"

    async def shutdown(self) -> Result:
        if self.on_shutdown is None:
            return -1, "shutdown is not wired on this node"
        asyncio.get_running_loop().call_soon(self.on_shutdown)
        return 0, ""

    async def loadServer(self, application: str, serverName: str) -> Result:
        try:
            if not await self._load(application, serverName):
                return NodeErrorCode.LOAD_SERVICE_DESC, " error::cannot load server description.\n"
        except NodeError as e:
            return e.code, f" error::cannot load server description.\n{e}"
        return 0, " succ"

    async def startServer(self, application: str, serverName: str) -> Result:
        try:
            await self._load_or_known(application, serverName)
            message = await self.supervisor.start_server(application, serverName)
        except NodeError as e:
            return e.code, f"error:{e}"
        return 0, f"server is activating, please check: {message}"

    async def stopServer(self, application: str, serverName: str) -> Result:
        try:
            message = await self.supervisor.stop_server(application, serverName)
            ret, result = 0, f"succ:{message}"
        except NodeError as e:
            ret, result = e.code, f"error:{e}"
        # The stop may follow a setting change: reload, as upstream (no cache).
        try:
            await self._load(application, serverName)
        except NodeError as e:
            log.warning("%s.%s: reload after stop failed: %s", application, serverName, e)
        return ret, result

    async def destroyServer(self, application: str, serverName: str) -> Result:
        try:
            message = await self.supervisor.destroy(application, serverName)
        except NodeError as e:
            return e.code, f"error:{e}"
        return 0, f"succ:{message}"

    async def notifyServer(self, application: str, serverName: str, command: str) -> Result:
        try:
            if application == "tars" and serverName == "tarsnode":
                if self.notify_self is None:
                    return -1, "the node's own admin object is not wired"
                return 0, await self.notify_self(command)
            result = await self.supervisor.notify(application, serverName, command)
        except NodeError as e:
            return e.code, f"error:{e}"
        return 0, f"succ:{result}"

    async def getStateInfo(self, application: str, serverName: str) -> Result:
        where = f"getStateInfo [{application}.{serverName}] "
        sp = self.supervisor.get(application, serverName)
        if sp is None:
            state = NodeDescriptor.ServerState.Inactive
            info = NodeDescriptor.ServerStateInfo(
                serverState=state,
                processId=-1,
                nodeName=self.supervisor.settings.node_name,
                application=application,
                serverName=serverName,
                settingState=state,
            )
            ret, result = -1, where + "server not exist"
        else:
            # what the operator should know (held back, stopped) follows, a line each
            info, ret, result = sp.state_info(), 0, "\n".join([where + "succ", *sp.notes()])
        return ret, _state_info_answer().encode_results((info, result))

    async def getPatchPercent(self, application: str, serverName: str) -> Result:
        where = f"getPatchPercent [{application}.{serverName}] "
        sp = self.supervisor.get(application, serverName)
        if sp is None:
            info = NodeDescriptor.PatchInfo(sResult=where + "server not exist")
            return NodeErrorCode.LOAD_SERVICE_DESC, encode(info)
        info = sp.patch.to_patch_info()
        ret = 0 if (info.bPatching or info.bSucc) else -1
        return ret, encode(info)

    async def patchPro(self, req: NodeDescriptor.PatchRequest) -> Result:
        """Install a package in the background: ``filepath`` (ours: a path or ``file:`` URL
        on this machine) as it is, else the package staged for the server on the package
        store ``patchobj``, downloaded (upstream's ``CommandPatch``; docs/release.md)."""
        app, server = req.appname, req.servername
        source: PackageSource | None = None
        location = req.filepath
        if not location:
            if not req.patchobj or not req.md5:
                return (
                    NodeErrorCode.PARAMETER,
                    "parameter error: the request names neither a filepath nor a package "
                    "store (patchobj) with the package's md5",
                )
            location = batch_path(app, req.groupname or server)
            settings = self.supervisor.settings
            source = PatchObjSource(
                self.supervisor.communicator,
                req.patchobj,
                md5=req.md5,
                download_dir=settings.download_dir,
                disk_reserve=settings.disk_reserve,
            )
        known = self.supervisor.get(app, server)
        if known is not None and known.patch.patching:
            return NodeErrorCode.REQ_ALREADY, f"{app}.{server} is being patched: reduplicate"
        try:
            await self._load_or_known(app, server)
            task = await self.supervisor.begin_install(
                app,
                server,
                location,
                md5=req.md5,
                version=req.version,
                user=req.user,
                source=source,
            )
        except NodeError as e:
            return e.code, str(e)
        # nobody awaits it: its outcome is read through getPatchPercent (the reason in
        # sResult), and the failure is logged where it happens
        task.add_done_callback(_outcome_in_patch_info)
        return 0, ""

    async def delCache(self, sFullCacheName: str, sBackupPath: str, sKey: str) -> Result:
        return -1, "delCache (shared-memory caches) is not supported by the tarsus node"

    async def getLogFileList(self, application: str, serverName: str) -> Result:
        directory = self._log_dir(application, serverName)
        return 0, _string_list(list_log_files(directory))

    async def getLogData(self, application: str, serverName: str, logFile: str, cmd: str) -> Result:
        directory = self._log_dir(application, serverName)
        try:
            path = log_file(directory, logFile)
            return 0, await self.log_searcher.search(path, cmd)
        except LogCommandError as e:
            return -1, str(e)
        except OSError as e:
            return -1, f"cannot read {logFile}: {e.strerror}"

    async def getNodeLoad(self, application: str, serverName: str, pid: int) -> Result:
        text = await asyncio.to_thread(_node_load, Path(self.supervisor.settings.log_dir), pid)
        return 0, text

    async def forceDockerLogin(self) -> Result:
        return -1, _string_list(["docker is not supported by the tarsus node"])

    def _log_dir(self, app: str, server: str) -> Path:
        for part in (app, server):
            if not part or "/" in part or part in (".", ".."):
                return Path("/nonexistent")
        return Path(self.supervisor.settings.log_dir) / app / server


def _outcome_in_patch_info(task: asyncio.Task[str]) -> None:
    """Retrieve a background install's exception (it is already in the server's PatchInfo
    and the node's log), so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _node_load(log_root: Path, pid: int) -> str:
    """A ``top``-like snapshot (upstream runs ``top``), with upstream's section markers."""
    out = []
    load1, load5, load15 = os.getloadavg()
    mem = psutil.virtual_memory()
    out.append(
        f"{time.strftime('%H:%M:%S')} load average: {load1:.2f}, {load5:.2f}, {load15:.2f}  "
        f"cpu: {psutil.cpu_percent(interval=0.2):.1f}%  "
        f"mem: {mem.used // 2**20}M used / {mem.total // 2**20}M total"
    )
    out.append(f"{'PID':>8} {'USER':<10} {'%CPU':>6} {'%MEM':>6} {'RSS(K)':>10}  COMMAND")
    procs = []
    for proc in psutil.process_iter(
        ["pid", "username", "cpu_percent", "memory_percent", "memory_info", "cmdline", "name"]
    ):
        procs.append(proc.info)
    procs.sort(
        key=lambda p: (p.get("cpu_percent") or 0.0, p.get("memory_percent") or 0.0), reverse=True
    )
    for info in procs[:30]:
        rss = info["memory_info"].rss // 1024 if info.get("memory_info") else 0
        cmd = " ".join(info.get("cmdline") or []) or info.get("name") or ""
        out.append(
            f"{info['pid']:>8} {str(info.get('username') or '')[:10]:<10} "
            f"{info.get('cpu_percent') or 0.0:>6.1f} {info.get('memory_percent') or 0.0:>6.1f} "
            f"{rss:>10}  {cmd[:120]}"
        )
    text = "\n".join(out) + "\n#global-top-end#"
    if pid > 0:
        text += "\n\n#this-top-begin#" + "-" * 100 + "\n"
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                rss = proc.memory_info().rss // 1024
                cpu = proc.cpu_percent(interval=0.2)
                text += (
                    f"pid {pid} {' '.join(proc.cmdline())}\n"
                    f"status {proc.status()}  threads {proc.num_threads()}  "
                    f"rss {rss}K  cpu {cpu:.1f}%\n"
                )
        except psutil.Error as e:
            text += f"pid {pid}: {e}\n"
        text += "#this-top-end#"
    text += "\n\n#core-file-begin#" + "-" * 100 + "\n"
    try:
        cores = sorted(p.name for p in log_root.iterdir() if p.name.startswith("core."))
    except OSError:
        cores = []
    text += "\n".join(cores) + ("\n" if cores else "")
    return text
