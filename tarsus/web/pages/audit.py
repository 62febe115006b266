"""``/audit``: the audit log, searchable (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import audit
from tarsus.ops.access import Perm
from tarsus.web.nav import NavItem
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("admin", 40, "audit.nav", "/audit", Perm.ADMIN),)


@router.get("/audit", response_class=HTMLResponse, **access(Perm.ADMIN, "global"))
async def audit_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep, action: str = ""
) -> Response:
    found = await audit.search(platform, actor, page, action=action[:64])
    return render(request, "audit/list.html", actor=actor, page=found)
