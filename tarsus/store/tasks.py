"""Task records: ``t_task`` (one row per task) and ``t_task_item`` (one per item).

The admin registry's task engine writes every task here before it runs it, and every change of
an item's status, times or log as it happens, so a task outlives the process that ran it.
Upstream persists only publish tasks (``DbProxy::addTaskReq``); the rows are the same.

``parameters`` is stored as upstream's ``TC_Parsepara`` text (``k=v&k2=v2``, keys sorted, the
characters ``=&%`` and CR/LF written as ``%XX``), so rows written by either side read on the
other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from tarsus.store.errors import Conflict, InvalidInput, StoreError, driver_reason, is_duplicate_key
from tarsus.store.schema import t_task, t_task_item

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = [
    "LOG_LIMIT",
    "TaskItemRecord",
    "TaskRecord",
    "Tasks",
    "decode_parameters",
    "encode_parameters",
]

#: Characters of an item's log kept in ``t_task_item.log`` (a MySQL ``TEXT`` holds 64 KiB,
#: i.e. 16 Ki characters of 4 bytes): longer logs keep their end, where the failure is.
LOG_LIMIT = 16000
_TRUNCATED = "...(truncated)\n"
_ESCAPED = "=&%\r\n"

# Column widths of upstream's DDL: MySQL in strict mode refuses longer values, so we say which.
_TASK_WIDTHS = {"task_no": 40, "user_name": 20}
_ITEM_WIDTHS = {
    "item_no": 40,
    "application": 30,
    "server_name": 50,
    "node_name": 50,
    "command": 20,
    "set_name": 20,
}


@dataclass(slots=True)
class TaskItemRecord:
    """One ``t_task_item`` row. ``status`` is an ``EMTaskItemStatus`` value."""

    item_no: str
    application: str = ""
    server_name: str = ""
    node_name: str = ""
    set_name: str = ""
    command: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None
    status: int = 0
    log: str = ""


@dataclass(slots=True)
class TaskRecord:
    """A ``t_task`` row with its items, in the order they were added."""

    task_no: str
    serial: bool = False
    user_name: str = ""
    create_time: datetime | None = None
    items: list[TaskItemRecord] = field(default_factory=list)


def encode_parameters(params: Mapping[str, str]) -> str:
    """``TC_Parsepara::tostr``: ``k=v`` pairs joined by ``&``, keys sorted, escaped."""
    return "&".join(f"{_escape(k)}={_escape(v)}" for k, v in sorted(params.items()))


def decode_parameters(text: str | None) -> dict[str, str]:
    """The inverse of :func:`encode_parameters`; pairs without ``=`` or a name are skipped."""
    out: dict[str, str] = {}
    for pair in (text or "").split("&"):
        name, sep, value = pair.partition("=")
        if sep and name:
            out[_unescape(name)] = _unescape(value)
    return out


def _escape(text: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%" and _is_hex(text[i + 1 : i + 3]):
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def _clip_log(text: str) -> str:
    if len(text) <= LOG_LIMIT:
        return text
    return _TRUNCATED + text[-(LOG_LIMIT - len(_TRUNCATED)) :]


def _check_widths(what: str, values: Mapping[str, str], widths: Mapping[str, int]) -> None:
    for name, width in widths.items():
        value = values.get(name, "")
        if len(value) > width:
            raise InvalidInput(
                f"{what}: {name} {value[:60]!r} is {len(value)} characters long; "
                f"t_task{'_item' if what != 'task' else ''}.{name} holds at most {width}"
            )


class Tasks:
    """Read and write task records (``store.tasks``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, task: TaskRecord) -> None:
        """Store a task and its items in one transaction. A task number already stored is a
        :class:`Conflict`; a value wider than its column is :class:`InvalidInput`."""
        if not task.task_no:
            raise InvalidInput("task: taskNo is empty")
        _check_widths("task", {"task_no": task.task_no, "user_name": task.user_name}, _TASK_WIDTHS)
        seen: set[str] = set()
        for n, item in enumerate(task.items):
            where = f"task {task.task_no} item {n}"
            if not item.item_no:
                raise InvalidInput(f"{where}: itemNo is empty")
            if item.item_no in seen:
                raise InvalidInput(f"{where}: itemNo {item.item_no!r} appears twice")
            seen.add(item.item_no)
            _check_widths(where, _item_texts(item), _ITEM_WIDTHS)
        create_time = task.create_time or self._store.clock()
        try:
            async with self._store.begin() as conn:
                # Items first, then the task, as upstream writes them (TarsFramework
                # AdminRegistryServer/DbProxy.cpp, DbProxy::addTaskReq): TarsWeb's schema
                # sync adds a foreign key t_task.task_no -> t_task_item.task_no.
                if task.items:
                    await conn.execute(
                        insert(t_task_item),
                        [
                            {
                                "task_no": task.task_no,
                                **_item_texts(item),
                                "parameters": encode_parameters(item.parameters),
                                "start_time": item.start_time,
                                "end_time": item.end_time,
                                "status": item.status,
                                "log": _clip_log(item.log),
                            }
                            for item in task.items
                        ],
                    )
                await conn.execute(
                    insert(t_task).values(
                        task_no=task.task_no,
                        serial=1 if task.serial else 0,
                        user_name=task.user_name,
                        create_time=create_time,
                    )
                )
        except IntegrityError as e:
            if is_duplicate_key(e):
                raise Conflict(f"task {task.task_no!r} is already stored") from e
            raise StoreError(
                f"the database refused task {task.task_no!r}: {driver_reason(e)}"
            ) from e
        task.create_time = create_time

    async def update_item(
        self,
        item_no: str,
        *,
        task_no: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        status: int | None = None,
        log: str | None = None,
    ) -> int:
        """Change the given fields of an item (by ``item_no``, and ``task_no`` when given, as
        item numbers are unique only within a task); returns the number of rows changed."""
        values: dict[str, Any] = {}
        if start_time is not None:
            values["start_time"] = start_time
        if end_time is not None:
            values["end_time"] = end_time
        if status is not None:
            values["status"] = status
        if log is not None:
            values["log"] = _clip_log(log)
        if not values:
            return 0
        cond = t_task_item.c.item_no == item_no
        if task_no is not None:
            cond = and_(cond, t_task_item.c.task_no == task_no)
        async with self._store.begin() as conn:
            result = await conn.execute(update(t_task_item).where(cond).values(**values))
        return int(result.rowcount)

    async def get(self, task_no: str) -> TaskRecord | None:
        """A task with its items, or None."""
        query = (
            select(*_TASK_READ, *_ITEM_READ)
            .join(t_task_item, t_task_item.c.task_no == t_task.c.task_no)
            .where(t_task.c.task_no == task_no)
            .order_by(t_task_item.c.id)
        )
        async with self._store.connect() as conn:
            rows = (await conn.execute(query)).all()
        tasks = _group(rows)
        return tasks[0] if tasks else None

    async def history(self, application: str, server_name: str, command: str) -> list[TaskRecord]:
        """Tasks with items for ``application.server_name`` running ``command``, newest first
        (upstream ``getTaskHistory``: only the matching items of each task)."""
        query = (
            select(*_TASK_READ, *_ITEM_READ)
            .join(t_task_item, t_task_item.c.task_no == t_task.c.task_no)
            .where(
                t_task_item.c.application == application,
                t_task_item.c.server_name == server_name,
                t_task_item.c.command == command,
            )
            .order_by(t_task.c.create_time.desc(), t_task.c.task_no, t_task_item.c.id)
        )
        async with self._store.connect() as conn:
            rows = (await conn.execute(query)).all()
        return _group(rows)


def _item_texts(item: TaskItemRecord) -> dict[str, str]:
    return {
        "item_no": item.item_no,
        "application": item.application,
        "server_name": item.server_name,
        "node_name": item.node_name,
        "set_name": item.set_name,
        "command": item.command,
    }


#: The columns read, by name (a column added by another tool is not read).
_TASK_READ = tuple(t_task.c[n] for n in ("task_no", "serial", "user_name", "create_time"))
_ITEM_READ = tuple(
    t_task_item.c[n]
    for n in (
        "item_no",
        "application",
        "server_name",
        "node_name",
        "set_name",
        "command",
        "parameters",
        "start_time",
        "end_time",
        "status",
        "log",
    )
)
_TASK_COLUMNS = len(_TASK_READ)


def _group(rows: Sequence[Row[Any]]) -> list[TaskRecord]:
    """Rows of ``t_task ⋈ t_task_item`` (task columns first) as tasks, in row order."""
    tasks: list[TaskRecord] = []
    by_no: dict[str, TaskRecord] = {}
    for row in rows:
        task_part, item_part = row[:_TASK_COLUMNS], row[_TASK_COLUMNS:]
        t = dict(zip((c.name for c in _TASK_READ), task_part, strict=True))
        i = dict(zip((c.name for c in _ITEM_READ), item_part, strict=True))
        task_no = t["task_no"] or ""
        task = by_no.get(task_no)
        if task is None:
            task = TaskRecord(
                task_no=task_no,
                serial=bool(t["serial"]),
                user_name=t["user_name"] or "",
                create_time=t["create_time"],
            )
            by_no[task_no] = task
            tasks.append(task)
        task.items.append(
            TaskItemRecord(
                item_no=i["item_no"] or "",
                application=i["application"] or "",
                server_name=i["server_name"] or "",
                node_name=i["node_name"] or "",
                set_name=i["set_name"] or "",
                command=i["command"] or "",
                parameters=decode_parameters(i["parameters"]),
                start_time=i["start_time"],
                end_time=i["end_time"],
                status=int(i["status"] or 0),
                log=i["log"] or "",
            )
        )
    return tasks
