"""A framework in this process (registry, admin registry, node agent on free ports) and what
an operator does with it: deploy a server, publish a package to the node, start, stop, call
by name. Every call goes through ``AdminRegObj`` or ``QueryObj`` over a real socket; the
services run as real processes under the node."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tarfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarsus.framework.admin import AdminSettings
from tarsus.framework.admin.inventory import Inventory
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.patching import wait_patch
from tarsus.protocol.gen import AdminReg, NodeDescriptor
from tarsus.rpc.communicator import Communicator
from tarsus.store.servers import AdapterSpec, ServerSpec
from tarsus.testing import eventually, framework_ports

NODE = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent.parent


def pack(tgz: Path, files: Mapping[str, bytes | Path], *, mode: int = 0o755) -> Path:
    """A ``.tgz`` holding ``files`` (member name -> content, or a file to copy)."""
    with tarfile.open(tgz, "w:gz") as tar:
        for name, content in files.items():
            if isinstance(content, Path):
                tar.add(content, arcname=name)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = mode
            tar.addfile(info, io.BytesIO(content))
    return tgz


@dataclass
class Platform:
    framework: AllInOne
    settings: AllInOneSettings
    comm: Communicator
    admin: Any

    @property
    def node_data(self) -> Path:
        return self.settings.node_dir / "data"

    async def deploy(
        self, app: str, server: str, server_type: str, servants: dict[str, int], profile: str = ""
    ) -> None:
        assert self.framework.store is not None
        await Inventory(self.framework.store).deploy(
            ServerSpec(
                application=app,
                server_name=server,
                node_name=NODE,
                server_type=server_type,
                template_name="tars.default",
                profile=profile,
            ),
            [
                AdapterSpec(
                    servant=f"{app}.{server}.{name}",
                    endpoint=f"tcp -h {NODE} -p {port} -t 60000",
                )
                for name, port in servants.items()
            ],
            user="test",
        )

    async def publish(self, app: str, server: str, tgz: Path) -> tuple[bool, str]:
        """``batchPatch`` the package at ``tgz``, followed to the end: (succeeded, why)."""
        req = NodeDescriptor.PatchRequest(
            appname=app, servername=server, nodename=NODE, user="test", filepath=str(tgz)
        )
        ret, result = await self.admin.batchPatch(req)
        if ret != 0:
            return False, result
        judged, _, info = await wait_patch(
            lambda: self.admin.getPatchPercent(app, server, NODE), timeout=60.0, interval=0.05
        )
        return judged.succeeded, judged.reason or info.sResult

    async def start(self, app: str, server: str) -> None:
        ret, result = await self.admin.startServer(app, server, NODE)
        assert ret == 0, result

    async def stop(self, app: str, server: str) -> None:
        ret, result = await self.admin.stopServer(app, server, NODE)
        assert ret == 0, result

    async def state(self, app: str, server: str) -> tuple[str, int]:
        """The node's present state of the server and its pid."""
        ret, desc, result = await self.admin.getServerState(app, server, NODE)
        assert ret == 0, result
        return desc.presentStateInNode.lower(), desc.processId

    async def active_pid(self, app: str, server: str, *, other_than: int = 0) -> int:
        """Wait until the server is Active on the node with a pid (not ``other_than``)."""
        found = 0

        async def active() -> bool:
            nonlocal found
            state, pid = await self.state(app, server)
            found = pid
            return state == "active" and pid > 0 and pid != other_than

        await eventually(active, f"{app}.{server} to be Active", timeout=30)
        return found

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def platform(tmp_path: Path, *, stat_window: int = 60) -> AsyncIterator[Platform]:
    ports = framework_ports()
    admin_port = ports.admin
    settings = AllInOneSettings(
        data_dir=tmp_path / "fw",
        ports=ports,
        admin=AdminSettings(patch_poll_interval=0.05),
        stat_window=stat_window,
    )
    framework = AllInOne(settings)
    await framework.start()
    try:
        async with Communicator(settings.locator, cache_dir=None) as comm:
            admin = comm.string_to_proxy(
                AdminReg.AdminRegProxy,
                f"tars.tarsAdminRegistry.AdminRegObj@tcp -h {NODE} -p {admin_port}",
            ).with_options(timeout_ms=30000)
            yield Platform(framework, settings, comm, admin)
    finally:
        await framework.stop()
