"""Opening a database migrates it to head once, installs the built-in templates once, and
leaves an operator's rows alone on every later open."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, insert, inspect, select, text, update

from tarsus.conf.templates import builtin_names
from tarsus.store import Store, open_store
from tarsus.store.migrate import alembic_config, head_revision
from tarsus.store.schema import metadata, t_profile_template, t_server_conf
from tarsus.store.servers import ServerSpec

#: Tables of our own (docs/alerts.md), beside upstream's.
TARSUS_TABLES = {
    "t_alert_rules",
    "t_alert_events",
    "t_web_user",
    "t_web_grant",
    "t_web_token",
    "t_web_session",
    "t_web_audit",
}
UPSTREAM_TABLES = {
    "t_server_conf",
    "t_adapter_conf",
    "t_node_info",
    "t_registry_info",
    "t_profile_template",
    "t_config_files",
    "t_config_references",
    "t_config_history_files",
    "t_server_group_rule",
    "t_group_priority",
    "t_server_patchs",
    "t_task",
    "t_task_item",
    "t_machine_tars_info",
    "t_server_group_relation",
    "t_web_release_conf",
    "t_docker_registry",
    "t_base_image",
    "t_framework_key",
    "t_server_notifys",
}


async def _tables(store: Store) -> set[str]:
    async with store.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_fresh_database_is_at_head_with_every_table(store: Store) -> None:
    assert await store.revision() == head_revision()
    tables = await _tables(store)
    assert UPSTREAM_TABLES | {"alembic_version"} <= tables
    assert set(metadata.tables) == UPSTREAM_TABLES | TARSUS_TABLES


async def test_migrated_columns_match_the_schema_module(store: Store) -> None:
    def columns(conn: object) -> dict[str, list[str]]:
        inspector = inspect(conn)
        return {name: [c["name"] for c in inspector.get_columns(name)] for name in metadata.tables}

    async with store.connect() as conn:
        found = await conn.run_sync(columns)
    for name, table in metadata.tables.items():
        assert found[name] == [c.name for c in table.columns], name


async def test_unique_keys_and_indexes_are_upstreams(store: Store) -> None:
    def keys(conn: object) -> tuple[list[list[str]], list[str]]:
        inspector = inspect(conn)
        uniques = [u["column_names"] for u in inspector.get_unique_constraints("t_server_conf")]
        # MySQL reports unique keys as indexes too; keep the plain ones.
        indexes = [i["name"] for i in inspector.get_indexes("t_server_conf") if not i["unique"]]
        return uniques, sorted(str(i) for i in indexes)

    async with store.connect() as conn:
        uniques, indexes = await conn.run_sync(keys)
    assert ["application", "server_name", "node_name"] in uniques
    assert indexes == ["index_i_3", "index_regtime", "node_name"]


async def test_builtin_templates_are_installed(store: Store) -> None:
    rows = {t.template_name: t for t in await store.templates.list()}
    assert set(builtin_names()) <= set(rows)
    assert rows["tars.default"].parents_name == "tars.default"
    assert rows["tars.tarspython.default"].parents_name == "tars.default"


async def test_reopen_is_a_no_op_and_keeps_edited_templates(store: Store, store_url: str) -> None:
    async with store.begin() as conn:
        await conn.execute(
            update(t_profile_template)
            .where(t_profile_template.c.template_name == "tars.default")
            .values(profile="<tars>\n  edited=yes\n</tars>\n")
        )
    async with store.connect() as conn:
        versions_before = (
            await conn.execute(text("SELECT version_num FROM alembic_version"))
        ).all()

    async with await open_store(store_url) as again:
        assert await again.revision() == head_revision()
        row = await again.templates.get("tars.default")
        assert row is not None and "edited=yes" in row.profile
        async with again.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert versions == versions_before == [(head_revision(),)]


async def test_a_deleted_builtin_template_comes_back_on_open(store: Store, store_url: str) -> None:
    await store.templates.delete("tars.tarspython.default")
    async with await open_store(store_url) as again:
        assert await again.templates.get("tars.tarspython.default") is not None


async def test_processes_opening_a_fresh_database_together_migrate_once(store_url: str) -> None:
    stores = await asyncio.gather(*(open_store(store_url) for _ in range(3)))
    try:
        for opened in stores:
            assert await opened.revision() == head_revision()
        names = [t.template_name for t in await stores[0].templates.list()]
        assert sorted(names) == sorted(set(names))  # seeded once, no duplicates
    finally:
        for opened in stores:
            await opened.close()


async def test_mysql_bumps_registry_timestamp_for_outside_writers(store: Store) -> None:
    """Upstream's web console updates rows without touching registry_timestamp; on MySQL the
    column's ON UPDATE clause must bump it, or incremental route loads miss the change."""
    if store.dialect != "mysql":
        async with store.connect() as conn:
            sql = await conn.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 't_server_conf'")
            )
        assert "datetime('now', 'localtime')" in sql
        return
    async with store.connect() as conn:
        ddl = (await conn.execute(text("SHOW CREATE TABLE t_server_conf"))).one()[1]
    assert "ON UPDATE current_timestamp()" in ddl or "ON UPDATE CURRENT_TIMESTAMP" in ddl
    async with store.begin() as conn:
        await conn.execute(
            t_server_conf.insert().values(
                application="Web", server_name="Edit", node_name="n1", registry_timestamp=None
            )
        )
        await conn.execute(text("UPDATE t_server_conf SET registry_timestamp = '2001-01-01'"))
        await conn.execute(text("UPDATE t_server_conf SET exe_path = '/bin/x'"))
        stamp = await conn.scalar(text("SELECT registry_timestamp FROM t_server_conf"))
    assert stamp.year > 2001


def _at_0001(db: Path) -> None:
    """A SQLite store as Tarsus left it before migration 0002, with three Python servers."""
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            insert(t_profile_template),
            [
                {"template_name": name, "parents_name": parent, "profile": ""}
                for name, parent in (
                    ("tars.default", "tars.default"),
                    ("tars.tarspython.default", "tars.default"),
                    ("Demo.py", "tars.tarspython.default"),
                    ("Demo.other", "tars.default"),
                )
            ],
        )
        for server, template in (("A", "tars.default"), ("B", "Demo.py"), ("C", "Demo.other")):
            conn.execute(
                insert(t_server_conf).values(
                    application="Demo",
                    server_name=server,
                    node_name="n1",
                    server_type="tars_python",
                    template_name=template,
                )
            )
        conn.execute(
            insert(t_server_conf).values(
                application="Demo", server_name="Cpp", node_name="n1", server_type="tars_cpp"
            )
        )
    engine.dispose()


async def test_migration_0002_stores_python_servers_as_upstream_types(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    _at_0001(db)
    async with await open_store(f"sqlite:///{db}") as store:
        assert await store.revision() == head_revision()
        async with store.connect() as conn:
            stored = {
                name: (kind, template)
                for name, kind, template in await conn.execute(
                    select(
                        t_server_conf.c.server_name,
                        t_server_conf.c.server_type,
                        t_server_conf.c.template_name,
                    )
                )
            }
        assert stored == {
            "A": ("tars_cpp", "tars.tarspython.default"),  # tars.default + the interpreter key
            "B": ("tars_cpp", "Demo.py"),
            "C": ("tars_python", "Demo.other"),  # would become C++: kept, and logged
            "Cpp": ("tars_cpp", ""),
        }
        seen = {r.server_name: r.server_type for r in await store.servers.list()}
        assert seen == {
            "A": "tars_python",
            "B": "tars_python",
            "C": "tars_python",
            "Cpp": "tars_cpp",
        }


async def test_migration_0003_gives_every_server_a_patch_time(tmp_path: Path) -> None:
    """Upstream TarsWeb's schema sync makes ``patch_time`` NOT NULL and stops at a NULL; rows
    deployed and never patched held one before."""
    db = tmp_path / "tarsus.db"
    _at_0001(db)  # its servers were never patched: patch_time NULL
    async with await open_store(f"sqlite:///{db}") as store:
        async with store.connect() as conn:
            times = (await conn.execute(select(t_server_conf.c.patch_time))).scalars().all()
        assert len(times) == 4 and all(t is not None for t in times), times
        spec = ServerSpec("Demo", "New", "n1", server_type="tars_cpp", template_name="tars.default")
        await store.servers.deploy(spec, [])
        async with store.connect() as conn:
            new = await conn.scalar(
                select(t_server_conf.c.patch_time).where(t_server_conf.c.server_name == "New")
            )
        assert new is not None  # a fresh deploy carries its deploy time
