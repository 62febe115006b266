"""``tarsus.store.tasks``: t_task / t_task_item rows, in upstream's encodings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from tarsus.store import Conflict, InvalidInput, Store
from tarsus.store.schema import t_task, t_task_item
from tarsus.store.tasks import (
    LOG_LIMIT,
    TaskItemRecord,
    TaskRecord,
    Tasks,
    decode_parameters,
    encode_parameters,
)


def test_parameters_are_upstream_tc_parsepara_text() -> None:
    params = {"patch_id": "12", "group_name": "", "odd": "a=b&c%d\r\n"}
    text = encode_parameters(params)
    assert text == "group_name=&odd=a%3Db%26c%25d%0D%0A&patch_id=12"
    assert decode_parameters(text) == params
    assert decode_parameters("bak_flag=0&patch_id=7&&=x&junk") == {"bak_flag": "0", "patch_id": "7"}
    assert decode_parameters(None) == {}


async def test_add_get_update(store: Store, clock: Any) -> None:
    tasks = Tasks(store)
    record = TaskRecord(
        "t1",
        serial=True,
        user_name="alice",
        items=[
            TaskItemRecord("i1", "Demo", "Hello", "10.0.0.7", command="start"),
            TaskItemRecord("i2", "Demo", "Hello", "10.0.0.8", command="patch_tars",
                           parameters={"patch_id": "3"}),
        ],
    )  # fmt: skip
    await tasks.add(record)
    assert record.create_time == clock()
    with pytest.raises(Conflict, match="t1"):
        await tasks.add(TaskRecord("t1", items=[TaskItemRecord("i9")]))
    assert await tasks.update_item("i2", task_no="t1", status=3, log="ok", end_time=clock()) == 1
    assert await tasks.update_item("nope", status=3) == 0
    got = await tasks.get("t1")
    assert got is not None and got.serial and got.user_name == "alice"
    assert [(i.item_no, i.status, i.log) for i in got.items] == [("i1", 0, ""), ("i2", 3, "ok")]
    assert got.items[1].parameters == {"patch_id": "3"} and got.items[1].end_time == clock()
    assert await tasks.get("t2") is None


async def test_rows_written_by_upstream_read_back(store: Store, clock: Any) -> None:
    async with store.begin() as conn:
        await conn.execute(
            insert(t_task).values(task_no="up", serial=0, user_name="admin", create_time=clock())
        )
        await conn.execute(
            insert(t_task_item).values(
                task_no="up",
                item_no="x",
                application="Demo",
                server_name="Hello",
                node_name="n",
                command="patch_tars",
                parameters="bak_flag=0&patch_id=7",
                status=None,
            )
        )
    got = await Tasks(store).get("up")
    assert got is not None and got.items[0].status == 0
    assert got.items[0].parameters == {"bak_flag": "0", "patch_id": "7"}


async def test_widths_and_logs(store: Store) -> None:
    tasks = Tasks(store)
    with pytest.raises(InvalidInput, match="command"):
        await tasks.add(TaskRecord("t", items=[TaskItemRecord("i", command="x" * 21)]))
    with pytest.raises(InvalidInput, match="appears twice"):
        await tasks.add(TaskRecord("t", items=[TaskItemRecord("i"), TaskItemRecord("i")]))
    await tasks.add(TaskRecord("t", items=[TaskItemRecord("i")]))
    long_log = "start\n" + "x" * (2 * LOG_LIMIT) + "\nthe error at the end"
    await tasks.update_item("i", log=long_log)
    got = await tasks.get("t")
    assert got is not None
    stored = got.items[0].log
    assert len(stored) == LOG_LIMIT and stored.endswith("the error at the end")
    assert stored.startswith("...(truncated)")
