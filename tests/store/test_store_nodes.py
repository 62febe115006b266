"""Node registration, heartbeats and the dead-node sweep (docs/registry.md)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from tarsus.store import (
    REGISTER_CONFLICT,
    REGISTER_OK,
    AdapterSpec,
    InvalidInput,
    NotFound,
    ServerSpec,
    Store,
)
from tarsus.store.schema import t_node_info, t_server_conf


async def _register(store: Store, name: str, obj: str = "") -> int:
    return await store.nodes.register(name, obj, "10.0.0.1", 19385, "/data", 0.5, 0.25, 0.1, "3.0")


async def test_register_creates_an_active_node(store: Store, clock: Any) -> None:
    assert await _register(store, "n1") == REGISTER_OK
    node = await store.nodes.get("n1")
    assert node is not None
    assert (node.setting_state, node.present_state) == ("active", "active")
    assert node.last_reg_time == node.last_heartbeat == clock.now
    assert (node.endpoint_ip, node.endpoint_port, node.data_dir) == ("10.0.0.1", 19385, "/data")
    assert node.load_avg1 == pytest.approx(0.5) and node.tars_version == "3.0"


async def test_register_refuses_a_second_live_node_with_another_obj(store: Store) -> None:
    obj_a = "tars.tarsnode.NodeObj@tcp -h 10.0.0.1 -p 19385"
    obj_b = "tars.tarsnode.NodeObj@tcp -h 10.0.0.2 -p 19385"
    assert await _register(store, "n1", obj_a) == REGISTER_OK
    assert await _register(store, "n1", obj_b) == REGISTER_CONFLICT
    node = await store.nodes.get("n1")
    assert node is not None and node.node_obj == obj_a
    # the same obj, or an empty one (3.x nodes), re-registers
    assert await _register(store, "n1", obj_a) == REGISTER_OK
    assert await _register(store, "n1", "") == REGISTER_OK
    # once the node is inactive, another obj may take the name
    await store.nodes.destroy("n1")
    assert await _register(store, "n1", obj_b) == REGISTER_OK


async def test_register_keeps_the_node_template(store: Store, clock: Any) -> None:
    await _register(store, "n1")
    await store.nodes.set_template("n1", "tars.default")
    clock.advance(30)
    await _register(store, "n1")
    node = await store.nodes.get("n1")
    assert node is not None and node.template_name == "tars.default"
    assert node.last_reg_time == clock.now


async def test_set_template_checks_the_template_and_the_node(store: Store) -> None:
    await _register(store, "n1")
    with pytest.raises(InvalidInput, match="template 'nope' does not exist"):
        await store.nodes.set_template("n1", "nope")
    with pytest.raises(NotFound, match="'n9' is not registered"):
        await store.nodes.set_template("n9", "tars.default")


async def test_keepalive_updates_heartbeat_and_load(store: Store, clock: Any) -> None:
    await _register(store, "n1")
    clock.advance(10)
    assert await store.nodes.keepalive("n1", 1.5, 1.0, 0.5) is True
    assert await store.nodes.keepalive("ghost", 1.5, 1.0, 0.5) is False
    node = await store.nodes.get("n1")
    assert node is not None and node.last_heartbeat == clock.now
    assert (node.load_avg1, node.load_avg5, node.load_avg15) == pytest.approx((1.5, 1.0, 0.5))


async def test_ten_thousand_heartbeats_then_sweep_marks_the_silent(
    store: Store, clock: Any
) -> None:
    """A registry's scale: 10,000 nodes beat in one call; the sweep finds the silent half and
    takes their servers down with them, leaving the rest alone."""
    count = 10_000
    names = [f"node{i:05d}" for i in range(count)]
    start = clock.now
    async with store.begin() as conn:
        await conn.execute(
            insert(t_node_info),
            [
                {
                    "node_name": n,
                    "present_state": "active",
                    "setting_state": "active",
                    "last_heartbeat": start,
                }
                for n in names
            ],
        )
        await conn.execute(
            insert(t_server_conf),
            [
                {
                    "application": "App",
                    "server_name": "Srv",
                    "node_name": n,
                    "present_state": "active",
                    "process_id": 1000 + i,
                    "registry_timestamp": start,
                }
                for i, n in enumerate(names[:200])
            ],
        )
    clock.advance(300)
    alive = names[::2]
    matched = await store.nodes.keepalive_many(
        [(n, 0.5, 0.4, 0.3) for n in alive] + [("not-registered", 1, 1, 1)]
    )
    assert matched == len(alive)
    beaten = await store.nodes.get(alive[-1])
    assert beaten is not None and beaten.last_heartbeat == clock.now
    assert beaten.load_avg15 == pytest.approx(0.3)

    clock.advance(10)
    dead = await store.nodes.sweep_dead(250)
    assert dead == names[1::2]
    active = {n.node_name for n in await store.nodes.list(active_only=True)}
    assert active == set(alive)

    servers = {s.node_name: s for s in await store.servers.list(application="App")}
    assert servers["node00000"].present_state == "active"
    assert servers["node00000"].registry_timestamp == start
    gone = servers["node00001"]
    assert (gone.present_state, gone.process_id, gone.registry_timestamp) == (
        "inactive",
        0,
        clock.now,
    )
    # a second sweep finds nothing new and rewrites nothing
    clock.advance(10)
    assert await store.nodes.sweep_dead(250) == []
    again = await store.servers.get("App", "Srv", "node00001")
    assert again is not None and again.registry_timestamp == gone.registry_timestamp


async def test_sweep_takes_down_servers_a_late_report_revived(store: Store, clock: Any) -> None:
    await _register(store, "n1")
    await store.servers.deploy(ServerSpec("A", "S", "n1"), [])
    clock.advance(300)
    assert await store.nodes.sweep_dead(250) == ["n1"]
    await store.servers.update_present("n1", "A", "S", "active", 7)
    assert await store.nodes.sweep_dead(250) == ["n1"]
    row = await store.servers.get("A", "S", "n1")
    assert row is not None and (row.present_state, row.process_id) == ("inactive", 0)


async def test_sweep_needs_a_positive_timeout(store: Store) -> None:
    with pytest.raises(InvalidInput, match="timeout_s must be positive"):
        await store.nodes.sweep_dead(0)


async def test_destroy_marks_node_and_servers_inactive(store: Store, clock: Any) -> None:
    await _register(store, "n1")
    await store.servers.deploy(
        ServerSpec("A", "S", "n1"), [AdapterSpec("A.S.Obj", "tcp -h 10.0.0.1 -p 9000")]
    )
    await store.servers.update_present("n1", "A", "S", "active", 99)
    clock.advance(5)
    await store.nodes.destroy("n1")
    node = await store.nodes.get("n1")
    row = await store.servers.get("A", "S", "n1")
    assert node is not None and node.present_state == "inactive"
    assert row is not None and (row.present_state, row.process_id) == ("inactive", 0)
    assert row.registry_timestamp == clock.now
    with pytest.raises(NotFound):
        await store.nodes.destroy("ghost")


async def test_list_is_ordered_and_filters_active(store: Store) -> None:
    for name in ("n3", "n1", "n2"):
        await _register(store, name)
    await store.nodes.destroy("n2")
    assert [n.node_name for n in await store.nodes.list()] == ["n1", "n2", "n3"]
    assert [n.node_name for n in await store.nodes.list(active_only=True)] == ["n1", "n3"]


async def test_register_refuses_overlong_fields(store: Store) -> None:
    with pytest.raises(InvalidInput, match="endpoint_ip is over 50"):
        await store.nodes.register("n1", "", "x" * 51, 1, "/d", 0, 0, 0, "")
    with pytest.raises(InvalidInput, match="node name must not be empty"):
        await store.nodes.register("", "", "1.2.3.4", 1, "/d", 0, 0, 0, "")
    with pytest.raises(InvalidInput, match=r"node name '\.\./\.\./x' may only use"):
        await store.nodes.register("../../x", "", "1.2.3.4", 1, "/d", 0, 0, 0, "")
    async with store.connect() as conn:
        assert (await conn.execute(select(t_node_info))).all() == []
