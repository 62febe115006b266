"""The audit log: every mutating operation records who, what, when, before and after.

An operation calls :func:`record` once its change is made (a refused or failed one records
nothing, and changed nothing). ``before``/``after`` are any JSON-able values (dataclasses
too); secrets never go in (a password is recorded as changed, not as its hash).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tarsus.ops.access import Actor, Perm
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is not imported where there is none: the CLI
    from tarsus.store.audit import AuditRow

__all__ = ["record", "search"]


def _json(value: Any) -> str:
    if value is None:
        return ""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


async def record(
    platform: Platform,
    actor: Actor,
    action: str,
    target: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """One audit row: ``action`` is ``<domain>.<verb>`` (``user.create``, ``server.restart``),
    ``target`` what it acted on (``alice``, ``Test.Hello@10.0.0.5``).

    Without a database (the ``tarsus`` CLI, which reaches the framework services only) nothing
    is recorded here: the framework service that made the change keeps who asked (a task's
    user, a config version's user, a template's last user, a package's uploader).
    """
    if platform.db is None:
        return
    await platform.db.audit.add(
        actor.uid, actor.via, action, target, _json(before), _json(after), actor.client
    )


async def search(
    platform: Platform,
    actor: Actor,
    query: PageQuery,
    *,
    uid: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditRow]:
    """Newest first; admin only."""
    actor.require(Perm.ADMIN)
    rows, total = await platform.store.audit.page(
        q=query.q,
        uid=uid,
        action=action,
        since=since,
        until=until,
        offset=query.offset,
        limit=query.size,
    )
    return Page.of(rows, total, query)
