"""Profile templates in the database: inheritance, loops, a server's private overlay, and the
errors a person sees for a bad template."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tarsus.conf import parse
from tarsus.store import (
    AdapterSpec,
    Conflict,
    InvalidInput,
    NotFound,
    ServerSpec,
    Store,
)
from tarsus.store.schema import t_profile_template

PARENT = """<tars>
  <application>
    <server>
      logLevel=INFO
      logsize=10M
    </server>
  </application>
</tars>
"""
CHILD = """<tars>
  <application>
    <server>
      logLevel=DEBUG
      netthread=2
    </server>
  </application>
</tars>
"""


async def test_child_wins_and_parent_fills_in(store: Store) -> None:
    await store.templates.upsert("t.parent", "tars.default", PARENT, user="alice")
    await store.templates.upsert("t.child", "t.parent", CHILD)
    resolved = parse(await store.templates.resolve("t.child"))
    assert resolved.get("/tars/application/server<logLevel>") == "DEBUG"
    assert resolved.get("/tars/application/server<logsize>") == "10M"
    assert resolved.get("/tars/application/server<netthread>") == "2"
    # from tars.default, two levels up
    assert resolved.get("/tars/application/client<sync-invoke-timeout>") == "3000"
    row = await store.templates.get("t.parent")
    assert row is not None and row.lastuser == "alice" and row.parents_name == "tars.default"


async def test_upsert_replaces_an_existing_template(store: Store) -> None:
    await store.templates.upsert("t.x", "", PARENT)
    await store.templates.upsert("t.x", "", CHILD)
    row = await store.templates.get("t.x")
    assert row is not None and row.profile == CHILD
    assert [t.template_name for t in await store.templates.list()].count("t.x") == 1


async def test_tars_default_is_its_own_parent_and_resolves(store: Store) -> None:
    resolved = parse(await store.templates.resolve("tars.default"))
    assert resolved.get("/tars/application/server<logsize>") == "10M"


async def test_a_write_that_would_make_a_loop_is_refused(store: Store) -> None:
    await store.templates.upsert("t.a", "", PARENT)
    await store.templates.upsert("t.b", "t.a", CHILD)
    with pytest.raises(InvalidInput, match=r"loop: t\.a -> t\.b -> t\.a"):
        await store.templates.upsert("t.a", "t.b", PARENT)


async def test_a_loop_written_by_someone_else_still_resolves(store: Store) -> None:
    """Upstream stops at a template already visited; so do we, instead of failing lookups."""
    async with store.begin() as conn:
        await conn.execute(
            insert(t_profile_template),
            [
                {"template_name": "loop.a", "parents_name": "loop.b", "profile": CHILD},
                {"template_name": "loop.b", "parents_name": "loop.a", "profile": PARENT},
            ],
        )
    resolved = parse(await store.templates.resolve("loop.a"))
    assert resolved.get("/tars/application/server<logLevel>") == "DEBUG"
    assert resolved.get("/tars/application/server<logsize>") == "10M"


async def test_missing_parent_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"parents_name of template 't\.c'.*'nope' does not"):
        await store.templates.upsert("t.c", "nope", PARENT)


async def test_bad_profile_is_refused_with_the_line(store: Store) -> None:
    with pytest.raises(InvalidInput) as info:
        await store.templates.upsert("t.bad", "", "<tars>\n  <server>\n</tars>\n")
    message = str(info.value)
    assert "profile of template 't.bad' is not valid TC_Config" in message
    assert "line" in message
    assert await store.templates.get("t.bad") is None


async def test_resolving_an_unknown_template_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="'nope' does not exist"):
        await store.templates.resolve("nope")


async def test_server_profile_puts_the_private_profile_on_top(store: Store) -> None:
    await store.templates.upsert("t.parent", "tars.default", PARENT)
    private = "<tars>\n  <application>\n    <server>\n      logLevel=ERROR\n      own=1\n"
    private += "    </server>\n  </application>\n</tars>\n"
    row = await store.servers.deploy(
        ServerSpec(
            "Demo", "Hello", "n1", server_type="tars_cpp", template_name="t.parent", profile=private
        ),
        [AdapterSpec("Demo.Hello.HelloObj", "tcp -h 127.0.0.1 -p 10000 -t 60000")],
    )
    merged = parse(await store.templates.server_profile(row))
    assert merged.get("/tars/application/server<logLevel>") == "ERROR"
    assert merged.get("/tars/application/server<own>") == "1"
    assert merged.get("/tars/application/server<logsize>") == "10M"
    assert merged.get("/tars/application/server<app>") == "${app}"  # macros left for the node


async def test_a_template_in_use_cannot_be_deleted(store: Store) -> None:
    await store.templates.upsert("t.used", "tars.default", PARENT)
    await store.servers.deploy(
        ServerSpec("Demo", "Hello", "n1", "tars_cpp", template_name="t.used"), []
    )
    with pytest.raises(Conflict, match=r"'t\.used' is still used by servers Demo\.Hello"):
        await store.templates.delete("t.used")
    await store.templates.upsert("t.kid", "t.used", CHILD)
    await store.servers.undeploy("Demo", "Hello", "n1")
    with pytest.raises(Conflict, match=r"templates t\.kid"):
        await store.templates.delete("t.used")
    await store.templates.delete("t.kid")
    await store.templates.delete("t.used")
    assert await store.templates.get("t.used") is None
    with pytest.raises(NotFound):
        await store.templates.delete("t.used")


async def test_a_template_a_node_uses_cannot_be_deleted(store: Store) -> None:
    await store.templates.upsert("t.node", "tars.default", PARENT)
    await store.nodes.register("n1", "", "10.0.0.1", 19385, "/data", 0, 0, 0, "1.0")
    await store.nodes.set_template("n1", "t.node")
    with pytest.raises(Conflict, match="nodes n1"):
        await store.templates.delete("t.node")


async def test_server_profiles_of_a_whole_node(store: Store) -> None:
    await store.templates.upsert("t.parent", "tars.default", PARENT)
    await store.servers.deploy(
        ServerSpec("Demo", "A", "n1", "tars_cpp", template_name="t.parent"), []
    )
    await store.servers.deploy(
        ServerSpec("Demo", "B", "n1", "tars_cpp", template_name="tars.default"), []
    )
    rows = await store.servers.list(node_name="n1")
    profiles = [parse(p) for p in await store.templates.server_profiles(rows)]
    assert [p.get("/tars/application/server<logLevel>") for p in profiles] == ["INFO", "DEBUG"]
