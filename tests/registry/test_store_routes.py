"""The registry's queries (``tarsus.store.routes``) on SQLite and MariaDB."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from registry_harness import deploy
from sqlalchemy import delete, insert, select

from tarsus.store import Store
from tarsus.store import routes as db
from tarsus.store.schema import (
    t_adapter_conf,
    t_group_priority,
    t_registry_info,
    t_server_conf,
    t_server_group_rule,
)


def key(row: db.RouteRow) -> tuple[str, str, str, str]:
    return (row.application, row.server_name, row.node_name, row.servant)


async def test_full_load_has_every_instance_adapter_and_registry(store: Store) -> None:
    await deploy(
        store,
        "A",
        "Two",
        "n1",
        {"X": "tcp -h n1 -p 1", "Y": "udp -h n1 -p 2"},
        enable_group="Y",
        ip_group_name="g1",
    )
    await deploy(store, "A", "None", "n2", {}, present="inactive")
    await deploy(
        store,
        "A",
        "Set",
        "n3",
        {"Z": "tcp -h n3 -p 3"},
        enable_set="Y",
        set_name="app",
        set_area="sz",
        set_group="1",
        bak_flag=1,
    )
    await db.heartbeat_registry(
        store, "10.0.0.1:17890", [("tars.tarsregistry.QueryObj", "tcp -h 10.0.0.1 -p 17890")], "v"
    )
    load = await db.load_routes(store)
    assert load.changed is None
    rows = {key(r): r for r in load.rows}
    assert sorted(rows) == [
        ("", "", "10.0.0.1", "tars.tarsregistry.QueryObj"),
        ("A", "None", "n2", ""),
        ("A", "Set", "n3", "A.Set.Z"),
        ("A", "Two", "n1", "A.Two.X"),
        ("A", "Two", "n1", "A.Two.Y"),
    ]
    x = rows[("A", "Two", "n1", "A.Two.X")]
    assert (x.endpoint, x.enable_group, x.ip_group_name) == ("tcp -h n1 -p 1", "Y", "g1")
    assert (x.setting_state, x.present_state, x.flow_state) == ("active", "active", "active")
    assert not x.from_registry
    none = rows[("A", "None", "n2", "")]
    assert (none.endpoint, none.present_state) == ("", "inactive")
    z = rows[("A", "Set", "n3", "A.Set.Z")]
    assert (z.enable_set, z.set_name, z.set_area, z.set_group, z.bak_flag) == (
        "Y",
        "app",
        "sz",
        "1",
        1,
    )
    reg = rows[("", "", "10.0.0.1", "tars.tarsregistry.QueryObj")]
    assert reg.from_registry and (reg.setting_state, reg.present_state) == ("active", "active")


async def test_incremental_load_has_only_servers_changed_since(store: Store, clock: Any) -> None:
    await deploy(store, "A", "Old", "n1", {"X": "tcp -h n1 -p 1"})
    await deploy(store, "A", "Other", "n1", {"X": "tcp -h n1 -p 2"})
    clock.advance(100)
    since = clock.now - timedelta(seconds=10)
    await store.servers.update_present("n2", "A", "Old", "inactive", 0)  # no such instance
    await deploy(store, "A", "New", "n1", {"X": "tcp -h n1 -p 3"})
    await deploy(store, "A", "New", "n2", {"X": "tcp -h n2 -p 3"})
    await store.servers.update_present("n1", "A", "Other", "inactive", 0)
    load = await db.load_routes(store, since=since)
    assert load.changed == {("A", "New"), ("A", "Other")}
    assert sorted(key(r) for r in load.rows) == [
        ("A", "New", "n1", "A.New.X"),
        ("A", "New", "n2", "A.New.X"),
        ("A", "Other", "n1", "A.Other.X"),  # its whole server, though only the row changed
    ]
    # a server whose adapters are all gone: changed, with its adapter-less row
    clock.advance(100)
    async with store.begin() as conn:
        await conn.execute(delete(t_adapter_conf).where(t_adapter_conf.c.server_name == "Old"))
        await conn.execute(
            t_server_conf.update()
            .where(t_server_conf.c.server_name == "Old")
            .values(registry_timestamp=clock.now)
        )
    load = await db.load_routes(store, since=clock.now)
    assert load.changed == {("A", "Old")}
    assert [key(r) for r in load.rows] == [("A", "Old", "n1", "")]
    clock.advance(1)
    load = await db.load_routes(store, since=clock.now)
    assert load.changed == set() and load.rows == []


async def test_loads_read_in_pages_miss_nothing(
    store: Store, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 3 instances: an instance's adapters on a page boundary, an instance without
    adapter, deleted ids in between; full and incremental loads get every row once, in
    deployment order."""
    monkeypatch.setattr(db, "_PAGE", 3)
    for n in range(1, 9):
        servants = {"X": f"tcp -h n{n} -p 1", "Y": f"tcp -h n{n} -p 2"} if n % 3 else {}
        await deploy(store, "A", f"S{n % 2}", f"n{n}", servants)
    await store.servers.undeploy("A", "S1", "n3", force=True)
    expected = [
        ("A", f"S{n % 2}", f"n{n}", f"A.S{n % 2}.{obj}" if n % 3 else "")
        for n in range(1, 9)
        if n != 3
        for obj in (("X", "Y") if n % 3 else ("",))
    ]
    load = await db.load_routes(store)
    assert [key(r) for r in load.rows] == expected
    since = clock.now
    clock.advance(10)
    await store.servers.update_present("n5", "A", "S1", "inactive", 0)
    load = await db.load_routes(store, since=since + timedelta(seconds=5))
    assert load.changed == {("A", "S1")}
    assert [key(r) for r in load.rows] == [k for k in expected if k[1] == "S1"]


async def test_incremental_load_reads_the_changed_servers_in_pages(
    store: Store, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two changed servers a query: five of six servers changed (a deploy of many) come back
    whole, each server's instances in deployment order, the unchanged one not at all."""
    monkeypatch.setattr(db, "_PAGE_SERVERS", 2)
    for n in range(1, 4):
        for s in range(6):
            await deploy(store, "A", f"S{s}", f"n{n}", {"X": f"tcp -h n{n} -p {s + 1}"})
    since = clock.now
    clock.advance(10)
    for s in (5, 0, 3, 1, 4):
        await store.servers.update_present("n2", "A", f"S{s}", "inactive", 0)
    load = await db.load_routes(store, since=since + timedelta(seconds=5))
    assert load.changed == {("A", f"S{s}") for s in (0, 1, 3, 4, 5)}
    got = [key(r) for r in load.rows]
    assert sorted(got) == sorted(
        ("A", f"S{s}", f"n{n}", f"A.S{s}.X") for s in (0, 1, 3, 4, 5) for n in range(1, 4)
    )
    for s in (0, 1, 3, 4, 5):
        assert [k[2] for k in got if k[1] == f"S{s}"] == ["n1", "n2", "n3"]


async def test_group_tables_are_read_in_order(store: Store) -> None:
    async with store.begin() as conn:
        await conn.execute(
            insert(t_server_group_rule),
            [
                {
                    "group_id": 2,
                    "group_name": "b",
                    "allow_ip_rule": "10.0.1.*",
                    "group_name_cn": "",
                },
                {"group_id": 1, "group_name": "a", "allow_ip_rule": None, "group_name_cn": ""},
            ],
        )
        await conn.execute(
            insert(t_group_priority),
            [
                {"name": "x", "group_list": "1|2", "list_order": 5, "station": "s1"},
                {"name": "y", "group_list": None, "list_order": 1, "station": "s2"},
            ],
        )
    rules = await db.load_group_rules(store)
    assert rules == [db.GroupRule(1, "a", ""), db.GroupRule(2, "b", "10.0.1.*")]
    prios = await db.load_group_priorities(store)
    assert [(p.group_list, p.list_order, p.station) for p in prios] == [
        ("", 1, "s2"),
        ("1|2", 5, "s1"),
    ]


async def test_registry_heartbeat_is_an_upsert_and_expires(store: Store, clock: Any) -> None:
    servants = [("tars.tarsregistry.QueryObj", "tcp -h h -p 1")]
    await db.heartbeat_registry(store, "h:1", servants, "v1")
    clock.advance(30)
    await db.heartbeat_registry(
        store, "h:1", [("tars.tarsregistry.QueryObj", "tcp -h h -p 2")], "v2"
    )
    async with store.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    t_registry_info.c.endpoint,
                    t_registry_info.c.tars_version,
                    t_registry_info.c.last_heartbeat,
                )
            )
        ).all()
    assert rows == [("tcp -h h -p 2", "v2", clock.now)]
    assert await db.expire_registries(store, 60) == 0
    clock.advance(61)
    assert await db.expire_registries(store, 60) == 1
    assert await db.expire_registries(store, 60) == 0  # already inactive
    await db.heartbeat_registry(store, "h:1", servants, "v2")  # back
    load = await db.load_routes(store)
    assert [(r.present_state, r.endpoint) for r in load.rows] == [("active", "tcp -h h -p 1")]


async def test_node_inactive_rate(store: Store) -> None:
    assert await db.node_inactive_rate(store) == 0
    for name in ("a", "b", "c", "d"):
        await store.nodes.register(name, "", name, 1, "/d", 0, 0, 0, "v")
    await store.nodes.destroy("a")
    assert await db.node_inactive_rate(store) == 25


async def test_node_servers_filters_and_groups_adapters(store: Store) -> None:
    await deploy(store, "A", "S1", "n1", {"X": "tcp -h n1 -p 1", "Y": "tcp -h n1 -p 2"})
    await deploy(store, "A", "S2", "n1", {})
    await deploy(store, "B", "S1", "n1", {"X": "tcp -h n1 -p 3"})
    await deploy(store, "A", "S1", "n2", {"X": "tcp -h n2 -p 1"})
    got = await db.node_servers(store, "n1")
    assert [(r.application, r.server_name, [a.servant for a in ads]) for r, ads in got] == [
        ("A", "S1", ["A.S1.X", "A.S1.Y"]),
        ("A", "S2", []),
        ("B", "S1", ["B.S1.X"]),
    ]
    got = await db.node_servers(store, "n1", "A", "S1")
    assert [(r.node_name, len(ads)) for r, ads in got] == [("n1", 2)]
    assert await db.node_servers(store, "n9") == []
