"""Deploying, reporting on and undeploying server instances."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from tarsus.store import (
    AdapterSpec,
    Conflict,
    InvalidInput,
    NotFound,
    ServerRow,
    ServerSpec,
    Store,
)
from tarsus.store.schema import t_adapter_conf, t_config_files, t_server_conf

HELLO = ServerSpec("Demo", "Hello", "n1")
HELLO_OBJ = AdapterSpec("Demo.Hello.HelloObj", "tcp -h 10.0.0.1 -p 10000 -t 60000")


async def test_deploy_creates_an_inactive_instance_with_its_adapters(
    store: Store, clock: Any
) -> None:
    row = await store.servers.deploy(HELLO, [HELLO_OBJ], user="alice")
    assert isinstance(row, ServerRow)
    assert (row.application, row.server_name, row.node_name) == ("Demo", "Hello", "n1")
    assert (row.setting_state, row.present_state, row.process_id) == ("inactive", "inactive", 0)
    assert row.server_type == "tars_python" and row.template_name == "tars.tarspython.default"
    assert row.async_thread_num == 3 and row.enable_set == "N" and row.flow_state == "active"
    assert row.registry_timestamp == row.posttime == clock.now and row.lastuser == "alice"
    assert row.server_id == "Demo.Hello_n1"
    assert await store.servers.get("Demo", "Hello", "n1") == row

    (adapter,) = await store.servers.adapters("Demo", "Hello", "n1")
    assert adapter.adapter_name == "Demo.Hello.HelloObjAdapter"
    assert adapter.servant == "Demo.Hello.HelloObj"
    assert adapter.endpoint == "tcp -h 10.0.0.1 -p 10000 -t 60000"
    assert (adapter.thread_num, adapter.max_connections) == (1, 10000)
    assert (adapter.queuecap, adapter.queuetimeout, adapter.protocol) == (10000, 60000, "tars")
    assert adapter.registry_timestamp == clock.now


async def test_the_tars_application_is_allowed(store: Store) -> None:
    row = await store.servers.deploy(
        ServerSpec("tars", "tarsregistry", "n1", server_type="tars_cpp"),
        [AdapterSpec("tars.tarsregistry.QueryObj", "tcp -h 10.0.0.1 -p 17890")],
    )
    assert row.server_type == "tars_cpp"


@pytest.mark.parametrize(
    ("spec", "adapters", "message"),
    [
        (replace(HELLO, application="De mo"), [], r"application 'De mo' may only use letters"),
        (replace(HELLO, application=""), [], r"application must not be empty"),
        (replace(HELLO, server_name="Hel-lo"), [], r"server name 'Hel-lo' may only use letters"),
        (replace(HELLO, node_name=""), [], r"node name must not be empty \(deploying 'Demo'"),
        (replace(HELLO, node_name="x" * 51), [], r"node_name of server .* at most 50 fit"),
        (replace(HELLO, node_name="../../x"), [], r"node name '\.\./\.\./x' may only use"),
        (replace(HELLO, node_name="127.0.0.1; touch x"), [], r"node name '127\.0\.0\.1; touch x'"),
        (replace(HELLO, node_name="a..b"), [], r"node name 'a\.\.b' may not contain '\.\.'"),
        (replace(HELLO, node_name=" n1"), [], r"node name ' n1' may only use"),
        (replace(HELLO, server_type="tars_rust"), [], r"server_type of .* got 'tars_rust'"),
        (replace(HELLO, template_name="nope"), [], r"template_name of .* 'nope' does not exist"),
        (replace(HELLO, enable_set="Y", set_name="s1"), [], r"set_name of .* letters only"),
        (replace(HELLO, enable_set="yes"), [], r"enable_set of .* must be 'Y' or 'N'"),
        (replace(HELLO, async_thread_num=-1), [], r"async_thread_num of .* negative"),
        (replace(HELLO, profile="<tars>\n"), [], r"profile of server Demo\.Hello on node 'n1'"),
        (
            HELLO,
            [replace(HELLO_OBJ, servant="Other.Hello.HelloObj")],
            r"servant 'Other\.Hello\.HelloObj' of .* must be Demo\.Hello\.<Obj>",
        ),
        (
            HELLO,
            [replace(HELLO_OBJ, servant="Demo.Hello.")],
            r"servant 'Demo\.Hello\.' of",
        ),
        (
            HELLO,
            [replace(HELLO_OBJ, endpoint="tcp -h 10.0.0.1 -p 99999")],
            r"endpoint of servant Demo\.Hello\.HelloObj on server .*: .*-p",
        ),
        (
            HELLO,
            [replace(HELLO_OBJ, endpoint="http://10.0.0.1:80")],
            r"endpoint of servant Demo\.Hello\.HelloObj",
        ),
        (HELLO, [HELLO_OBJ, HELLO_OBJ], r"servant 'Demo\.Hello\.HelloObj' of .* listed twice"),
        (HELLO, [replace(HELLO_OBJ, thread_num=0)], r"thread_num of servant .* at least 1"),
        (HELLO, [replace(HELLO_OBJ, protocol="")], r"protocol of servant"),
        (
            HELLO,
            [replace(HELLO_OBJ, allow_ip="1" * 256)],
            r"allow_ip of servant Demo\.Hello\.HelloObj .* at most 255 fit",
        ),
    ],
)
async def test_deploy_rejects_bad_input_naming_the_field(
    store: Store, spec: ServerSpec, adapters: list[AdapterSpec], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await store.servers.deploy(spec, adapters)
    assert await store.servers.list() == []


async def test_deploy_is_all_or_nothing(store: Store) -> None:
    bad = replace(HELLO_OBJ, servant="Demo.Hello.Two", endpoint="tcp -h 10.0.0.1 -p 10000")
    with pytest.raises(Conflict):
        await store.servers.deploy(HELLO, [HELLO_OBJ, bad])
    assert await store.servers.get("Demo", "Hello", "n1") is None
    async with store.connect() as conn:
        assert (await conn.execute(select(t_adapter_conf))).all() == []


async def test_two_adapters_of_one_instance_cannot_share_a_port(store: Store) -> None:
    second = AdapterSpec("Demo.Hello.AdminObj", "tcp -h 0.0.0.0 -p 10000")
    with pytest.raises(Conflict, match=r"HelloObj and Demo\.Hello\.AdminObj .* 0\.0\.0\.0:10000"):
        await store.servers.deploy(HELLO, [HELLO_OBJ, second])


async def test_port_clash_with_another_server_on_the_node_names_it(store: Store) -> None:
    await store.servers.deploy(HELLO, [HELLO_OBJ])
    other = ServerSpec("Demo", "World", "n1")
    with pytest.raises(Conflict, match=r"10\.0\.0\.1:10000 .* used by server Demo\.Hello "):
        await store.servers.deploy(
            other, [AdapterSpec("Demo.World.WorldObj", "tcp -h 10.0.0.1 -p 10000")]
        )
    with pytest.raises(Conflict, match=r"used by server Demo\.Hello"):  # wildcard host
        await store.servers.deploy(
            other, [AdapterSpec("Demo.World.WorldObj", "tcp -h 0.0.0.0 -p 10000")]
        )
    # another port, or the same port on another node, is fine
    await store.servers.deploy(
        other, [AdapterSpec("Demo.World.WorldObj", "tcp -h 10.0.0.1 -p 10001")]
    )
    await store.servers.deploy(replace(HELLO, node_name="n2"), [HELLO_OBJ])


async def test_deploying_twice_needs_replace(store: Store, clock: Any) -> None:
    await store.servers.deploy(HELLO, [HELLO_OBJ])
    await store.servers.update_present("n1", "Demo", "Hello", "active", 42)
    with pytest.raises(Conflict, match=r"Demo\.Hello on node 'n1' is already deployed"):
        await store.servers.deploy(HELLO, [HELLO_OBJ])
    clock.advance(5)
    moved = AdapterSpec("Demo.Hello.NewObj", "tcp -h 10.0.0.1 -p 10002")
    row = await store.servers.deploy(
        replace(HELLO, exe_path="/bin/hello"), [moved], replace=True, user="bob"
    )
    assert row.exe_path == "/bin/hello" and row.lastuser == "bob"
    assert (row.present_state, row.process_id) == ("active", 42)  # observed state kept
    assert row.registry_timestamp == clock.now
    assert [a.servant for a in await store.servers.adapters("Demo", "Hello", "n1")] == [
        "Demo.Hello.NewObj"
    ]


async def test_undeploy_is_refused_while_running_unless_forced(store: Store) -> None:
    await store.servers.deploy(HELLO, [HELLO_OBJ])
    for state in ("active", "activating", "deactivating"):
        await store.servers.update_present("n1", "Demo", "Hello", state, 42)
        with pytest.raises(Conflict, match=f"Demo.Hello on node 'n1' is {state}; stop it"):
            await store.servers.undeploy("Demo", "Hello", "n1")
    await store.servers.undeploy("Demo", "Hello", "n1", force=True)
    assert await store.servers.get("Demo", "Hello", "n1") is None
    with pytest.raises(NotFound, match="is not deployed"):
        await store.servers.undeploy("Demo", "Hello", "n1")


async def test_undeploy_removes_rows_and_bumps_siblings(store: Store, clock: Any) -> None:
    await store.servers.deploy(HELLO, [HELLO_OBJ])
    await store.servers.deploy(replace(HELLO, node_name="n2"), [HELLO_OBJ])
    async with store.begin() as conn:
        await conn.execute(
            insert(t_config_files),
            [
                {"server_name": "Demo.Hello", "host": "n1", "filename": "a.conf", "level": 3},
                {"server_name": "Demo.Hello", "host": "n2", "filename": "a.conf", "level": 3},
                {"server_name": "Demo.Hello", "host": "", "filename": "a.conf", "level": 2},
            ],
        )
    clock.advance(60)
    await store.servers.undeploy("Demo", "Hello", "n1")
    assert await store.servers.adapters("Demo", "Hello", "n1") == []
    async with store.connect() as conn:
        hosts = sorted(
            h
            for (h,) in await conn.execute(
                select(t_config_files.c.host).where(t_config_files.c.server_name == "Demo.Hello")
            )
        )
    assert hosts == ["", "n2"]
    sibling = await store.servers.get("Demo", "Hello", "n2")
    assert sibling is not None and sibling.registry_timestamp == clock.now
    (adapter,) = await store.servers.adapters("Demo", "Hello", "n2")
    assert adapter.registry_timestamp == clock.now


async def test_update_present_many_writes_only_changes(store: Store, clock: Any) -> None:
    nodes = [f"n{i}" for i in range(1200)]  # more than one chunk of 1000
    start = clock.now
    async with store.begin() as conn:
        await conn.execute(
            insert(t_server_conf),
            [
                {
                    "application": "A",
                    "server_name": "S",
                    "node_name": n,
                    "present_state": "active",
                    "process_id": 7,
                    "registry_timestamp": start,
                }
                for n in nodes
            ],
        )
    clock.advance(60)
    reports = [(n, "A", "S", "active", 7) for n in nodes]  # unchanged
    reports[5] = ("n5", "A", "S", "Inactive", 0)  # upstream sends capitalised names
    reports[1100] = ("n1100", "A", "S", "active", 8)
    reports.append(("ghost", "A", "S", "active", 1))  # not deployed: ignored
    assert await store.servers.update_present_many(reports) == 2
    rows = {r.node_name: r for r in await store.servers.list(application="A")}
    assert (rows["n5"].present_state, rows["n5"].process_id) == ("inactive", 0)
    assert rows["n1100"].process_id == 8
    assert rows["n5"].registry_timestamp == rows["n1100"].registry_timestamp == clock.now
    assert rows["n0"].registry_timestamp == start  # untouched rows keep their timestamp
    assert len(rows) == 1200
    assert await store.servers.update_present_many(reports) == 0


async def test_update_present_rejects_unknown_states(store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"present_state must be one of .* got 'running'"):
        await store.servers.update_present("n1", "A", "S", "running", 1)
    with pytest.raises(InvalidInput, match="setting_state must be one of active, inactive"):
        await store.servers.set_setting_state("A", "S", "n1", "activating")


async def test_every_write_bumps_registry_timestamp(store: Store, clock: Any) -> None:
    """Incremental route loads read rows whose registry_timestamp moved: every write must
    move it, on both engines."""

    async def stamp() -> Any:
        row = await store.servers.get("Demo", "Hello", "n1")
        assert row is not None
        return row.registry_timestamp

    await store.servers.deploy(HELLO, [HELLO_OBJ])
    writes = [
        lambda: store.servers.set_setting_state("Demo", "Hello", "n1", "active"),
        lambda: store.servers.update_present("n1", "Demo", "Hello", "activating", 0),
        lambda: store.servers.update_present_many([("n1", "Demo", "Hello", "active", 5)]),
        lambda: store.servers.set_flow_state("Demo", "Hello", ["n1"], False),
        lambda: store.servers.set_patch_result("Demo", "Hello", "n1", "v2", "alice"),
        lambda: store.servers.set_tars_version("Demo", "Hello", "n1", "3.0.1"),
        lambda: store.nodes.destroy("n1"),
    ]
    await store.nodes.register("n1", "", "10.0.0.1", 19385, "/d", 0, 0, 0, "")
    for write in writes:
        clock.advance(1)
        await write()
        assert await stamp() == clock.now, write
    row = await store.servers.get("Demo", "Hello", "n1")
    assert row is not None
    assert (row.setting_state, row.flow_state, row.present_state) == (
        "active",
        "inactive",
        "inactive",
    )
    assert (row.patch_version, row.patch_user, row.patch_time) == (
        "v2",
        "alice",
        clock.now - timedelta(seconds=2),
    )
    assert row.tars_version == "3.0.1"


async def test_reports_for_missing_instances_say_so(store: Store) -> None:
    assert await store.servers.update_present("n1", "A", "S", "active", 1) is False
    assert await store.servers.set_patch_result("A", "S", "n1", "v", "u") is False
    assert await store.servers.set_tars_version("A", "S", "n1", "v") is False
    with pytest.raises(NotFound, match=r"server A\.S on node 'n1' is not deployed"):
        await store.servers.set_setting_state("A", "S", "n1", "active")


async def test_list_filters(store: Store) -> None:
    await store.servers.deploy(HELLO, [])
    await store.servers.deploy(replace(HELLO, node_name="n2"), [])
    await store.servers.deploy(ServerSpec("Demo", "World", "n1"), [])
    await store.servers.deploy(ServerSpec("Other", "Hello", "n1"), [])
    keys = [(r.application, r.server_name, r.node_name) for r in await store.servers.list()]
    assert keys == sorted(keys) and len(keys) == 4
    assert len(await store.servers.list(application="Demo")) == 3
    assert len(await store.servers.list(application="Demo", server_name="Hello")) == 2
    assert len(await store.servers.list(node_name="n1")) == 3
    assert await store.servers.list(application="Nope") == []


async def test_a_python_server_is_stored_with_an_upstream_type(store: Store) -> None:
    """Upstream's server_type enum (and TarsWeb's schema sync) has no tars_python: it is
    stored as tars_cpp and told by its template, and read back as tars_python."""
    row = await store.servers.deploy(HELLO, [HELLO_OBJ])
    assert (row.server_type, row.template_name) == ("tars_python", "tars.tarspython.default")
    await store.templates.upsert("Demo.py", "tars.tarspython.default", "<tars>\n</tars>\n")
    await store.servers.deploy(replace(HELLO, node_name="n2", template_name="Demo.py"), [])
    await store.servers.deploy(replace(HELLO, node_name="n3", server_type="tars_cpp"), [])
    async with store.connect() as conn:
        stored = dict(
            (await conn.execute(select(t_server_conf.c.node_name, t_server_conf.c.server_type)))
            .tuples()
            .all()
        )
    assert stored == {"n1": "tars_cpp", "n2": "tars_cpp", "n3": "tars_cpp"}
    kinds = {r.node_name: r.server_type for r in await store.servers.list()}
    assert kinds == {"n1": "tars_python", "n2": "tars_python", "n3": "tars_cpp"}
    got = await store.servers.get("Demo", "Hello", "n2")
    assert got is not None and got.server_type == "tars_python"


async def test_a_python_server_needs_a_python_template(store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"must be tars\.tarspython\.default or inherit"):
        await store.servers.deploy(replace(HELLO, template_name="tars.default"), [])
    assert await store.servers.list() == []
