"""``t_server_notifys``: the alarms and events of every server instance (upstream tarsnotify).

One row per notification: ``application``, ``server_name``, ``node_name``, ``server_id``
(``App.Server_<node>``), set (``set_name``/``set_area``/``set_group``), ``thread_id``, the
level tag in ``command`` (``[alarm]``, ``[error]``, ``[warn]``, ``[normal]``), the text in
``result`` and ``notifytime``. Upstream TarsWeb reads this table directly (a server's "status
and alarms" tab), so the layout and the values are upstream's (TarsFramework
``NotifyImp::reportNotifyInfo``).

Retention (upstream's ``retainHistory`` job, which does not prune in practice because of a
typo; see docs/notify.md): :meth:`Notifys.prune` keeps the newest N rows of each instance and
drops rows older than a number of days.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select

from tarsus.store.schema import t_server_notifys

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["NOTIFY_COLUMNS", "NotifyRow", "Notifys"]

#: The text columns and their widths (longer values are cut to fit, as MySQL's strict mode
#: would refuse them).
NOTIFY_COLUMNS: dict[str, int] = {
    name: int(getattr(col.type, "length", 0) or 0)
    for name, col in t_server_notifys.c.items()
    if getattr(col.type, "length", None)
}


@dataclass(frozen=True, slots=True)
class NotifyRow:
    """One notification, as stored."""

    application: str
    server_name: str
    node_name: str
    command: str
    result: str
    notifytime: datetime
    container_name: str = ""
    set_name: str = ""
    set_area: str = ""
    set_group: str = ""
    thread_id: str = ""
    id: int = 0

    @property
    def server_id(self) -> str:
        """Upstream's ``server_id`` column: ``App.Server_<node>``."""
        return f"{self.application}.{self.server_name}_{self.node_name}"

    def values(self) -> dict[str, Any]:
        """The row's columns, text cut to the column widths."""
        raw: dict[str, Any] = {
            "application": self.application,
            "server_name": self.server_name,
            "container_name": self.container_name,
            "node_name": self.node_name,
            "set_name": self.set_name,
            "set_area": self.set_area,
            "set_group": self.set_group,
            "server_id": self.server_id,
            "thread_id": self.thread_id,
            "command": self.command,
            "result": self.result,
            "notifytime": self.notifytime,
        }
        for name, width in NOTIFY_COLUMNS.items():
            value = raw.get(name)
            if isinstance(value, str) and len(value) > width:
                raw[name] = value[:width]
        return raw


def _read(r: Any) -> NotifyRow:
    return NotifyRow(
        id=int(r.id),
        application=r.application or "",
        server_name=r.server_name or "",
        node_name=r.node_name or "",
        command=r.command or "",
        result=r.result or "",
        notifytime=r.notifytime or datetime.min,
        container_name=r.container_name or "",
        set_name=r.set_name or "",
        set_area=r.set_area or "",
        set_group=r.set_group or "",
        thread_id=r.thread_id or "",
    )


class Notifys:
    """Read and write ``t_server_notifys``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, rows: builtins.list[NotifyRow]) -> None:
        """Insert ``rows`` in one transaction (all or none)."""
        if not rows:
            return
        async with self._store.begin() as conn:
            await conn.execute(insert(t_server_notifys), [r.values() for r in rows])

    async def list(
        self,
        application: str,
        server_name: str,
        *,
        node: str = "",
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[NotifyRow]:
        """The notifications of ``application.server_name`` (on ``node``; every node when
        empty), newest first."""
        c = t_server_notifys.c
        q = select(t_server_notifys).where(
            c.application == application, c.server_name == server_name
        )
        if node:
            q = q.where(c.node_name == node)
        q = q.order_by(c.id.desc()).limit(max(0, limit)).offset(max(0, offset))
        async with self._store.connect() as conn:
            return [_read(r) for r in await conn.execute(q)]

    async def prune(self, *, keep: int, before: datetime | None = None) -> int:
        """Keep the newest ``keep`` rows of each instance (``server_id``) and drop rows from
        before ``before``; returns how many rows went."""
        c = t_server_notifys.c
        removed = 0
        async with self._store.begin() as conn:
            if before is not None:
                result = await conn.execute(delete(t_server_notifys).where(c.notifytime < before))
                removed += int(result.rowcount or 0)
            crowded = await conn.execute(
                select(c.server_id).group_by(c.server_id).having(func.count(c.id) > max(0, keep))
            )
            for (server_id,) in crowded.all():
                cut = (
                    await conn.execute(
                        select(c.id)
                        .where(c.server_id == server_id)
                        .order_by(c.id.desc())
                        .offset(max(0, keep))
                        .limit(1)
                    )
                ).scalar()
                if cut is not None:
                    result = await conn.execute(
                        delete(t_server_notifys).where(c.server_id == server_id, c.id <= cut)
                    )
                    removed += int(result.rowcount or 0)
        return removed
