"""``/api/v1/audit``: the audit log, searchable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from tarsus.ops import audit
from tarsus.ops.access import Perm
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", **access(Perm.ADMIN, "global"))
async def search(
    actor: ActorDep,
    platform: PlatformDep,
    page: PageDep,
    uid: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """Newest first: ``q`` matches who, what or on what; ``action`` is a prefix
    (``user.``); ``since``/``until`` bound the time."""
    found = await audit.search(
        platform, actor, page, uid=uid[:64], action=action[:64], since=since, until=until
    )
    return page_json(found)
