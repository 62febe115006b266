"""``tars.tarsregistry.RegistryObj``: what tarsnode tells the registry, and asks of it.

**updateServer's argument order** (upstream ``RegistryImp``). The IDL declares ``updateServer(app,
serverName, nodeName, state)``, but every tarsnode sends the node name in the first slot (tag 1),
then the application and the server (``updateServer(nodeName, app, serverName, state)``), and
upstream's registry reads them in that order. We do the same: the first argument is the node,
whatever the IDL calls it, in every protocol (Tars, TUP and JSON address it as ``app``). A
caller following the IDL literally would have its report applied to the wrong row — the
instance named (``serverName`` as application, ``nodeName`` as server) does not exist and the
report is ignored — so our own node agent sends the node name first, like tarsnode.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import tarsus.idl
import tarsus.protocol
from tarsus.framework.registry.routes import caller_ip
from tarsus.rpc.current import current

if TYPE_CHECKING:
    from tarsus.framework.registry.service import Registry, ServerView

__all__ = ["RegistryImp", "registry_idl", "server_descriptor"]

log = logging.getLogger("tarsus.registry.nodes")


@functools.cache
def registry_idl() -> Any:
    """The ``tars`` module of ``Registry.tars``."""
    return tarsus.idl.load(tarsus.protocol.path("Registry.tars")).tars


def _peer() -> tuple[str, int] | None:
    try:
        return current().peer
    except LookupError:
        return None


def _time_text(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def server_descriptor(view: ServerView) -> Any:
    """A ``tars.ServerDescriptor`` as upstream's ``getServers`` fills it."""
    idl = registry_idl()
    row = view.row
    adapters = {
        a.adapter_name: idl.AdapterDescriptor(
            adapterName=a.adapter_name,
            threadNum=str(a.thread_num),
            endpoint=a.endpoint,
            maxConnections=a.max_connections,
            allowIp=a.allow_ip,
            servant=a.servant,
            queuecap=a.queuecap,
            queuetimeout=a.queuetimeout,
            grid=0,
            protocol=a.protocol,
            handlegroup=a.handlegroup,
        )
        for a in view.adapters
        if a.adapter_name
    }
    return idl.ServerDescriptor(
        application=row.application,
        serverName=row.server_name,
        nodeName=row.node_name,
        basePath=row.base_path,
        exePath=row.exe_path,
        settingState=row.setting_state,
        presentState=row.present_state,
        profile=view.profile,
        patchVersion=row.patch_version,
        patchTime=_time_text(row.patch_time),
        patchUser=row.patch_user,
        adapters=adapters,
        serverType=row.server_type,
        startScript=row.start_script_path,
        stopScript=row.stop_script_path,
        monitorScript=row.monitor_script_path,
        configCenterPort=row.config_center_port,
        asyncThreadNum=view.async_thread_num,
        setId=view.set_id,
        runType=row.run_type,
        baseImageId=str(row.base_image_id) if row.base_image_id else "",
    )


_Base: Any = registry_idl().RegistryServant


class RegistryImp(_Base):  # type: ignore[misc]
    """The ``Registry`` servant of a :class:`~tarsus.framework.registry.service.Registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def reportNode(self, rn: Any) -> int:
        self.registry.reported_nodes[rn.nodeName] = _peer()
        return 0

    async def registerNode(self, nodeName: str, ni: Any, li: Any) -> int:
        return await self.registry.register_node(
            nodeName,
            ni.nodeObj,
            ni.endpointIp,
            ni.endpointPort,
            ni.dataDir,
            (li.avg1, li.avg5, li.avg15),
            ni.version,
        )

    async def keepAlive(self, nodeName: str, load: Any) -> int:
        self.registry.keep_alive(nodeName, (load.avg1, load.avg5, load.avg15))
        return 0

    async def getServers(self, app: str, serverName: str, nodeName: str) -> list[Any]:
        return [
            server_descriptor(v) for v in await self.registry.servers_of(app, serverName, nodeName)
        ]

    async def updateServer(self, nodeName: str, app: str, serverName: str, state: Any) -> int:
        # Wire slots 1..3 are (node, app, server): see the module docstring.
        return await self.registry.update_server(
            nodeName, app, serverName, int(state.serverState), state.processId
        )

    async def updateServerBatch(self, vState: list[Any]) -> int:
        return await self.registry.update_server_batch(
            (s.nodeName, s.application, s.serverName, int(s.serverState), s.processId)
            for s in vState
        )

    async def destroyNode(self, nodeName: str) -> int:
        return await self.registry.destroy_node(nodeName)

    async def reportVersion(self, app: str, serverName: str, nodeName: str, version: str) -> int:
        self.registry.report_version(app, serverName, nodeName, version)
        return 0

    async def getNodeTemplate(self, nodeName: str) -> tuple[int, str]:
        return 0, await self.registry.node_template(nodeName)

    async def getClientIp(self) -> tuple[int, str]:
        return 0, caller_ip(_peer())

    async def updatePatchResult(self, result: Any) -> int:
        return await self.registry.patch_result(
            result.sApplication,
            result.sServerName,
            result.sNodeName,
            result.sVersion,
            result.sUserName,
        )

    # -- containers and the market: not offered ------------------------------------------------

    async def getDockerRegistry(self) -> tuple[int, list[Any]]:
        return 0, []

    async def dockerPull(self, baseImageId: str) -> int:
        return -1

    async def getFrameworkKey(self) -> tuple[int, Any]:
        return 0, registry_idl().FrameworkKey()
