"""A node agent joining a framework over real sockets: it registers, connects its push channel,
answers pushed commands, and a pushed ``shutdown`` is answered before the node stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.framework.node.agent import NODE_NAME_FILE, NodeAgent, NodeAgentSettings
from tarsus.testing import eventually, framework_ports


async def test_node_joins_answers_ping_and_stops_on_pushed_shutdown(tmp_path: Path) -> None:
    ports = framework_ports()
    node_port = ports.node
    settings = AllInOneSettings(data_dir=tmp_path / "fw", run_node=False, ports=ports)
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


async def test_node_without_a_name_remembers_the_one_the_registry_told(tmp_path: Path) -> None:
    """A node started without a name asks the registry (``getClientIp``) and keeps the answer
    in its data directory; restarted while the framework is down, it comes up under that name
    instead of exiting (its servers would go unguarded), and says so. A node that never had an
    answer cannot start then, and says why."""
    ports = framework_ports()
    settings = AllInOneSettings(data_dir=tmp_path / "fw", run_node=False, ports=ports)

    def agent(data_dir: Path) -> NodeAgent:
        return NodeAgent(NodeAgentSettings(locator=settings.locator, data_dir=data_dir, port=0))

    async with AllInOne(settings):
        first = agent(tmp_path / "node")
        await first.start()
        try:
            assert first.node_name == "127.0.0.1"
        finally:
            await first.stop()
    assert (tmp_path / "node" / NODE_NAME_FILE).read_text().strip() == "127.0.0.1"

    # the framework is gone: the remembered name
    again = agent(tmp_path / "node")
    await again.start()
    try:
        assert again.node_name == "127.0.0.1" and again.supervisor is not None
    finally:
        await again.stop()
    fresh = agent(tmp_path / "fresh")
    with pytest.raises(RuntimeError, match="registry cannot be reached to tell our address"):
        await fresh.start()
    await fresh.stop()
