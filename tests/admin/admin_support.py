"""Fixtures of the admin registry tests.

``admin`` serves a real :class:`AdminRegistry` (``AdminRegObj`` on an ephemeral port, over the
``store`` fixture, so every test runs on SQLite and on MariaDB), with one node connected over
the real push channel (:class:`tarsus.framework.node.channel.AdminChannel` on its own
communicator, real sockets both ways), and a generated ``AdminRegProxy`` to call it.

What the node *does* with a pushed command is played by :class:`ScriptedNode`: it keeps each
server's state in a dict instead of starting processes (process supervision is the node
agent's, tested with it; the lead's end-to-end tests drive the real node). The package store,
``tars.tarspatch.PatchObj``, is played by :class:`FakePatchObj` (``Patch`` + ``PatchExt`` with
files in a dict, served on a real port the admin registry's ``patch_obj`` names): those two
stand-ins are the only fakes here. The real PatchObj is tested with the admin registry in
tests/framework.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from tarsus.codec import encode, encode_value
from tarsus.codec import types as T
from tarsus.codec.operation import Operation
from tarsus.framework.admin import ADMIN_SERVANT, AdminRegistry, AdminSettings, add_admin
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.admin.replies import _state_reply
from tarsus.framework.node.channel import AdminChannel
from tarsus.protocol.gen import AdminReg, NodeDescriptor, Patch, TarsusPatch
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import AdapterSpec, ServerSpec, Store

NODE = "10.0.0.7"
Inactive, Active = NodeDescriptor.ServerState.Inactive, NodeDescriptor.ServerState.Active


@dataclass
class ScriptedNode:
    """Answers pushed NodePush commands like a node, without processes (see module doc)."""

    states: dict[tuple[str, str], tuple[Any, int]] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    #: func -> (ret, text) to answer instead of doing the command
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: funcs that never answer (the admin registry's timeout)
    hang: set[str] = field(default_factory=set)
    #: seconds each command takes
    delay: float = 0.0
    #: patch progress: how many polls until done, and whether it then succeeds
    patch_polls: int = 2
    patch_succeeds: bool = True
    patches: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    running_now: int = 0
    running_max: int = 0
    #: called with (func, args) before each command runs (tests look at the DB there)
    on_command: Any = None
    _pid: int = 4000

    async def _enter(self, func: str, *args: Any) -> None:
        self.calls.append((func, args))
        if self.on_command is not None:
            await self.on_command(func, args)
        if func in self.hang:
            await asyncio.sleep(3600)
        self.running_now += 1
        self.running_max = max(self.running_max, self.running_now)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running_now -= 1

    def called(self, func: str) -> list[tuple[Any, ...]]:
        return [args for f, args in self.calls if f == func]

    async def startServer(self, app: str, server: str) -> tuple[int, str]:
        await self._enter("startServer", app, server)
        if "startServer" in self.fail:
            return self.fail["startServer"]
        self._pid += 1
        self.states[(app, server)] = (Active, self._pid)
        return 0, f"{app}.{server} started"

    async def stopServer(self, app: str, server: str) -> tuple[int, str]:
        await self._enter("stopServer", app, server)
        if "stopServer" in self.fail:
            return self.fail["stopServer"]
        self.states[(app, server)] = (Inactive, 0)
        return 0, f"{app}.{server} stopped"

    async def notifyServer(self, app: str, server: str, command: str) -> tuple[int, str]:
        await self._enter("notifyServer", app, server, command)
        return self.fail.get("notifyServer", (0, f"[notify ok] {command}"))

    async def loadServer(self, app: str, server: str) -> tuple[int, str]:
        await self._enter("loadServer", app, server)
        return self.fail.get("loadServer", (0, "loaded"))

    async def destroyServer(self, app: str, server: str) -> tuple[int, str]:
        await self._enter("destroyServer", app, server)
        self.states.pop((app, server), None)
        return self.fail.get("destroyServer", (0, "destroyed"))

    async def getStateInfo(self, app: str, server: str) -> tuple[int, bytes]:
        await self._enter("getStateInfo", app, server)
        state, pid = self.states.get((app, server), (Inactive, 0))
        info = NodeDescriptor.ServerStateInfo(
            serverState=state, processId=pid, nodeName=NODE, application=app, serverName=server
        )
        return 0, _state_reply().encode_results((info, "state ok"))

    async def patchPro(self, req: Any) -> tuple[int, str]:
        await self._enter("patchPro", req)
        if "patchPro" in self.fail:
            return self.fail["patchPro"]
        self.patches[(req.appname, req.servername)] = [0]
        return 0, "patch queued"

    async def getPatchPercent(self, app: str, server: str) -> tuple[int, bytes]:
        await self._enter("getPatchPercent", app, server)
        polls = self.patches.setdefault((app, server), [self.patch_polls])
        polls[0] += 1
        done = polls[0] >= self.patch_polls
        percent = 100 if done else 50
        info = NodeDescriptor.PatchInfo(
            bPatching=not done,
            iPercent=percent,
            sVersion="",
            sResult=("patched" if self.patch_succeeds else "md5 mismatch") if done else "",
            bSucc=done and self.patch_succeeds,
        )
        # as a node answers (NodeImp::getPatchPercent): 0 while patching or once succeeded,
        # else -1, the PatchInfo and its reason all the same
        return (0 if info.bPatching or info.bSucc else -1), encode(info)

    async def ping(self) -> tuple[int, str]:
        await self._enter("ping")
        return 0, "ping succ"

    async def shutdown(self) -> tuple[int, str]:
        await self._enter("shutdown")
        return 0, "shutting down"

    async def getLogFileList(self, app: str, server: str) -> tuple[int, bytes]:
        await self._enter("getLogFileList", app, server)
        return 0, encode_value([f"{app}.{server}.log", "stdout.log"], T.vector(T.STRING))

    async def getLogData(self, app: str, server: str, file: str, cmd: str) -> tuple[int, str]:
        await self._enter("getLogData", app, server, file, cmd)
        return 0, f"{file}: {cmd}\nline 1\n"

    async def getNodeLoad(self, app: str, server: str, pid: int) -> tuple[int, str]:
        await self._enter("getNodeLoad", app, server, pid)
        return 0, f"load of {pid}"


PATCH_SERVANT = "tars.tarspatch.PatchObj"


class FakePatchObj(Patch.PatchServant):
    """``Patch`` and ``PatchExt.listUploads`` over ``files[(app, server)][name] = bytes`` (see
    the module doc). ``staged`` records ``preparePatchFile``; ``fail`` maps a function name to
    the return code it answers instead; ``down`` makes every call raise (PatchObj gone)."""

    _tars_ops_: ClassVar[dict[str, Operation]] = {
        **Patch.PatchServant._tars_ops_,
        **TarsusPatch.PatchExtServant._tars_ops_,
    }

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.staged: list[tuple[str, str, str]] = []
        self.deleted: list[tuple[str, str, str]] = []
        self.fail: dict[str, int] = {}
        self.down = False

    def put(self, app: str, server: str, name: str, data: bytes) -> str:
        """Store an upload; its md5."""
        self.files.setdefault((app, server), {})[name] = data
        return hashlib.md5(data).hexdigest()

    def _check(self, func: str) -> int:
        if self.down:
            raise RuntimeError("PatchObj is down")
        return self.fail.get(func, 0)

    async def listUploads(self, application: str, serverName: str) -> tuple[int, list[Any]]:
        if ret := self._check("listUploads"):
            return ret, []
        files = self.files.get((application, serverName), {})
        return 0, [
            Patch.FileInfo(
                path=name, size=len(data), canExec=False, md5=hashlib.md5(data).hexdigest()
            )
            for name, data in sorted(files.items())
        ]

    async def preparePatchFile(self, app: str, serverName: str, patchFile: str) -> tuple[int, str]:
        if ret := self._check("preparePatchFile"):
            return ret, f"cannot stage {patchFile}"
        if patchFile not in self.files.get((app, serverName), {}):
            return -1, f"no file {patchFile}"
        self.staged.append((app, serverName, patchFile))
        return 0, ""

    async def deletePatchFile(self, app: str, serverName: str, patchFile: str) -> int:
        if ret := self._check("deletePatchFile"):
            return ret
        self.deleted.append((app, serverName, patchFile))
        return 0 if self.files.get((app, serverName), {}).pop(patchFile, None) is not None else -1


@pytest.fixture
async def patchobj() -> AsyncIterator[tuple[FakePatchObj, str]]:
    """A :class:`FakePatchObj` served on a real port, and its ``Obj@endpoint``."""
    fake = FakePatchObj()
    app = Application()
    adapter = app.add_servant(fake, PATCH_SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await app.start()
    try:
        yield fake, f"{PATCH_SERVANT}@{adapter.bound_endpoint}"
    finally:
        await app.stop(drain_timeout=1.0)


@dataclass
class Harness:
    store: Store
    registry: AdminRegistry
    app: Application
    channels: NodeChannels
    node: ScriptedNode
    node_channel: AdminChannel
    endpoint: str
    proxy: Any
    comm: Communicator
    _port: int = 20000
    extra: list[tuple[AdminChannel, Communicator]] = field(default_factory=list)
    patchobj: FakePatchObj | None = None

    async def deploy(
        self,
        app: str = "Demo",
        server: str = "Hello",
        node: str = NODE,
        port: int = 0,
        host: str = "",
    ) -> Any:
        """Deploy ``app.server`` on ``node`` with one servant (port 0: a fresh one) on
        ``host`` (default: the node's name)."""
        self._port += 1
        endpoint = f"tcp -h {host or node} -p {port or self._port} -t 60000"
        return await self.registry.deploy(
            ServerSpec(app, server, node, server_type="tars_python"),
            [AdapterSpec(f"{app}.{server}.HelloObj", endpoint)],
        )

    async def connect_node(self, name: str, handler: Any) -> AdminChannel:
        """Another node on the same admin registry (its own communicator, so its own
        connection: a node's pushes arrive on the connection it reported on)."""
        endpoint = self.endpoint

        async def resolve() -> list[str]:
            return [endpoint]

        comm = Communicator()
        channel = AdminChannel(comm, name, handler, resolve=resolve, interval=60)
        self.extra.append((channel, comm))
        assert await channel.report_once() == 1
        return channel


@pytest.fixture
def admin_settings(patchobj: tuple[FakePatchObj, str]) -> AdminSettings:
    """Settings of the ``admin`` fixture (override in a test module for other timings); the
    package store is the ``patchobj`` fixture's."""
    return AdminSettings(
        patch_obj=patchobj[1],
        batchpatch_node_timeout=2.0,
        elegant_wait_second=0,
        elegant_ready_timeout=1.0,
        ready_poll_interval=0.05,
        patch_poll_interval=0.01,
        patch_wait_timeout=5,
        task_sweep_interval=0.05,
        update_heart_interval=0.1,
    )


@pytest.fixture
async def admin(
    store: Store, admin_settings: AdminSettings, patchobj: tuple[FakePatchObj, str]
) -> AsyncIterator[Harness]:
    channels = NodeChannels(timeout=1.0, self_ip="127.0.0.1")
    app = Application()
    registry = add_admin(
        app, store, channels, endpoint="tcp -h 127.0.0.1 -p 0 -t 60000", settings=admin_settings
    )
    await app.start()
    assert registry.adapter is not None
    endpoint = str(registry.adapter.bound_endpoint)
    # the operator's calls wait as long as a loaded machine needs (the suite runs in parallel
    # workers beside MariaDB); the admin registry's own timeouts (to nodes) are its settings'
    comm = Communicator(timeout_ms=30000)
    node = ScriptedNode()

    async def resolve() -> list[str]:
        return [endpoint]

    node_channel = AdminChannel(comm, NODE, node, resolve=resolve, interval=60)
    assert await node_channel.report_once() == 1
    proxy = comm.string_to_proxy(AdminReg.AdminRegProxy, f"{ADMIN_SERVANT}@{endpoint}")
    harness = Harness(
        store,
        registry,
        app,
        channels,
        node,
        node_channel,
        endpoint,
        proxy,
        comm,
        patchobj=patchobj[0],
    )
    try:
        yield harness
    finally:
        for channel, own in harness.extra:
            await channel.stop()
            await own.close()
        await node_channel.stop()
        await comm.close()
        await app.stop(drain_timeout=1.0)
