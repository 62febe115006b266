"""``/services``: the service tree beside the instance list (htmx pages the list)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import services
from tarsus.ops.access import Perm
from tarsus.web.nav import NavItem
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import is_htmx, render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("services", 10, "services.nav", "/services", Perm.VIEW),)


@router.get("/services", response_class=HTMLResponse, **access(Perm.VIEW, "any"))
async def services_page(
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    page: PageDep,
    application: str = "",
    server_name: str = "",
) -> Response:
    found = await services.instances(
        platform,
        actor,
        page,
        application=application or None,
        server_name=server_name or None,
    )
    filters = {"q": page.q, "application": application, "server_name": server_name}
    base = "/services?" + urlencode({k: v for k, v in filters.items() if v} | {"size": page.size})
    context: dict[str, Any] = {"page": found, "base": base, "target": "#instances", "q": page.q}
    if is_htmx(request):
        return render(request, "services/instances.html", actor=actor, **context)
    apps = await services.tree(platform, actor, page.q, application or None)
    return render(request, "services/index.html", actor=actor, tree=apps, **context)
