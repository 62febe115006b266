"""A framework object served with ``-e 1`` (as installs beyond loopback serve them): the node's
push channel to AdminRegObj authenticates with the node's keys and carries commands; a node
without keys, or with a wrong secret, is refused and never attached, so nothing can be pushed
to it and nothing it sent ran."""

from __future__ import annotations

from typing import Any

from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.node.channel import AdminChannel
from tarsus.protocol.gen import AdminReg
from tarsus.rpc import current
from tarsus.rpc.application import Application
from tarsus.rpc.auth import Credentials
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.security import ServantSecurity

ADMIN_OBJ = "tars.tarsAdminRegistry.AdminRegObj"
KEYS = Credentials("tarsnode", "generated-by-the-installer")


class ChannelAdmin(AdminReg.AdminRegServant):  # type: ignore[misc]
    def __init__(self, channels: NodeChannels) -> None:
        self.channels = channels
        self.reports: list[str] = []

    async def reportNode(self, rn: Any) -> int:
        self.reports.append(rn.nodeName)
        self.channels.attach(rn.nodeName, current())
        return 0

    async def reportResult(self, requestId: int, funcName: str, ret: int, result: str) -> int:
        self.channels.report_result(requestId, funcName, ret, result)
        return 0


class Commands:
    async def startServer(self, application: str, serverName: str) -> tuple[int, str]:
        return 0, f"started {application}.{serverName}"


async def _node(endpoint: str, name: str, keys: Credentials | None) -> tuple[AdminChannel, Any]:
    security = {ADMIN_OBJ: ServantSecurity(keys)} if keys else {}
    comm = Communicator(cache_dir=None, security=security)

    async def resolve() -> list[str]:
        return [endpoint]

    return AdminChannel(comm, name, Commands(), resolve=resolve, interval=60), comm


async def test_push_channel_to_an_authenticating_admin_registry() -> None:
    channels = NodeChannels(timeout=5.0)
    admin = ChannelAdmin(channels)
    app = Application()
    adapter = app.add_servant(
        admin, ADMIN_OBJ, "tcp -h 127.0.0.1 -p 0 -t 60000 -e 1", security=ServantSecurity(KEYS)
    )
    await app.start()
    endpoint = str(adapter.bound_endpoint)
    nodes = [
        await _node(endpoint, "10.0.0.8", None),
        await _node(endpoint, "10.0.0.9", Credentials(KEYS.access_key, "guessed")),
        await _node(endpoint, "10.0.0.7", KEYS),
    ]
    try:
        connected = [await node.report_once() for node, _comm in nodes]
        assert connected == [0, 0, 1]
        assert admin.reports == ["10.0.0.7"]  # the refused nodes' reportNode never ran
        assert not channels.connected("10.0.0.8") and not channels.connected("10.0.0.9")
        ret, result = await channels.request("10.0.0.7", "startServer", "Test", "HelloServer")
        assert (ret, result) == (0, "started Test.HelloServer")
        assert sum(adapter.auth.refused.values()) == 1  # the keyless node never connected
    finally:
        for node, comm in nodes:
            await node.stop()
            await comm.close()
        await app.stop(drain_timeout=1.0)
