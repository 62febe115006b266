"""``tars.tarsnode.ServerObj`` (``ServerF``, port 19386): where every server on this machine
sends its heartbeats (``NodeF.tars``). A thin servant over the :class:`Supervisor`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tarsus.framework.node.idl import nodef
from tarsus.rpc.servant import Servant

if TYPE_CHECKING:
    from tarsus.framework.node.supervisor import Supervisor

__all__ = ["SERVER_OBJ", "SERVER_OBJ_PORT", "server_obj_servant"]

SERVER_OBJ = "tars.tarsnode.ServerObj"
SERVER_OBJ_PORT = 19386


def server_obj_servant(supervisor: Supervisor) -> Servant:
    """The ``ServerF`` servant of ``supervisor``. Unknown servers get -1, as upstream."""
    base: Any = nodef().ServerFServant

    class ServerObj(base):  # type: ignore[misc]
        async def keepAlive(self, serverInfo: Any) -> int:
            return supervisor.keep_alive(serverInfo)

        async def keepActiving(self, serverInfo: Any) -> int:
            return supervisor.keep_activing(serverInfo)

        async def reportVersion(self, app: str, serverName: str, version: str) -> int:
            return await supervisor.report_version(app, serverName, version)

        async def getLatestKeepAliveTime(self) -> int:
            return supervisor.latest_keepalive_time

    servant: Servant = ServerObj()
    return servant
