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

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from tarsus.framework.registry.routes import caller_ip
from tarsus.protocol.gen import NodeDescriptor, RegistryDescriptor
from tarsus.protocol.gen.Registry import (
    DockerRegistry,
    FrameworkKey,
    PatchResult,
    RegistryServant,
)
from tarsus.rpc.current import current
from tarsus.store import StoreError

if TYPE_CHECKING:
    from tarsus.framework.registry.service import Registry, ServerView

__all__ = [
    "NODE_SERVER_OBJ",
    "NODE_SERVER_PORT",
    "RegistryImp",
    "node_address",
    "server_descriptor",
]

log = logging.getLogger("tarsus.registry.nodes")

_DB_ERRORS = (StoreError, SQLAlchemyError, OSError)


def _peer() -> tuple[str, int] | None:
    try:
        return current().peer
    except LookupError:
        return None


#: The node's own object and its port in upstream's tarsnode template (``tars.tarsnode``
#: ``ServerObjAdapter``); the object the admin registry's ``checkServer`` pings for a node.
NODE_SERVER_OBJ = "tars.tarsnode.ServerObj"
NODE_SERVER_PORT = 19386


def node_address(ip: str, port: int, peer: tuple[str, int] | None) -> tuple[str, int]:
    """Where a registering node is: what it says, else (3.x nodes leave ``endpointIp`` and
    ``endpointPort`` empty, TarsFramework ``NodeServer::initialize``) the address its call came
    from and the ServerObj port. ``t_node_info`` then names the node's host, and
    ``AdminReg.getServers`` (TarsWeb's framework list) lists a reachable object."""
    return (ip or caller_ip(peer)), (int(port) or NODE_SERVER_PORT)


def _time_text(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def server_descriptor(view: ServerView) -> RegistryDescriptor.ServerDescriptor:
    """A ``tars.ServerDescriptor`` as upstream's ``getServers`` fills it."""
    row = view.row
    adapters = {
        a.adapter_name: RegistryDescriptor.AdapterDescriptor(
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
    return RegistryDescriptor.ServerDescriptor(
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
        baseImage=view.base_image,
        sha=view.base_image_sha,
        baseImageId=str(row.base_image_id) if row.base_image_id else "",
    )


class RegistryImp(RegistryServant):
    """The ``Registry`` servant of a :class:`~tarsus.framework.registry.service.Registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def reportNode(self, rn: NodeDescriptor.ReportNode) -> int:
        self.registry.reported_nodes[rn.nodeName] = _peer()
        return 0

    async def registerNode(
        self, nodeName: str, ni: NodeDescriptor.NodeInfo, li: NodeDescriptor.LoadInfo
    ) -> int:
        ip, port = node_address(ni.endpointIp, ni.endpointPort, _peer())
        return await self.registry.register_node(
            nodeName,
            ni.nodeObj,
            ip,
            port,
            ni.dataDir,
            (li.avg1, li.avg5, li.avg15),
            ni.version,
            node_obj_default=f"{NODE_SERVER_OBJ}@tcp -h {ip} -p {port} -t 60000" if ip else "",
        )

    async def keepAlive(self, nodeName: str, load: NodeDescriptor.LoadInfo) -> int:
        self.registry.keep_alive(nodeName, (load.avg1, load.avg5, load.avg15))
        return 0

    async def getServers(
        self, app: str, serverName: str, nodeName: str
    ) -> list[RegistryDescriptor.ServerDescriptor]:
        return [
            server_descriptor(v) for v in await self.registry.servers_of(app, serverName, nodeName)
        ]

    async def updateServer(  # type: ignore[override]  # renamed slots, called positionally
        self, nodeName: str, app: str, serverName: str, state: NodeDescriptor.ServerStateInfo
    ) -> int:
        # Wire slots 1..3 are (node, app, server): see the module docstring.
        return await self.registry.update_server(
            nodeName, app, serverName, int(state.serverState), state.processId
        )

    async def updateServerBatch(self, vState: list[NodeDescriptor.ServerStateInfo]) -> int:
        return await self.registry.update_server_batch(
            (s.nodeName, s.application, s.serverName, int(s.serverState), s.processId)
            for s in vState
        )

    async def destroyNode(self, nodeName: str) -> int:
        """Only the node itself may say it is going away (upstream lets any caller, which makes
        a node's services unroutable until its next heartbeat re-registers it): the call must
        come from the node's registered address (``t_node_info.endpoint_ip``, which
        registration fills from the node's own connection) or from the address that is its
        name. Anything else answers -1 and changes nothing. Operators use the admin registry,
        which writes the store directly. See docs/registry.md."""
        ip = caller_ip(_peer())
        try:
            row = await self.registry.store.nodes.get(nodeName)
        except _DB_ERRORS as e:
            log.warning("destroyNode %r from %s: the database failed: %s", nodeName, ip, e)
            return -1
        if row is not None and ip not in (row.endpoint_ip, row.node_name):
            log.warning(
                "destroyNode %r refused: the call came from %s, not from the node (%s)",
                nodeName,
                ip or "an unknown address",
                row.endpoint_ip or "no address registered",
            )
            return -1
        return await self.registry.destroy_node(nodeName)

    async def reportVersion(self, app: str, serverName: str, nodeName: str, version: str) -> int:
        self.registry.report_version(app, serverName, nodeName, version)
        return 0

    async def getNodeTemplate(self, nodeName: str) -> tuple[int, str]:
        return 0, await self.registry.node_template(nodeName)

    async def getClientIp(self) -> tuple[int, str]:
        return 0, caller_ip(_peer())

    async def updatePatchResult(self, result: PatchResult) -> int:
        return await self.registry.patch_result(
            result.sApplication,
            result.sServerName,
            result.sNodeName,
            result.sVersion,
            result.sUserName,
        )

    # -- containers and the market: not offered ------------------------------------------------

    async def getDockerRegistry(self) -> tuple[int, list[DockerRegistry]]:
        return 0, []

    async def dockerPull(self, baseImageId: str) -> int:
        return -1

    async def getFrameworkKey(self) -> tuple[int, FrameworkKey]:
        return 0, FrameworkKey()
