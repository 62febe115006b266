"""RegistryObj served for real: what tarsnode reports and asks, on both engines."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from typing import Any

import pytest
from registry_harness import FAST, Running, deploy, running_registry

from tarsus.codec import RequestPacket, ResponsePacket, decode, encode
from tarsus.framework.registry import RegistrySettings
from tarsus.protocol.gen import NodeDescriptor, Registry
from tarsus.store import Store
from tarsus.store.schema import t_server_conf
from tarsus.testing import eventually

OBJ = "Test.HelloServer.HelloObj"


def node_info(name: str, obj: str = "") -> Any:
    return NodeDescriptor.NodeInfo(
        nodeName=name,
        nodeObj=obj,
        endpointIp=name,
        endpointPort=19386,
        timeOut=0,
        dataDir="/usr/local/app/tars/tarsnode/data",
        version="3.0.17",
    )


def load(avg: float = 0.25) -> Any:
    return NodeDescriptor.LoadInfo(avg1=avg, avg5=avg, avg15=avg)


async def ports(reg: Running, obj: str = OBJ) -> tuple[list[int], list[int]]:
    _, active, inactive = await reg.query().findObjectById4Any(obj)
    return sorted(e.port for e in active), sorted(e.port for e in inactive)


async def present(store: Store, node: str, server: str = "HelloServer") -> tuple[str, int]:
    row = await store.servers.get("Test", server, node)
    assert row is not None
    return row.present_state, row.process_id


# -- updateServer: the wire order tarsnode uses ---------------------------------------------------


def _head(tag: int, kind: int) -> bytes:
    return bytes([(tag << 4) | kind])


def _string(tag: int, value: str) -> bytes:
    data = value.encode()
    assert len(data) < 256
    return _head(tag, 6) + bytes([len(data)]) + data  # STRING1


def _int(tag: int, value: int) -> bytes:
    if value == 0:
        return _head(tag, 12)  # ZERO_TAG
    return _head(tag, 2) + struct.pack(">i", value)  # INT32


def tarsnode_update_server(node: str, app: str, server: str, state: int, pid: int) -> bytes:
    """The request body tarsnode sends: ``updateServer(nodeName, app, serverName, info)`` —
    node name at tag 1 (ServerObject::synState), encoded by hand, not by our IDL."""
    info = _int(0, state) + _int(1, pid)
    return (
        _string(1, node)
        + _string(2, app)
        + _string(3, server)
        + _head(4, 10)
        + info
        + _head(0, 11)  # STRUCT_BEGIN ... STRUCT_END
    )


async def raw_call(endpoint: Any, servant: str, func: str, body: bytes) -> ResponsePacket:
    packet = RequestPacket(
        iVersion=1, iRequestId=77, sServantName=servant, sFuncName=func, sBuffer=body
    )
    data = encode(packet)
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    try:
        writer.write(struct.pack(">I", len(data) + 4) + data)
        size = struct.unpack(">I", await reader.readexactly(4))[0]
        return decode(await reader.readexactly(size - 4), ResponsePacket)
    finally:
        writer.close()


async def test_update_server_reads_the_node_name_first_as_tarsnode_sends_it(
    store: Store,
) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    slow = RegistrySettings(**{**_fields(FAST), "load_interval": 3600.0})  # no load will help
    async with running_registry(store, slow) as reg:
        assert await ports(reg) == ([9001], [])
        body = tarsnode_update_server("10.0.0.1", "Test", "HelloServer", 0, 0)
        reply = await raw_call(
            reg.registry.adapters[1].bound_endpoint,
            "tars.tarsregistry.RegistryObj",
            "updateServer",
            body,
        )
        assert reply.iRet == 0
        assert reply.sBuffer == _int(0, 0)  # return value 0
        assert await present(store, "10.0.0.1") == ("inactive", 0)
        # applied to the routes at once, not at the next load
        assert await ports(reg) == ([], [9001])
        # and back, with a pid: through our own proxy, which must put the node first too
        info = NodeDescriptor.ServerStateInfo(
            serverState=NodeDescriptor.ServerState.Active, processId=99
        )
        assert await reg.nodes().updateServer("10.0.0.1", "Test", "HelloServer", info) == 0
        assert await present(store, "10.0.0.1") == ("active", 99)
        assert await ports(reg) == ([9001], [])


async def test_update_server_in_idl_order_changes_nothing(reg: Running, store: Store) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    info = NodeDescriptor.ServerStateInfo(
        serverState=NodeDescriptor.ServerState.Inactive, processId=0
    )
    # (app, server, node) as the IDL names them: read as node "Test", app "HelloServer"...
    assert await reg.nodes().updateServer("Test", "HelloServer", "10.0.0.1", info) == 0
    assert await present(store, "10.0.0.1") == ("active", 4242)


async def test_update_server_batch_skips_what_the_registry_already_knows(
    reg: Running, store: Store
) -> None:
    for node, port in (("10.0.0.1", 9001), ("10.0.0.2", 9002)):
        await deploy(store, "Test", "HelloServer", node, {"HelloObj": f"tcp -h {node} -p {port}"})
    await eventually(lambda: _eq(ports(reg), ([9001, 9002], [])), "both routed")

    def info(node: str, state: Any, pid: int) -> Any:
        return NodeDescriptor.ServerStateInfo(
            serverState=state,
            processId=pid,
            nodeName=node,
            application="Test",
            serverName="HelloServer",
        )

    active = NodeDescriptor.ServerState.Active
    batch = [info("10.0.0.1", active, 555), info("10.0.0.2", 0, 0)]
    assert await reg.nodes().updateServerBatch(batch) == 0
    # 10.0.0.1: already active, but a pid the registry has not stored: written (upstream
    # skips it, so a server restarted while the registry was away kept its old pid)
    assert await present(store, "10.0.0.1") == ("active", 555)
    assert await present(store, "10.0.0.2") == ("inactive", 0)
    assert await ports(reg) == ([9001], [9002])  # at once
    # the same batch again is skipped: what another writer stored meanwhile stays
    await store.servers.update_present("10.0.0.1", "Test", "HelloServer", "active", 777)
    assert await reg.nodes().updateServerBatch(batch) == 0
    assert await present(store, "10.0.0.1") == ("active", 777)
    # a new pid only is written
    assert await reg.nodes().updateServerBatch([info("10.0.0.1", active, 556)]) == 0
    assert await present(store, "10.0.0.1") == ("active", 556)
    assert await reg.nodes().updateServerBatch([]) == 0


async def test_keepalives_are_queued_and_written_together(reg: Running, store: Store) -> None:
    nodes = reg.nodes()
    for name in ("10.0.0.1", "10.0.0.2"):
        assert await nodes.registerNode(name, node_info(name), load(0.0)) == 0
    assert await nodes.keepAlive("10.0.0.1", load(1.5)) == 0
    assert await nodes.keepAlive("10.0.0.2", load(2.5)) == 0
    assert await nodes.keepAlive("10.9.9.9", load(3.0)) == 0  # unknown node: still 0

    async def written() -> bool:
        rows = {n.node_name: n.load_avg1 for n in await store.nodes.list()}
        return rows == {"10.0.0.1": 1.5, "10.0.0.2": 2.5}

    await eventually(written, "the queued keepAlives written")


async def test_a_paced_flush_writes_every_beat_and_a_cancelled_one_keeps_the_rest(
    store: Store,
) -> None:
    """A flush writes its beats in short statements spread over time: all of them land, and a
    flush cut short (the registry stopping) leaves what it did not write queued."""
    names = [f"10.0.{i // 250}.{i % 250}" for i in range(250)]
    for name in names:
        await store.nodes.register(name, "", name, 19386, "/d", 0, 0, 0, "v")
    quiet = RegistrySettings(
        **{**_fields(FAST), "flush_interval": 3600.0, "node_sweep_interval": 3600.0}
    )
    async with running_registry(store, quiet) as reg:
        registry = reg.registry
        for i, name in enumerate(names):
            registry.keep_alive(name, (1.0, float(i), 0.0))
        await registry.flush(spread=0.05)
        avg5 = {n.node_name: n.load_avg5 for n in await store.nodes.list()}
        assert avg5 == {name: float(i) for i, name in enumerate(names)}

        for name in names:
            registry.keep_alive(name, (2.0, 0.0, 0.0))
        flushing = asyncio.get_running_loop().create_task(registry.flush(spread=60.0))

        async def first_chunk_written() -> bool:
            return any(n.load_avg1 == 2.0 for n in await store.nodes.list())

        await eventually(first_chunk_written, "the first statement of the flush written")
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        written = {n.node_name for n in await store.nodes.list() if n.load_avg1 == 2.0}
        assert 0 < len(written) < len(names)
        await registry.flush()  # the rest was still queued
        assert {n.load_avg1 for n in await store.nodes.list()} == {2.0}


async def test_register_node_refuses_a_second_live_node_of_the_same_name(reg: Running) -> None:
    nodes = reg.nodes()
    assert await nodes.registerNode("n1", node_info("n1", "tars.tarsnode.NodeObj@a"), load()) == 0
    assert await nodes.registerNode("n1", node_info("n1", "tars.tarsnode.NodeObj@b"), load()) == 1
    assert await nodes.registerNode("n1", node_info("n1", ""), load()) == 0  # 3.x nodes
    assert await nodes.registerNode("", node_info(""), load()) == -1


async def test_dead_nodes_and_their_endpoints_go_inactive(store: Store, clock: Any) -> None:
    for node, port in (("10.0.0.1", 9001), ("10.0.0.2", 9002)):
        await deploy(store, "Test", "HelloServer", node, {"HelloObj": f"tcp -h {node} -p {port}"})
    slow = RegistrySettings(**{**_fields(FAST), "load_interval": 3600.0})  # no load will help
    async with running_registry(store, slow) as reg:
        nodes = reg.nodes()
        for name in ("10.0.0.1", "10.0.0.2"):
            assert await nodes.registerNode(name, node_info(name), load()) == 0
        assert await ports(reg) == ([9001, 9002], [])
        clock.advance(2 * slow.node_timeout)  # both silent for two timeouts...
        assert await nodes.keepAlive("10.0.0.1", load()) == 0  # ...but 10.0.0.1 beats now
        await eventually(lambda: _eq(ports(reg), ([9001], [9002])), "10.0.0.2 swept")
        assert await present(store, "10.0.0.2") == ("inactive", 0)
        assert await present(store, "10.0.0.1") == ("active", 4242)
        node = await store.nodes.get("10.0.0.2")
        assert node is not None and node.present_state == "inactive"


async def test_no_sweep_right_after_start(store: Store, clock: Any) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    await store.nodes.register("10.0.0.1", "", "10.0.0.1", 19386, "/d", 0, 0, 0, "v")
    clock.advance(600)  # the registry (or the database) was down for ten minutes
    settings = RegistrySettings(**{**_fields(FAST), "node_timeout": 60.0})
    async with running_registry(store, settings) as reg:
        assert await reg.registry.sweep_nodes() == []  # nodes had no chance to beat yet
        assert await ports(reg) == ([9001], [])


async def test_destroy_node_makes_its_servers_inactive_at_once(reg: Running, store: Store) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    await deploy(store, "Test", "Other", "10.0.0.1", {"OtherObj": "tcp -h 10.0.0.1 -p 9101"})
    # The node (named 10.0.0.1) registers from this machine: its calls come from 127.0.0.1.
    await store.nodes.register("10.0.0.1", "", "127.0.0.1", 19386, "/d", 0, 0, 0, "v")
    await eventually(lambda: _eq(ports(reg), ([9001], [])), "routed")
    await eventually(lambda: _eq(ports(reg, "Test.Other.OtherObj"), ([9101], [])), "Other routed")
    assert await reg.nodes().destroyNode("10.0.0.1") == 0
    assert await ports(reg) == ([], [9001])
    assert await ports(reg, "Test.Other.OtherObj") == ([], [9101])
    assert await present(store, "10.0.0.1", "Other") == ("inactive", 0)
    assert await reg.nodes().destroyNode("never.registered") == 0


async def test_destroy_node_from_another_address_is_refused(reg: Running, store: Store) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    assert await reg.nodes().registerNode("10.0.0.1", node_info("10.0.0.1"), load()) == 0
    await eventually(lambda: _eq(ports(reg), ([9001], [])), "routed")
    # This caller is 127.0.0.1, not the node 10.0.0.1: it may not take the node's services down.
    assert await reg.nodes().destroyNode("10.0.0.1") == -1
    assert await ports(reg) == ([9001], [])
    assert await present(store, "10.0.0.1") == ("active", 4242)
    node = await store.nodes.get("10.0.0.1")
    assert node is not None and node.present_state == "active"


async def test_register_node_fills_the_address_a_3x_node_leaves_empty(
    reg: Running, store: Store
) -> None:
    info = node_info("n3")
    info.endpointIp, info.endpointPort = "", 0
    assert await reg.nodes().registerNode("n3", info, load()) == 0
    node = await store.nodes.get("n3")
    assert node is not None
    assert (node.endpoint_ip, node.endpoint_port) == ("127.0.0.1", 19386)
    assert node.node_obj == "tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 19386 -t 60000"
    # The filled object is not the node's claim: a restart from elsewhere is not a conflict.
    assert await reg.nodes().registerNode("n3", info, load()) == 0


@pytest.mark.parametrize("name", ["../../x", "127.0.0.1; touch x", "a b", "-x", "a/b"])
async def test_register_node_refuses_a_bad_name(reg: Running, store: Store, name: str) -> None:
    assert await reg.nodes().registerNode(name, node_info(name), load()) == -1
    assert await store.nodes.get(name) is None


# -- getServers, templates, versions, patches -----------------------------------------------------

PARENT = """<tars>
  <application>
    enableset=n
    <client>
      sync-invoke-timeout=3000
      async-invoke-timeout=5000
    </client>
    <server>
      logLevel=DEBUG
    </server>
  </application>
</tars>"""

PRIVATE = """<tars>
  <application>
    <client>
      async-invoke-timeout=9000
      asyncthread=7
    </client>
    <server>
      mine=1
    </server>
  </application>
</tars>"""


async def test_get_servers_builds_descriptors_with_the_merged_profile(
    reg: Running, store: Store
) -> None:
    await store.templates.upsert("Test.parent", "tars.default", PARENT)
    await deploy(
        store,
        "Test",
        "HelloServer",
        "10.0.0.1",
        {"HelloObj": "tcp -h 10.0.0.1 -p 9001 -t 60000", "AdminObj": "tcp -h 10.0.0.1 -p 9002"},
        server_type="tars_cpp",
        template_name="Test.parent",
        profile=PRIVATE,
        enable_set="Y",
        set_name="app",
        set_area="sz",
        set_group="1",
        async_thread_num=2,
    )
    await deploy(store, "Test", "Plain", "10.0.0.1", {}, server_type="tars_nodejs")
    await deploy(store, "Test", "Dns", "10.0.0.1", {}, present="inactive")
    await deploy(store, "Test", "Elsewhere", "10.0.0.2", {"X": "tcp -h 10.0.0.2 -p 1"})
    await store.servers.set_patch_result("Test", "HelloServer", "10.0.0.1", "17", "alice")
    async with store.begin() as conn:  # tars_dns servers are never sent to nodes
        await conn.execute(
            t_server_conf.update()
            .where(t_server_conf.c.server_name == "Dns")
            .values(server_type="tars_dns")
        )
    nodes = reg.nodes()
    every = await nodes.getServers("", "", "10.0.0.1")
    assert sorted(d.serverName for d in every) == ["HelloServer", "Plain"]
    (hello,) = await nodes.getServers("Test", "HelloServer", "10.0.0.1")
    assert (hello.application, hello.serverName, hello.nodeName) == (
        "Test",
        "HelloServer",
        "10.0.0.1",
    )
    assert (hello.settingState, hello.presentState) == ("active", "active")
    assert hello.setId == "app.sz.1"
    assert hello.asyncThreadNum == 7  # the private profile's asyncthread wins
    assert (hello.patchVersion, hello.patchUser) == ("17", "alice")
    assert len(hello.patchTime) == 19  # "YYYY-mm-dd HH:MM:SS"
    assert sorted(hello.adapters) == [
        "Test.HelloServer.AdminObjAdapter",
        "Test.HelloServer.HelloObjAdapter",
    ]
    adapter = hello.adapters["Test.HelloServer.HelloObjAdapter"]
    assert (adapter.servant, adapter.endpoint, adapter.threadNum) == (
        "Test.HelloServer.HelloObj",
        "tcp -h 10.0.0.1 -p 9001 -t 60000",
        "1",
    )
    profile = hello.profile
    assert "async-invoke-timeout=9000" in profile  # private wins
    assert "sync-invoke-timeout=3000" in profile  # from the template
    assert "mine=1" in profile
    assert "logLevel=DEBUG" in profile
    (plain,) = await nodes.getServers("Test", "Plain", "10.0.0.1")
    assert plain.asyncThreadNum == 3  # tars_nodejs: max(column default 3, 0)
    assert plain.adapters == {} and plain.setId == ""
    assert await nodes.getServers("Test", "HelloServer", "10.0.0.9") == []
    assert await nodes.getServers("Test", "Nope", "10.0.0.1") == []


async def test_async_thread_num_floor(reg: Running, store: Store) -> None:
    await deploy(store, "Test", "Js", "n1", {}, server_type="tars_nodejs", async_thread_num=0)
    await deploy(store, "Test", "Cpp", "n1", {}, server_type="tars_cpp", async_thread_num=0)
    await deploy(store, "Test", "Many", "n1", {}, async_thread_num=12)
    got = {d.serverName: d.asyncThreadNum for d in await reg.nodes().getServers("", "", "n1")}
    assert got == {"Js": 0, "Cpp": 3, "Many": 12}


async def test_node_template_falls_back_to_the_default(reg: Running, store: Store) -> None:
    nodes = reg.nodes()
    await store.nodes.register("n1", "", "n1", 19386, "/d", 0, 0, 0, "v")
    ret, text = await nodes.getNodeTemplate("n1")
    assert ret == 0 and text == await store.templates.resolve("tars.default")
    await store.templates.upsert("tars.tarsnode", "tars.default", "<tars>\n  x=node\n</tars>")
    ret, text = await nodes.getNodeTemplate("n1")
    assert "x=node" in text and text == await store.templates.resolve("tars.tarsnode")
    await store.templates.upsert("My.node", "tars.tarsnode", "<tars>\n  y=mine\n</tars>")
    await store.nodes.set_template("n1", "My.node")
    ret, text = await nodes.getNodeTemplate("n1")
    assert "y=mine" in text and "x=node" in text
    assert (await nodes.getNodeTemplate("unknown"))[0] == 0


async def test_report_version_and_patch_result_are_recorded(reg: Running, store: Store) -> None:
    await deploy(store, "Test", "HelloServer", "n1", {})
    nodes = reg.nodes()
    assert await nodes.reportVersion("Test", "HelloServer", "n1", "tarsus-9") == 0

    async def version() -> bool:
        row = await store.servers.get("Test", "HelloServer", "n1")
        return row is not None and row.tars_version == "tarsus-9"

    await eventually(version, "the queued version written")
    result = Registry.PatchResult(
        sApplication="Test",
        sServerName="HelloServer",
        sNodeName="n1",
        sVersion="42",
        sUserName="bob",
    )
    assert await nodes.updatePatchResult(result) == 0
    row = await store.servers.get("Test", "HelloServer", "n1")
    assert row is not None and (row.patch_version, row.patch_user) == ("42", "bob")
    assert row.patch_time is not None


async def test_client_ip_and_unsupported_features(reg: Running) -> None:
    nodes = reg.nodes()
    assert await nodes.getClientIp() == (0, "127.0.0.1")
    assert await nodes.reportNode(NodeDescriptor.ReportNode(nodeName="n1", sid="x")) == 0
    assert await nodes.getDockerRegistry() == (0, [])
    assert await nodes.dockerPull("1") == -1
    ret, key = await nodes.getFrameworkKey()
    assert (ret, key.cuid, key.priKey) == (0, "", "")


# -- bad input ------------------------------------------------------------------------------------


async def test_garbage_does_not_take_the_registry_down(reg: Running, store: Store) -> None:
    query_ep = reg.registry.adapters[0].bound_endpoint
    registry_ep = reg.registry.adapters[1].bound_endpoint
    for ep in (query_ep, registry_ep):
        for garbage in (b"\x00\x00\x00\x0cnot a packet", b"\xff\xff\xff\xff" + b"x" * 64):
            reader, writer = await asyncio.open_connection(ep.host, ep.port)
            writer.write(garbage)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
    # a well-framed call whose arguments do not decode: an error code, not a crash
    reply = await raw_call(registry_ep, "tars.tarsregistry.RegistryObj", "updateServer", b"\x16")
    assert reply.iRet != 0
    reply = await raw_call(query_ep, "tars.tarsregistry.QueryObj", "noSuchFunction", b"")
    assert reply.iRet != 0
    # still serving
    assert await reg.query().findObjectById4Any("x") == (0, [], [])
    assert await reg.nodes().getClientIp() == (0, "127.0.0.1")


# -- helpers --------------------------------------------------------------------------------------


def _fields(settings: RegistrySettings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


async def _now(value: Any) -> Any:
    return value


async def _eq(awaitable: Any, expected: Any) -> bool:
    return bool(await awaitable == expected)


async def test_a_load_in_flight_does_not_bring_back_an_older_state(
    store: Store, monkeypatch: Any
) -> None:
    """The load's rows are read before the node's report and installed after it."""
    from tarsus.framework.registry import Registry
    from tarsus.store import routes as db

    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    registry = Registry(store, RegistrySettings(**{**_fields(FAST), "load_interval": 3600.0}))
    await registry.start()
    try:
        # the start-up load and the one after the (here: empty) first heartbeat are done
        await eventually(lambda: _eq(_now(registry.loads), 2), "start-up loads done")
        read, release = asyncio.Event(), asyncio.Event()
        real = db.load_routes

        async def held(store: Store, since: Any = None) -> Any:
            result = await real(store, since)
            read.set()
            await release.wait()
            return result

        monkeypatch.setattr(db, "load_routes", held)
        loading = asyncio.ensure_future(registry.load(full=True))
        await read.wait()  # the load has the rows: 10.0.0.1 active
        assert await registry.update_server("10.0.0.1", "Test", "HelloServer", 0, 0) == 0
        release.set()
        await loading
        _, active, inactive = registry.snapshot.find_4any(OBJ)
        assert ([e.port for e in active], [e.port for e in inactive]) == ([], [9001])
        assert registry.cache.status[("Test", "HelloServer", "10.0.0.1")] == 0
    finally:
        await registry.stop()
