"""``store.configs``: the config center's tables on SQLite and MariaDB: levels, upstream's merge
order with references and set variants, history and restore, what may not be deleted, and the
input it refuses."""

from __future__ import annotations

import pytest

from tarsus.store import Store
from tarsus.store.configs import MERGE_SEPARATOR, Level, SetDivision, parse_set
from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.servers import AdapterSpec, ServerSpec

SEP = MERGE_SEPARATOR
SET = SetDivision("mtt", "sz", "1")
NO_SET = SetDivision()


async def _deploy(store: Store, node: str, *, division: SetDivision = NO_SET) -> None:
    await store.servers.deploy(
        ServerSpec(
            application="Test",
            server_name="Hello",
            node_name=node,
            enable_set="Y" if division else "N",
            set_name=division.name,
            set_area=division.area,
            set_group=division.group,
        ),
        [AdapterSpec(servant="Test.Hello.HelloObj", endpoint=f"tcp -h {node} -p 10001")],
    )


async def test_merge_order_is_references_then_server_then_node(store: Store) -> None:
    c = store.configs
    app = await c.add(Level.APP, "Test", "common.conf", "<a>\nx=app\n</a>", user="ann")
    db = await c.add(Level.APP, "Test", "db.conf", "db=1")
    server = await c.add(Level.SERVER, "Test.Hello", "hello.conf", "x=server")
    node = await c.add(Level.NODE, "Test.Hello", "hello.conf", "x=node", host="10.0.0.1")
    await c.add_reference(server, app)
    await c.add_reference(node, db)
    merged = await c.merged("Test.Hello", "hello.conf", "10.0.0.1", SetDivision())
    assert merged == SEP.join(["<a>\nx=app\n</a>", "x=server", "db=1", "x=node"])
    # another node gets the server level only
    assert await c.merged("Test.Hello", "hello.conf", "10.0.0.2", SetDivision()) == SEP.join(
        ["<a>\nx=app\n</a>", "x=server"]
    )
    assert await c.merged("Test.Hello", "nosuch.conf", "10.0.0.1", SetDivision()) == ""
    assert await c.references(server) == [app]


async def test_a_set_caller_gets_the_set_variant_after_each_application_file(store: Store) -> None:
    c = store.configs
    app = await c.add(Level.APP, "Test", "common.conf", "x=app")
    await c.add(Level.APP, "Test", "common.conf", "x=set", division=SET)
    server = await c.add(Level.SERVER, "Test.Hello", "hello.conf", "x=server-in-set", division=SET)
    await c.add_reference(server, app)
    assert await c.merged("Test.Hello", "hello.conf", "n1", SET) == SEP.join(
        ["x=app", "x=set", "x=server-in-set"]
    )
    assert await c.app_file("Test", "common.conf", SET) == "x=app" + SEP + "x=set"
    assert await c.app_file("Test", "common.conf", SetDivision()) == "x=app"
    # a set file cannot be referenced itself: its variant follows the plain one
    (set_file,) = await c.list("Test", level=1, division=SET)
    with pytest.raises(InvalidInput, match="no set"):
        await c.add_reference(server, set_file.id)


async def test_a_server_file_gives_each_instance_its_node_file(store: Store) -> None:
    await _deploy(store, "10.0.0.1")
    await _deploy(store, "10.0.0.2")
    await _deploy(store, "10.0.0.3", division=SET)
    c = store.configs
    server = await c.add(Level.SERVER, "Test.Hello", "hello.conf", "x=1")
    nodes = await c.list("Test", server="Hello", level=Level.NODE)
    assert sorted(n.host for n in nodes) == ["10.0.0.1", "10.0.0.2"]  # not the set's instance
    assert all(n.config == "" for n in nodes)
    assert await c.node_files("Test.Hello", "10.0.0.1", SetDivision()) == ["hello.conf"]
    assert await c.node_files("Test.Hello", "10.0.0.9", SetDivision()) == []
    # deleting the server file takes its node files with it
    deleted = await c.delete(server)
    assert len(deleted) == 3
    assert await c.list("Test") == []


async def test_history_records_every_version_and_restore_brings_one_back(store: Store) -> None:
    c = store.configs
    fid = await c.add(Level.SERVER, "Test.Hello", "a.conf", "v=1", reason="first", user="ann")
    await c.update(fid, "v=2", reason="second", user="bob")
    versions = await c.history(fid)
    assert [(v.content, v.reason, v.lastuser) for v in versions] == [
        ("v=2", "second", "bob"),
        ("v=1", "first", "ann"),
    ]
    assert await c.restore(versions[1].id, user="cid") == fid
    row = await c.get(fid)
    assert row is not None
    assert (row.config, row.lastuser) == ("v=1", "cid")
    newest = (await c.history(fid))[0]
    assert (newest.content, newest.reason) == ("v=1", f"restore {versions[1].id}")
    with pytest.raises(NotFound):
        await c.restore(999_999)


async def test_a_referenced_file_cannot_be_deleted(store: Store) -> None:
    c = store.configs
    app = await c.add(Level.APP, "Test", "common.conf", "x=1")
    server = await c.add(Level.SERVER, "Test.Hello", "hello.conf", "y=1")
    await c.add_reference(server, app)
    with pytest.raises(Conflict, match="referenced"):
        await c.delete(app)
    with pytest.raises(Conflict):
        await c.add_reference(server, app)
    await c.remove_reference(server, app)
    with pytest.raises(NotFound):
        await c.remove_reference(server, app)
    assert await c.delete(app) == [app]
    assert await c.history(app) == []


async def test_references_stay_within_one_application_and_point_at_level_1(store: Store) -> None:
    c = store.configs
    other = await c.add(Level.APP, "Other", "common.conf", "x=1")
    server = await c.add(Level.SERVER, "Test.Hello", "hello.conf", "y=1")
    server2 = await c.add(Level.SERVER, "Test.Hello", "two.conf", "y=2")
    with pytest.raises(InvalidInput, match="application"):
        await c.add_reference(server, other)
    with pytest.raises(InvalidInput, match="level 1"):
        await c.add_reference(server, server2)
    with pytest.raises(NotFound):
        await c.add_reference(server, 424242)


async def test_listing_filters_and_all_files(store: Store) -> None:
    c = store.configs
    await c.add(Level.APP, "Test", "common.conf", "x=1")
    await c.add(Level.SERVER, "Test.Hello", "hello.conf", "y=1")
    await c.add(Level.NODE, "Test.Hello", "node.conf", "z=1", host="n1")
    await c.add(Level.SERVER, "Test.World", "world.conf", "w=1")
    assert [r.filename for r in await c.list("Test")] == [
        "common.conf",
        "hello.conf",
        "world.conf",
        "node.conf",
    ]
    assert [r.filename for r in await c.list("Test", server="Hello")] == [
        "hello.conf",
        "node.conf",
    ]
    assert await c.all_files("Test", "", app_only=True, host="", division=NO_SET) == ["common.conf"]
    assert await c.all_files("Test", "Hello", app_only=False, host="", division=NO_SET) == [
        "hello.conf",
        "node.conf",
    ]
    assert await c.all_files("Test", "Hello", app_only=False, host="n1", division=NO_SET) == [
        "node.conf"
    ]


async def test_the_same_file_twice_is_a_conflict(store: Store) -> None:
    c = store.configs
    await c.add(Level.SERVER, "Test.Hello", "a.conf", "x=1")
    with pytest.raises(Conflict, match="already exists"):
        await c.add(Level.SERVER, "Test.Hello", "a.conf", "x=2")
    # same name at another level or in a set is another file
    await c.add(Level.SERVER, "Test.Hello", "a.conf", "x=3", division=SET)
    await c.add(Level.NODE, "Test.Hello", "a.conf", "x=4", host="n1")


@pytest.mark.parametrize(
    ("level", "server", "filename", "host", "match"),
    [
        (Level.APP, "Test", "../etc/passwd", "", "config file name"),
        (Level.APP, "Test", "a/b.conf", "", "config file name"),
        (Level.APP, "Test", "..", "", "config file name"),
        (Level.APP, "Test", "", "", "must not be empty"),
        (Level.APP, "Test.Hello", "a.conf", "", "application"),
        (Level.SERVER, "Test", "a.conf", "", "App.Server"),
        (Level.SERVER, "Test.He/llo", "a.conf", "", "server name"),
        (Level.NODE, "Test.Hello", "a.conf", "", "node name"),
        (Level.NODE, "Test.Hello", "a.conf", "../x", "node name"),
        (Level.SERVER, "Test.Hello", "a.conf", "n1", "only a node file"),
        (7, "Test.Hello", "a.conf", "", "level 7"),
        (Level.APP, "Test", "x" * 129, "", "at most 128"),
    ],
)
async def test_bad_names_are_refused(
    store: Store, level: int, server: str, filename: str, host: str, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        await store.configs.add(level, server, filename, "x=1", host=host)
    assert await store.configs.list("Test") == []


async def test_a_file_too_big_is_refused_and_nothing_stored(store: Store) -> None:
    c = store.configs
    with pytest.raises(InvalidInput, match="bytes; at most"):
        await c.add(Level.APP, "Test", "big.conf", "x" * (c.max_size + 1))
    fid = await c.add(Level.APP, "Test", "big.conf", "x=1")
    with pytest.raises(InvalidInput, match="bytes; at most"):
        await c.update(fid, "é" * (c.max_size // 2 + 1))
    row = await c.get(fid)
    assert row is not None
    assert row.config == "x=1"
    assert len(await c.history(fid)) == 1


def test_set_division_parsing() -> None:
    assert parse_set("") == SetDivision()
    assert parse_set("mtt.sz.*") == SetDivision("mtt", "sz", "*")
    assert str(parse_set("mtt.sz.1")) == "mtt.sz.1"
    for bad in ("mtt", "mtt.sz", "a.b.c.d", "a..b", "a.b/c.d", "a.b." + "1" * 17):
        with pytest.raises(InvalidInput, match=r"name\.area\.group"):
            parse_set(bad)
