"""The node push channel over real sockets: an admin registry pushes NodePush commands on the
connection a node keeps open with reportNode, and the node answers with reportResult."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tarsus.codec import ResponsePacket
from tarsus.framework.admin.channel import (
    NodeCallTimeout,
    NodeChannels,
    NodeNotConnected,
    push_operations,
)
from tarsus.framework.node.channel import AdminChannel
from tarsus.protocol.gen import AdminReg, NodeDescriptor
from tarsus.rpc import current
from tarsus.rpc.communicator import Communicator
from tarsus.testing import eventually, serve

ADMIN_OBJ = "tars.tarsAdminRegistry.AdminRegObj"


class ChannelOnlyAdmin(AdminReg.AdminRegServant):  # type: ignore[misc]
    """The three AdminReg methods the channel needs, over the real NodeChannels."""

    def __init__(self, channels: NodeChannels) -> None:
        self.channels = channels

    async def reportNode(self, rn: Any) -> int:
        self.channels.attach(rn.nodeName, current())
        return 0

    async def deleteNode(self, rn: Any) -> int:
        self.channels.detach(rn.nodeName)
        return 0

    async def reportResult(self, requestId: int, funcName: str, ret: int, result: str) -> int:
        self.channels.report_result(requestId, funcName, ret, result)
        return 0


class Commands:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.release = asyncio.Event()

    async def startServer(self, application: str, serverName: str) -> tuple[int, str]:
        self.calls.append(("startServer", (application, serverName)))
        return 0, f"started {application}.{serverName}"

    async def notifyServer(self, application: str, server: str, command: str) -> tuple[int, str]:
        self.calls.append(("notifyServer", (application, server, command)))
        return 0, f"notified {command}"

    async def getStateInfo(self, application: str, serverName: str) -> tuple[int, bytes]:
        return 0, b"\x00\x01\xff binary"

    async def stopServer(self, application: str, serverName: str) -> tuple[int, str]:
        self.calls.append(("stopServer", (application, serverName)))
        await self.release.wait()  # a node that never answers in time
        return 0, "late"

    async def ping(self) -> tuple[int, str]:
        raise RuntimeError("disk on fire")


async def _connected_node(channels: NodeChannels, endpoint: str, commands: Commands) -> Any:
    comm = Communicator()

    async def resolve() -> list[str]:
        return [endpoint]

    node = AdminChannel(comm, "10.0.0.7", commands, resolve=resolve, interval=60)
    assert await node.report_once() == 1
    assert channels.connected("10.0.0.7")
    return node, comm


async def test_pushed_command_reaches_the_node_and_its_answer_comes_back() -> None:
    channels = NodeChannels(timeout=5.0)
    commands = Commands()
    async with serve(ChannelOnlyAdmin(channels), ADMIN_OBJ) as served:
        node, comm = await _connected_node(channels, served.endpoint, commands)
        try:
            ret, result = await channels.request("10.0.0.7", "startServer", "Test", "HelloServer")
            assert (ret, result) == (0, "started Test.HelloServer")
            ret, result = await channels.request(
                "10.0.0.7", "notifyServer", "Test", "HelloServer", "tars.viewstatus"
            )
            assert (ret, result) == (0, "notified tars.viewstatus")
            # Tars-encoded answers travel in the string unharmed
            ret, raw = await channels.request("10.0.0.7", "getStateInfo", "Test", "HelloServer")
            assert raw.encode("utf-8", "surrogateescape") == b"\x00\x01\xff binary"
            # a failing command is an error answer, not a hang
            ret, result = await channels.request("10.0.0.7", "ping")
            assert ret == -1 and "disk on fire" in result
            assert ("startServer", ("Test", "HelloServer")) in commands.calls
            assert "10.0.0.7" in channels.heartbeats()
        finally:
            await node.stop()
            await comm.close()


async def test_a_node_that_goes_away_fails_its_pending_command_as_not_connected() -> None:
    """A node killed while a command waits for its answer: the caller hears "not connected"
    (the node is gone), not a timeout ("stopped answering") after the whole wait."""
    channels = NodeChannels(timeout=3.0)
    commands = Commands()
    async with serve(ChannelOnlyAdmin(channels), ADMIN_OBJ) as served:
        node, comm = await _connected_node(channels, served.endpoint, commands)
        pending = asyncio.ensure_future(
            channels.request("10.0.0.7", "stopServer", "Test", "HelloServer")
        )
        await eventually(lambda: ("stopServer", ("Test", "HelloServer")) in commands.calls, "run")
        await comm.close()  # the node's connection closes (its process died)
        with pytest.raises(NodeNotConnected):
            await pending
        assert not channels.connected("10.0.0.7")
        # getNodeList no longer shows it: its heartbeat went with its connection
        assert "10.0.0.7" not in channels.heartbeats()
        await node.stop()


async def test_unknown_node_and_timeout_are_distinct_errors() -> None:
    channels = NodeChannels(timeout=0.3)
    commands = Commands()
    async with serve(ChannelOnlyAdmin(channels), ADMIN_OBJ) as served:
        with pytest.raises(NodeNotConnected):
            await channels.request("10.9.9.9", "startServer", "A", "B")
        node, comm = await _connected_node(channels, served.endpoint, commands)
        try:
            with pytest.raises(NodeCallTimeout):
                await channels.request("10.0.0.7", "stopServer", "Test", "HelloServer")
            commands.release.set()  # the late answer is dropped without harm
            await asyncio.sleep(0.2)
            ret, _ = await channels.request("10.0.0.7", "startServer", "Test", "HelloServer")
            assert ret == 0
        finally:
            await node.stop()
            await comm.close()


async def test_node_gone_means_not_connected() -> None:
    channels = NodeChannels(timeout=2.0)
    async with serve(ChannelOnlyAdmin(channels), ADMIN_OBJ) as served:
        node, comm = await _connected_node(channels, served.endpoint, Commands())
        await node.stop()
        await comm.close()
        await eventually(lambda: not channels.connected("10.0.0.7"), "the channel to close")
        with pytest.raises(NodeNotConnected):
            await channels.request("10.0.0.7", "startServer", "A", "B")


async def test_push_packet_is_what_tarscpp_sends() -> None:
    """A raw socket stands in for an upstream tarsnode: the push is a ResponsePacket with
    request id 0, iVersion 1 and status TARS_FUNC, the arguments as out-parameters 1..n."""
    channels = NodeChannels(timeout=5.0, self_ip="198.18.0.1")
    async with serve(ChannelOnlyAdmin(channels), ADMIN_OBJ) as served:
        comm = Communicator()
        proxy = comm.string_to_proxy(AdminReg.AdminRegProxy, f"{ADMIN_OBJ}@{served.endpoint}")
        pushes: list[ResponsePacket] = []
        proxy.tars_set_push_callback(pushes.append)
        assert await proxy.reportNode(NodeDescriptor.ReportNode("n1", "sid")) == 0
        request = asyncio.ensure_future(channels.request("n1", "startServer", "Test", "Hello"))
        await eventually(lambda: pushes, "the push to the node")
        (push,) = pushes
        assert push.iRequestId == 0 and push.iVersion == 1 and push.iRet == 0
        assert push.status == {"TARS_FUNC": "startServer"}
        rid, admin_ip, app, server = push_operations()["startServer"].decode_results(push.sBuffer)
        assert (admin_ip, app, server) == ("198.18.0.1", "Test", "Hello")
        assert await proxy.reportResult(rid, "startServer", 0, "ok") == 0
        assert await request == (0, "ok")
        await comm.close()
