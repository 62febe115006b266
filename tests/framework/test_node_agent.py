"""A node agent joining a framework over real sockets: it registers, connects its push channel,
answers pushed commands, and a pushed ``shutdown`` is answered before the node stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.framework.node.agent import NodeAgent, NodeAgentSettings
from tarsus.testing import eventually, free_framework_ports, free_ports


async def test_node_joins_answers_ping_and_stops_on_pushed_shutdown(tmp_path: Path) -> None:
    query, registry, admin, node_port, patch = free_ports(5)
    settings = AllInOneSettings(
        data_dir=tmp_path / "fw",
        run_node=False,
        ports=free_framework_ports(
            query=query, registry=registry, admin=admin, node=node_port, patch=patch
        ),
    )
    async with AllInOne(settings) as framework:
        agent = NodeAgent(
            NodeAgentSettings(
                locator=settings.locator,
                data_dir=tmp_path / "node",
                node_name="127.0.0.1",
                port=node_port,
            )
        )
        await agent.start()
        running = asyncio.ensure_future(agent.run_forever())
        try:
            assert framework.channels is not None and framework.admin is not None
            await eventually(
                lambda: framework.channels.connected("127.0.0.1") and agent.registered,
                "the node to register and connect its push channel",
            )
            assert framework.store is not None
            row = await framework.store.nodes.get("127.0.0.1")
            assert row is not None and row.present_state == "active"

            outcome = await framework.admin.lifecycle.ping("127.0.0.1")
            assert outcome.ok and "ping succ" in outcome.result

            outcome = await framework.admin.lifecycle.shutdown("127.0.0.1")
            assert outcome.ok, outcome  # the answer arrived before the node went away
            await asyncio.wait_for(running, 30)
            assert agent.supervisor is None  # stopped
        finally:
            if not running.done():
                agent.request_stop()
                await running
