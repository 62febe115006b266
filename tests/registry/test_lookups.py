"""QueryObj served for real: names resolve to real servants, routes follow the database, and
lookups keep being answered when the database goes away. Both engines (``store`` fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from registry_harness import FAST, Running, deploy, running_registry
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tarsus.framework.registry import RegistrySettings, add_registry
from tarsus.protocol.gen import NodeDescriptor, QueryF
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError
from tarsus.rpc.locator import RefreshSchedule
from tarsus.store import Store
from tarsus.store import routes as db
from tarsus.store.schema import t_registry_info
from tarsus.testing import eventually, free_ports, serve

OBJ = "Test.HelloServer.HelloObj"

QUICK = RefreshSchedule(
    refresh_interval=0.1,
    active_empty_interval=0.1,
    fail_interval=0.1,
    many_fail_interval=0.1,
    query_timeout=2.0,
)


def hello_servant(hello_idl: Any, label: str) -> Any:
    class HelloImpl(hello_idl.HelloServant):  # type: ignore[misc,name-defined]
        async def hello(self, name: str) -> str:
            return f"{label}: hello {name}"

    return HelloImpl()


async def answer(reg: Running, obj: str = OBJ) -> tuple[int, list[int], list[int]]:
    ret, active, inactive = await reg.query().findObjectById4Any(obj)
    return ret, sorted(e.port for e in active), sorted(e.port for e in inactive)


async def test_a_locator_resolves_a_deployed_servant_by_name(
    reg: Running, store: Store, hello_idl: Any
) -> None:
    async with serve(hello_servant(hello_idl, "a"), OBJ) as served:
        await deploy(store, "Test", "HelloServer", "127.0.0.1", {"HelloObj": served.endpoint})
        # the next incremental load picks the new server up
        await eventually(lambda: _has_active(reg), "the registry routes the new server")
        async with Communicator(reg.locator, cache_dir=None, refresh_schedule=QUICK) as comm:
            hello = comm.string_to_proxy(hello_idl.HelloProxy, OBJ)
            assert await hello.hello("bob") == "a: hello bob"


async def _has_active(reg: Running) -> bool:
    return bool((await answer(reg))[1])


async def test_the_registrys_own_objects_resolve_through_it(reg: Running, store: Store) -> None:
    query_port = reg.registry.adapters[0].port
    registry_port = reg.registry.adapters[1].port

    async def announced() -> bool:
        active = await reg.query().findObjectById("tars.tarsregistry.QueryObj")
        return [e.port for e in active] == [query_port]

    await eventually(announced, "QueryObj resolves to our port")
    assert [e.port for e in await reg.query().findObjectById("tars.tarsregistry.RegistryObj")] == [
        registry_port
    ]
    async with store.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    t_registry_info.c.locator_id,
                    t_registry_info.c.servant,
                    t_registry_info.c.present_state,
                )
            )
        ).all()
    assert sorted(rows) == [
        (f"127.0.0.1:{query_port}", "tars.tarsregistry.QueryObj", "active"),
        (f"127.0.0.1:{query_port}", "tars.tarsregistry.RegistryObj", "active"),
    ]


async def test_a_state_change_reaches_lookups_at_the_next_load(reg: Running, store: Store) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    await deploy(store, "Test", "HelloServer", "10.0.0.2", {"HelloObj": "tcp -h 10.0.0.2 -p 9002"})
    await eventually(lambda: _answer_is(reg, (0, [9001, 9002], [])), "both instances active")
    # another writer (the admin, a node through another registry) stops one instance
    await store.servers.update_present("10.0.0.2", "Test", "HelloServer", "inactive", 0)
    await eventually(lambda: _answer_is(reg, (0, [9001], [9002])), "10.0.0.2 listed inactive")
    await store.servers.set_flow_state("Test", "HelloServer", ["10.0.0.1"], False)
    await eventually(lambda: _answer_is(reg, (0, [], [9001, 9002])), "flow switched off")


async def _answer_is(reg: Running, expected: tuple[int, list[int], list[int]]) -> bool:
    return await answer(reg) == expected


async def test_unknown_objects_and_bad_sets_answer_like_upstream(reg: Running) -> None:
    query = reg.query()
    assert await query.findObjectById("No.Such.Obj") == []
    assert await query.findObjectById4Any("No.Such.Obj") == (0, [], [])
    assert await query.findObjectById4All("No.Such.Obj") == (0, [], [])
    assert await query.findObjectByIdInSameGroup("No.Such.Obj") == (0, [], [])
    assert await query.findObjectByIdInSameSet("No.Such.Obj", "a.b.c") == (0, [], [])
    assert await query.findObjectByIdInSameSet(OBJ, "bad") == (-1, [], [])
    assert await query.findObjectByIdInSameStation(OBJ, "nowhere") == (-1, [], [])
    assert await query.findObjectNodeName(OBJ) == (-1, [])
    assert await query.registerChange({}, "x") == -1
    assert await query.registerQuery(OBJ, "x") == -1


async def test_idc_groups_follow_the_callers_address(store: Store) -> None:
    async with store.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO t_server_group_rule (group_id, ip_order, allow_ip_rule, "
                "group_name, group_name_cn) VALUES (1, 'allow_denny', '127.0.0.*', 'local', ''), "
                "(2, 'allow_denny', '10.9.0.*', 'far', '')"
            )
        )
    await deploy(
        store,
        "Test",
        "HelloServer",
        "127.0.0.1",
        {"HelloObj": "tcp -h 127.0.0.1 -p 9001"},
        enable_group="Y",
    )
    await deploy(
        store,
        "Test",
        "HelloServer",
        "10.9.0.1",
        {"HelloObj": "tcp -h 10.9.0.1 -p 9002"},
        enable_group="Y",
    )
    async with running_registry(store) as reg:  # group rules come with the (first) full load
        query = reg.query()
        ret, active, _ = await query.findObjectByIdInSameGroup(OBJ)  # we call from 127.0.0.1
        assert (ret, [e.port for e in active]) == (0, [9001])
        assert [e.grouprealid for e in active] == [1]
        ret, active, _ = await query.findObjectById4Any(OBJ)
        assert sorted(e.port for e in active) == [9001, 9002]


async def test_lookups_are_answered_from_memory_while_the_database_is_down(
    store: Store, tmp_path: Any
) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    await store.nodes.register("10.0.0.1", "", "10.0.0.1", 19386, "/d", 0, 0, 0, "v")
    async with running_registry(store) as reg:
        assert await answer(reg) == (0, [9001], [])
        working = store.engine
        store.engine = _unreachable_engine(store, tmp_path)
        try:
            await eventually(
                lambda: _true(reg.registry._outage.down_since is not None),
                "the registry notices the outage",
            )
            await asyncio.sleep(3 * FAST.load_interval)  # several failed loads
            assert await answer(reg) == (0, [9001], [])
            # writes fail visibly, reads go on
            nodes = reg.nodes()
            state = _state(0)
            assert await nodes.updateServer("10.0.0.1", "Test", "HelloServer", state) == -1
            assert await nodes.keepAlive("10.0.0.1", _load()) == 0  # queued
            with pytest.raises(TarsError, match="database unavailable"):
                await nodes.getServers("", "", "10.0.0.1")  # an error, not "no servers"
            assert await answer(reg) == (0, [9001], [])
        finally:
            await store.engine.dispose()
            store.engine = working
        await eventually(
            lambda: _true(reg.registry._outage.down_since is None), "the registry recovers"
        )

        async def beat_written() -> bool:
            node = await store.nodes.get("10.0.0.1")
            return node is not None and node.load_avg1 == 0.5

        await eventually(beat_written, "the keepAlive queued during the outage is written")
        await store.servers.update_present("10.0.0.1", "Test", "HelloServer", "inactive", 0)
        await eventually(lambda: _answer_is(reg, (0, [], [9001])), "loads resume")


async def test_a_registry_starting_without_database_waits_for_it(
    store: Store, tmp_path: Any
) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    working = store.engine
    store.engine = _unreachable_engine(store, tmp_path)
    starting = asyncio.ensure_future(_start_and_query(store))
    try:
        await asyncio.sleep(0.5)
        assert not starting.done()  # retrying the first load
    finally:
        await store.engine.dispose()
        store.engine = working
    assert await asyncio.wait_for(starting, 10) == (0, [9001], [])


async def _start_and_query(store: Store) -> tuple[int, list[int], list[int]]:
    async with running_registry(store) as reg:
        return await answer(reg)


async def test_stale_registries_are_marked_inactive(store: Store, clock: Any) -> None:
    await db.heartbeat_registry(
        store, "10.0.0.9:17890", [("tars.tarsregistry.QueryObj", "tcp -h 10.0.0.9 -p 17890")], "x"
    )
    settings = RegistrySettings(**{**_fields(FAST), "registry_timeout": 60.0})
    async with running_registry(store, settings) as reg:

        async def ports() -> tuple[list[int], list[int]]:
            _, active, inactive = await reg.query().findObjectById4Any("tars.tarsregistry.QueryObj")
            return sorted(e.port for e in active), sorted(e.port for e in inactive)

        own = reg.registry.adapters[0].port
        await eventually(lambda: _eq(ports(), (sorted([17890, own]), [])), "both registries listed")
        clock.advance(61)  # the other registry stopped beating a minute ago; we go on
        reg.registry._last_expiry = -float("inf")
        await eventually(lambda: _eq(ports(), ([own], [17890])), "the silent one inactive")


async def test_recover_protection_refuses_a_load_with_most_nodes_inactive(
    store: Store,
) -> None:
    await deploy(store, "Test", "HelloServer", "10.0.0.1", {"HelloObj": "tcp -h 10.0.0.1 -p 9001"})
    for name in ("10.0.0.1", "10.0.0.2"):
        await store.nodes.register(name, "", name, 19386, "/data", 0, 0, 0, "v")
    settings = RegistrySettings(**{**_fields(FAST), "recover_protect": True})
    async with running_registry(store, settings) as reg:
        assert await answer(reg) == (0, [9001], [])
        await store.nodes.destroy("10.0.0.2")  # 50 % of nodes inactive: suspicious
        await store.servers.update_present("10.0.0.1", "Test", "HelloServer", "inactive", 0)
        loads = reg.registry.loads
        await asyncio.sleep(5 * FAST.load_interval)
        assert reg.registry.loads == loads
        assert await answer(reg) == (0, [9001], [])


# -- helpers ------------------------------------------------------------------------------------


def _unreachable_engine(store: Store, tmp_path: Any) -> Any:
    """A real engine whose database cannot be reached (a closed port / a missing directory)."""
    if store.dialect == "sqlite":
        return create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    return create_async_engine("mysql+asyncmy://root@127.0.0.1:9/db_tars", pool_pre_ping=True)


def _state(state: int) -> Any:
    return NodeDescriptor.ServerStateInfo(serverState=state, processId=0)


def _load() -> Any:
    return NodeDescriptor.LoadInfo(avg1=0.5, avg5=0.5, avg15=0.5)


def _fields(settings: RegistrySettings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


async def _true(value: bool) -> bool:
    return value


async def _eq(awaitable: Any, expected: Any) -> bool:
    return bool(await awaitable == expected)


async def test_a_framework_service_routed_twice_is_listed_once(store: Store) -> None:
    """tars.tarsAdminRegistry beats into t_registry_info *and* is a server with its own
    t_adapter_conf row (as upstream installs it): its address is given once."""
    admin = "tars.tarsAdminRegistry.AdminRegObj"
    await deploy(
        store, "tars", "tarsAdminRegistry", "10.0.0.9", {"AdminRegObj": "tcp -h 10.0.0.9 -p 12000"}
    )
    await db.heartbeat_registry(store, "10.0.0.9:12000", [(admin, "tcp -h 10.0.0.9 -p 12000")], "x")
    async with running_registry(store) as reg:

        async def listed() -> tuple[list[int], list[int]]:
            _, active, inactive = await reg.query().findObjectById4Any(admin)
            return [e.port for e in active], [e.port for e in inactive]

        await eventually(lambda: _eq(listed(), ([12000], [])), "the admin registry listed")
        assert [e.port for e in await reg.query().findObjectById(admin)] == [12000]


async def test_on_fixed_ports_the_registry_routes_itself_from_its_first_answer(
    store: Store,
) -> None:
    """A node started together with its registry asks for RegistryObj at once: the first
    answer already lists it (no window in which the registry lists itself as nothing)."""
    ports = free_ports(2)
    app = Application()
    add_registry(
        app,
        store,
        query_endpoint=f"tcp -h 127.0.0.1 -p {ports[0]} -t 60000",
        registry_endpoint=f"tcp -h 127.0.0.1 -p {ports[1]} -t 60000",
        settings=FAST,
    )
    await app.start()
    try:
        async with Communicator(cache_dir=None) as comm:
            query = comm.string_to_proxy(
                QueryF.QueryFProxy, f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {ports[0]}"
            )
            found = await query.findObjectById("tars.tarsregistry.RegistryObj")
            assert [e.port for e in found] == [ports[1]]
    finally:
        await app.stop(drain_timeout=1.0)
