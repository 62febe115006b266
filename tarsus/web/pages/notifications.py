"""``/monitor/{app}/{server}/notifications``: a server's alarms and events, paged, by level
and node."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import notifications
from tarsus.ops.access import Perm
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import is_htmx, render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)


@router.get(
    "/monitor/{app}/{server}/notifications",
    response_class=HTMLResponse,
    **access(Perm.VIEW, "app"),
)
async def notifications_page(
    request: Request,
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    page: PageDep,
    level: str = "",
    node: str = "",
) -> Response:
    found = await notifications.notifications(
        platform, actor, app, server, page, level=level, node=node
    )
    filters = {"q": page.q, "level": level, "node": node}
    base = f"/monitor/{app}/{server}/notifications?" + urlencode(
        {k: v for k, v in filters.items() if v} | {"size": page.size}
    )
    template = "notifications/list.html" if is_htmx(request) else "notifications/index.html"
    return render(
        request,
        template,
        actor=actor,
        app=app,
        server=server,
        tab="notifications",
        page=found,
        base=base,
        target="#notifications",
        filters=filters,
        levels=list(notifications.LEVELS),
    )
