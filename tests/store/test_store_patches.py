"""The package store's rows (``t_server_patchs``): add, list newest first, one default per
server, the publish log, which versions instances run, and retention that never deletes a
deployed package nor the default. On SQLite and MariaDB (the ``store`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from tarsus.store import AdapterSpec, Conflict, InvalidInput, NotFound, ServerSpec, Store
from tarsus.store.patches import parse_patch_id
from tarsus.store.schema import t_server_patchs

MD5 = "0123456789abcdef0123456789abcdef"


async def _deploy(store: Store, node: str, port: int) -> None:
    await store.servers.deploy(
        ServerSpec("Demo", "Hello", node, server_type="tars_python"),
        [AdapterSpec("Demo.Hello.HelloObj", f"tcp -h {node} -p {port} -t 60000")],
    )


async def _set_version(store: Store, node: str, version: str) -> None:
    """What a node's install writes (through the registry): the instance's patch_version."""
    assert await store.servers.set_patch_result("Demo", "Hello", node, version, "ops")


async def test_add_get_and_list_newest_first(store: Store, clock: Any) -> None:
    first = await store.patches.add(
        "Demo.Hello", "Demo.Hello_cli_1.tgz", MD5.upper(), comment="first", user="alice"
    )
    clock.advance(60)
    second = await store.patches.add("Demo.Hello", "Demo.Hello_cli_2.tgz", MD5, user="bob")
    await store.patches.add("Demo.Other", "Demo.Other_cli_1.tgz", MD5)
    assert second > first
    row = await store.patches.get(first)
    assert row is not None
    assert (row.server, row.tgz, row.md5, row.update_text, row.upload_user) == (
        "Demo.Hello",
        "Demo.Hello_cli_1.tgz",
        MD5,  # stored lower case
        "first",
        "alice",
    )
    assert row.upload_time is not None and row.upload_time < clock.now
    assert (row.publish, row.default_version) == (0, 0)
    assert [r.id for r in await store.patches.list("Demo.Hello")] == [second, first]
    assert await store.patches.get(999999) is None


@pytest.mark.parametrize(
    ("server", "tgz", "md5", "comment", "why"),
    [
        ("Demo", "a.tgz", MD5, "", "App.Server"),
        ("Demo.He/llo", "a.tgz", MD5, "", "server name"),
        ("../x.Hello", "a.tgz", MD5, "", "application"),
        ("Demo.Hello", "../a.tgz", MD5, "", "package file name"),
        ("Demo.Hello", "sub/a.tgz", MD5, "", "package file name"),
        ("Demo.Hello", "a..tgz", MD5, "", "'..'"),
        ("Demo.Hello", ".hidden", MD5, "", "package file name"),
        ("Demo.Hello", "", MD5, "", "empty"),
        ("Demo.Hello", "a\0.tgz", MD5, "", "package file name"),
        ("Demo.Hello", "a" * 201, MD5, "", "at most 200"),
        ("Demo.Hello", "a.tgz", "xyz", "", "md5"),
        ("Demo.Hello", "a.tgz", MD5 + "0", "", "md5"),
        ("Demo.Hello", "a.tgz", MD5, "c" * 256, "comment"),
        ("A" * 30 + "." + "B" * 30, "a.tgz", MD5, "", "at most 50"),
    ],
)
async def test_bad_input_is_refused_and_nothing_stored(
    store: Store, server: str, tgz: str, md5: str, comment: str, why: str
) -> None:
    with pytest.raises(InvalidInput, match=why.replace(".", r"\.").replace("(", r"\(")):
        await store.patches.add(server, tgz, md5, comment=comment)
    async with store.connect() as conn:
        assert (await conn.execute(select(t_server_patchs.c.id))).first() is None


async def test_one_default_per_server(store: Store) -> None:
    a = await store.patches.add("Demo.Hello", "a.tgz", MD5)
    b = await store.patches.add("Demo.Hello", "b.tgz", MD5)
    other = await store.patches.add("Demo.Other", "o.tgz", MD5)
    await store.patches.set_default(other)
    await store.patches.set_default(a, user="alice")
    await store.patches.set_default(b, user="bob")
    defaults = {r.id: r.default_version for r in await store.patches.list("Demo.Hello")}
    assert defaults == {a: 0, b: 1}
    found = await store.patches.get(other)
    assert found is not None and found.default_version == 1  # another server's stays
    newest_default = await store.patches.find("Demo.Hello", 0, 1)
    assert newest_default is not None and newest_default.id == b
    with pytest.raises(NotFound):
        await store.patches.set_default(424242)


async def test_record_publish(store: Store, clock: Any) -> None:
    a = await store.patches.add("Demo.Hello", "a.tgz", MD5)
    clock.advance(5)
    assert await store.patches.record_publish(a, "carol" + "x" * 40)
    row = await store.patches.get(a)
    assert row is not None
    assert (row.publish, row.publish_user, row.publish_time) == (1, "carol" + "x" * 25, clock.now)
    assert not await store.patches.record_publish(a + 1000, "carol")


async def test_deployed_versions_and_delete(store: Store) -> None:
    a = await store.patches.add("Demo.Hello", "a.tgz", MD5)
    b = await store.patches.add("Demo.Hello", "b.tgz", MD5)
    await _deploy(store, "10.0.0.1", 9001)
    await _deploy(store, "10.0.0.2", 9002)
    await _set_version(store, "10.0.0.1", str(a))
    await _set_version(store, "10.0.0.2", str(a))
    assert await store.patches.deployed("Demo.Hello") == {a: ["10.0.0.1", "10.0.0.2"]}
    with pytest.raises(Conflict, match=r"deployed on 10\.0\.0\.1, 10\.0\.0\.2"):
        await store.patches.delete(a)
    deleted = await store.patches.delete(b)
    assert deleted.tgz == "b.tgz"
    assert [r.id for r in await store.patches.list("Demo.Hello")] == [a]
    with pytest.raises(NotFound):
        await store.patches.delete(b)


async def test_prune_keeps_newest_deployed_and_default(store: Store) -> None:
    ids = [await store.patches.add("Demo.Hello", f"p{i}.tgz", MD5) for i in range(8)]
    other = await store.patches.add("Demo.Other", "o.tgz", MD5)
    await _deploy(store, "10.0.0.1", 9001)
    await _set_version(store, "10.0.0.1", str(ids[1]))
    await store.patches.set_default(ids[0])
    pruned = await store.patches.prune("Demo.Hello", keep=3)
    # newest 3 kept (ids[5..7]), ids[1] runs, ids[0] is the default
    assert sorted(r.id for r in pruned) == ids[2:5]
    assert sorted(r.tgz for r in pruned) == ["p2.tgz", "p3.tgz", "p4.tgz"]
    left = [r.id for r in await store.patches.list("Demo.Hello")]
    assert left == [ids[7], ids[6], ids[5], ids[1], ids[0]]
    assert await store.patches.prune("Demo.Hello", keep=3) == []
    assert await store.patches.get(other) is not None
    with pytest.raises(InvalidInput):
        await store.patches.prune("Demo.Hello", keep=0)


async def test_rows_written_as_upstream_web_writes_them_read_back(store: Store) -> None:
    """TarsWeb's PatchDao inserts only some columns (others NULL or their defaults)."""
    async with store.begin() as conn:
        result = await conn.execute(
            insert(t_server_patchs).values(
                server="Demo.Hello",
                tgz="Demo.Hello_suse_1700000000000.tgz",
                md5=MD5,
                update_text="from the web",
                upload_user="admin",
            )
        )
        key = result.inserted_primary_key
        assert key is not None
    row = await store.patches.get(int(key[0]))
    assert row is not None
    assert (row.tgz, row.publish, row.default_version, row.upload_time, row.publish_user) == (
        "Demo.Hello_suse_1700000000000.tgz",
        0,
        0,
        None,
        "",
    )
    assert row.is_release_version == "true"


def test_patch_ids() -> None:
    assert parse_patch_id("12") == 12
    assert parse_patch_id(12) == 12
    for bad in ("", "0", "-1", "1.5", "x", "99999999999", " 3", "\u0663"):
        assert parse_patch_id(bad) is None, bad
