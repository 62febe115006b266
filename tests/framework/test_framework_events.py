"""The admin registry and the registry report their own events to notify
(``t_server_notifys``), in ``tarsus up`` with the servers run as real processes by the node:
a publish that fails leaves a ``[fail]`` row for the server it was for; a database outage
leaves one ``[error]`` row for the registry and one normal row when it ends, however many
calls failed meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from package_support import NODE, Platform, platform
from sqlalchemy.ext.asyncio import create_async_engine

from tarsus.protocol.gen import AdminReg
from tarsus.testing import eventually

APP, SERVER = "Test", "Sleeper"


async def _rows(p: Platform, app: str, server: str, n: int) -> list[Any]:
    store = p.framework.store
    assert store is not None

    async def enough() -> list[Any] | None:
        rows = list(reversed(await store.notifys.list(app, server, limit=50)))
        return rows if len(rows) >= n else None

    found: list[Any] = await eventually(enough, f"{n} events of {app}.{server}", timeout=20)
    return found


async def test_a_publish_of_a_missing_version_leaves_a_fail_row_for_that_server(
    tmp_path: Path,
) -> None:
    async with platform(tmp_path) as p:
        await p.deploy(APP, SERVER, "not_tars", {})
        item = AdminReg.TaskItemReq(
            itemNo="t1-1",
            application=APP,
            serverName=SERVER,
            nodeName=NODE,
            command="patch_tars",
            userName="alice",
            parameters={"patch_id": "4242"},
        )
        req = AdminReg.TaskReq(taskItemReq=[item], taskNo="t1", serial=True, userName="alice")
        assert await p.admin.addTaskReq(req) == 0
        (row,) = await _rows(p, APP, SERVER, 1)
        assert row.command == "[error]"
        assert row.result.startswith("[fail] publish of version 4242 failed: task t1 (by alice)")
        assert "4242" in row.result.split(": ", 2)[2]  # the reason names the version
        assert row.server_id == f"{APP}.{SERVER}_{NODE}" and row.node_name == NODE


async def test_a_database_outage_is_reported_once_by_the_registry(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        registry = p.framework.registry
        store = p.framework.store
        assert registry is not None and store is not None
        working = store.engine
        # a database that cannot be opened: every statement fails
        store.engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db")
        try:
            await asyncio.sleep(0.3)  # statements begun on the working engine end first
            for _ in range(3):  # several failing calls, one outage
                try:
                    await registry.load(full=True)
                except Exception as e:
                    registry._failed(e)
            assert registry._outage.down_since is not None
        finally:
            await store.engine.dispose()
            store.engine = working
        await registry.reap()  # the database answers again
        rows = await _rows(p, "tars", "tarsregistry", 2)
        assert [r.command for r in rows] == ["[error]", "[normal]"]
        assert rows[0].result.startswith("[error] database unavailable (registry loop: ")
        assert rows[1].result.startswith("database answers again after ")
