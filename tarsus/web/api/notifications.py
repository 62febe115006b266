"""``/api/v1/servers/{app}/{server}/notifications``: a server's alarms and events
(docs/console.md, "Notifications")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tarsus.ops import notifications
from tarsus.ops.access import Perm
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["notifications"])


@router.get("/servers/{app}/{server}/notifications", **access(Perm.VIEW, "app"))
async def list_notifications(
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    page: PageDep,
    level: str = "",
    node: str = "",
) -> Any:
    """Newest first, paged; ``level`` (``alarm``, ``error``, ``warn``, ``normal``), ``node``,
    ``q`` (in the text)."""
    found = await notifications.notifications(
        platform, actor, app, server, page, level=level, node=node
    )
    return page_json(found)
