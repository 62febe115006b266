"""``tars.tarsnode.ServerObj`` (``ServerF``, port 19386): where every server on this machine
sends its heartbeats (``NodeF.tars``). A thin servant over the :class:`Supervisor`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tarsus.codec.constants import NODE_SERVER_OBJ as SERVER_OBJ
from tarsus.codec.constants import NODE_SERVER_PORT as SERVER_OBJ_PORT
from tarsus.protocol.gen import NodeF
from tarsus.rpc.servant import Servant

if TYPE_CHECKING:
    from tarsus.framework.node.supervisor import Supervisor

__all__ = ["SERVER_OBJ", "SERVER_OBJ_PORT", "server_obj_servant"]


def server_obj_servant(supervisor: Supervisor) -> Servant:
    """The ``ServerF`` servant of ``supervisor``. Unknown servers get -1, as upstream."""

    class ServerObj(NodeF.ServerFServant):
        async def keepAlive(self, serverInfo: NodeF.ServerInfo) -> int:
            return supervisor.keep_alive(serverInfo)

        async def keepActiving(self, serverInfo: NodeF.ServerInfo) -> int:
            return supervisor.keep_activing(serverInfo)

        async def reportVersion(self, app: str, serverName: str, version: str) -> int:
            return await supervisor.report_version(app, serverName, version)

        async def getLatestKeepAliveTime(self) -> int:
            return supervisor.latest_keepalive_time

    servant: Servant = ServerObj()
    return servant
