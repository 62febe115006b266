"""Two admin registries over one store: a command for a node connected only to the other one
reaches it through that one (upstream's 1012 forwarding; docs/failover.md).

Real parts: the registry (routes both admin registries from their ``t_registry_info``
heartbeats), both admin registries on their own ports and communicators, the node's end of
the push channel on real sockets. The node's command handler is the scripted one of
admin_support.py (what a node does with a command is the node agent's, tested with it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from admin_support import NODE, ScriptedNode

from tarsus.framework.admin import ADMIN_SERVANT, AdminRegistry, add_admin
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.node.channel import AdminChannel
from tarsus.framework.push import push_operations
from tarsus.framework.registry import add_registry
from tarsus.protocol.gen import AdminReg, TarsusAdmin
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import AdapterSpec, ServerSpec, Store


@contextlib.asynccontextmanager
async def _admin(store: Store, locator: str) -> AsyncIterator[tuple[AdminRegistry, Application]]:
    app = Application(Communicator(locator, cache_dir=None))
    admin = add_admin(
        app, store, NodeChannels(timeout=2.0), endpoint="tcp -h 127.0.0.1 -p 0 -t 60000"
    )
    await app.start()
    try:
        await admin.heartbeat.beat()
        yield admin, app
    finally:
        await app.stop(drain_timeout=1.0)


async def test_a_command_reaches_a_node_connected_only_to_the_other_admin_registry(
    store: Store,
) -> None:
    reg_app = Application()
    registry = add_registry(
        reg_app,
        store,
        query_endpoint="tcp -h 127.0.0.1 -p 0 -t 60000",
        registry_endpoint="tcp -h 127.0.0.1 -p 0 -t 60000",
    )
    await reg_app.start()
    locator = f"tars.tarsregistry.QueryObj@{registry.adapters[0].bound_endpoint}"
    client = Communicator()
    node = ScriptedNode()
    channel: AdminChannel | None = None
    try:
        async with _admin(store, locator) as (a, a_app), _admin(store, locator) as (b, _):
            await registry.load(full=True)  # routes both admin registries now
            assert a.adapter is not None and b.adapter is not None
            a_at, b_at = str(a.adapter.bound_endpoint), str(b.adapter.bound_endpoint)

            async def only_a() -> list[str]:
                return [a_at]

            channel = AdminChannel(Communicator(), NODE, node, resolve=only_a, interval=60)
            assert await channel.report_once() == 1
            await b.deploy(
                ServerSpec("Demo", "Hello", NODE, server_type="tars_python"),
                [AdapterSpec("Demo.Hello.HelloObj", "tcp -h 10.0.0.7 -p 20001 -t 60000")],
            )
            via_b: Any = client.string_to_proxy(AdminReg.AdminRegProxy, f"{ADMIN_SERVANT}@{b_at}")

            # B has no connection to the node: B's commands go through A
            assert not b.channels.connected(NODE)
            assert await via_b.pingNode(NODE) == (True, "ping succ")
            ret, result = await via_b.startServer("Demo", "Hello", NODE)
            assert ret == 0, result
            assert ("Demo", "Hello") in node.called("startServer")
            row = await store.servers.get("Demo", "Hello", NODE)
            assert row is not None and row.setting_state == "active"  # B's own database work

            # a node neither admin registry has: refused, saying so
            ok, why = await via_b.pingNode("10.9.9.9")
            assert not ok and "not connected" in why

            # the relay itself checks what it is asked to push, and relays no further
            ext: Any = client.string_to_proxy(TarsusAdmin.AdminExtProxy, f"{ADMIN_SERVANT}@{a_at}")
            ret, _, why = await ext.relayNodePush(NODE, "rm -rf /", b"")
            assert ret == 1007 and "NodePush" in why
            ret, _, why = await ext.relayNodePush(NODE, "startServer", b"\xff\x00garbage")
            assert ret == 1007
            ping = push_operations()["ping"].encode_results((0, ""))
            ret, _, _ = await ext.relayNodePush("10.9.9.9", "ping", ping)
            assert ret == 1012  # not connected here: answered, not forwarded again

            # A goes away: B says the node cannot be reached, it does not hang
            await channel.stop()
            channel = None
            await a_app.stop(drain_timeout=0.5)
            ok, why = await via_b.pingNode(NODE)
            assert not ok and "not connected" in why
    finally:
        if channel is not None:
            await channel.stop()
        await client.close()
        await reg_app.stop(drain_timeout=0.5)
