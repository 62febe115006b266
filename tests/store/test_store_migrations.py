"""Opening a database migrates it to head once, installs the built-in templates once, and
leaves an operator's rows alone on every later open."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text, update

from tarsus.conf.templates import builtin_names
from tarsus.store import Store, open_store
from tarsus.store.migrate import head_revision
from tarsus.store.schema import metadata, t_profile_template, t_server_conf

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
    assert set(metadata.tables) == UPSTREAM_TABLES


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
