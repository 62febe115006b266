"""A server's notifications: the alarms and events of its instances (``t_server_notifys``,
written by ``tars.tarsnotify``; docs/notify.md), newest first, paged, by level and node.

Read from the store directly, as upstream TarsWeb's ``server_notify_list`` reads the table (the
notify service's ``getNotifyInfo`` pages without a count or a level filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tarsus.framework.notify.levels import ALARM, ERROR, NORMAL, WARN
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Invalid
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform
from tarsus.store.schema import t_server_notifys

__all__ = ["LEVELS", "Notification", "notifications"]

#: the level filter's values -> the tags stored in ``command``
LEVELS: dict[str, str] = {"alarm": ALARM, "error": ERROR, "warn": WARN, "normal": NORMAL}

c = t_server_notifys.c


@dataclass(frozen=True)
class Notification:
    id: int
    time: datetime | None
    node: str
    server_id: str
    thread_id: str
    #: ``alarm``, ``error``, ``warn``, ``normal`` (or the stored tag as it is)
    level: str
    message: str


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def notifications(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    query: PageQuery,
    *,
    level: str = "",
    node: str = "",
) -> Page[Notification]:
    """The notifications of ``app.server``: of ``level`` (or every level), on ``node`` (or
    every node), whose text holds ``query.q``; newest first."""
    actor.require(Perm.VIEW, app, server)
    where: list[Any] = [c.application == app, c.server_name == server]
    if level:
        if level not in LEVELS:
            raise Invalid(f"level {level[:20]!r} is not one of {', '.join(LEVELS)}")
        where.append(c.command == LEVELS[level])
    if node:
        if len(node) > 128:
            raise Invalid("the node is over 128 characters")
        where.append(c.node_name == node)
    if query.q:
        where.append(c.result.like(_like(query.q), escape="\\"))
    names = {tag: name for name, tag in LEVELS.items()}
    rows_q = (
        select(c.id, c.notifytime, c.node_name, c.server_id, c.thread_id, c.command, c.result)
        .where(*where)
        .order_by(c.id.desc())
        .offset(query.offset)
        .limit(query.size)
    )
    async with platform.store.connect() as conn:
        rows = (await conn.execute(rows_q)).all()
        total = int(
            await conn.scalar(select(func.count()).select_from(t_server_notifys).where(*where)) or 0
        )
    items = [
        Notification(
            id=int(r.id),
            time=r.notifytime,
            node=r.node_name or "",
            server_id=r.server_id or "",
            thread_id=r.thread_id or "",
            level=names.get(r.command or "", r.command or ""),
            message=r.result or "",
        )
        for r in rows
    ]
    return Page.of(items, total, query)
