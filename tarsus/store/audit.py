"""``t_web_audit``: every mutating action taken through the service layer (Tarsus's own).

One row per action: when, who (``uid``) and how (``via``: a console session, an API token,
the script token, the local CLI), the action's name (``user.create``, ``grant.add``, ...), its
target, and the state before and after as JSON text. Written by :mod:`tarsus.ops.audit`; rows
are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, or_, select

from tarsus.store.schema import t_web_audit

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["Audit", "AuditRow"]

#: bytes of a before/after value kept (a config file may be large; the audit keeps its head)
MAX_VALUE = 60000


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    time: datetime
    uid: str
    via: str
    action: str
    target: str
    before: str
    after: str
    client: str


class Audit:
    """``store.audit``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(
        self, uid: str, via: str, action: str, target: str, before: str, after: str, client: str
    ) -> int:
        async with self._store.begin() as conn:
            done = await conn.execute(
                insert(t_web_audit).values(
                    time=self._store.clock(),
                    uid=uid[:64],
                    via=via[:16],
                    action=action[:64],
                    target=target[:256],
                    before_value=before[:MAX_VALUE],
                    after_value=after[:MAX_VALUE],
                    client=client[:64],
                )
            )
            return int(done.inserted_primary_key[0])  # type: ignore[index]

    async def page(
        self,
        *,
        q: str = "",
        uid: str = "",
        action: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditRow], int]:
        """Newest first; ``q`` matches the user, action or target (a substring), ``action`` a
        prefix (``user.`` for every user action)."""
        c = t_web_audit.c
        conditions = []
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(
                or_(
                    c.uid.like(pattern, escape="\\"),
                    c.action.like(pattern, escape="\\"),
                    c.target.like(pattern, escape="\\"),
                )
            )
        if uid:
            conditions.append(c.uid == uid)
        if action:
            prefix = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(c.action.like(prefix + "%", escape="\\"))
        if since is not None:
            conditions.append(c.time >= since)
        if until is not None:
            conditions.append(c.time < until)
        query = select(t_web_audit).order_by(c.id.desc()).offset(offset).limit(limit)
        total = select(func.count()).select_from(t_web_audit)
        for cond in conditions:
            query, total = query.where(cond), total.where(cond)
        async with self._store.connect() as conn:
            rows = [
                AuditRow(
                    r.id,
                    r.time,
                    r.uid,
                    r.via or "",
                    r.action,
                    r.target or "",
                    r.before_value or "",
                    r.after_value or "",
                    r.client or "",
                )
                for r in await conn.execute(query)
            ]
            return rows, int(await conn.scalar(total) or 0)
