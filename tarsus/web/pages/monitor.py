"""``/monitor``: pick a server; ``/monitor/{app}/{server}/stats`` and ``.../properties``: its
call statistics and properties, a day beside a compare day, as charts (uPlot, vendored) and
as a table of the same numbers (the table is the page without JavaScript)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import monitor, services
from tarsus.ops.access import Perm
from tarsus.web.nav import NavItem
from tarsus.web.params import PlatformDep, PropertiesQuery, StatsQuery
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("services", 20, "monitor.nav", "/monitor", Perm.VIEW),)


@router.get("/monitor", response_class=HTMLResponse, **access(Perm.VIEW, "any"))
async def monitor_index(
    request: Request, actor: ActorDep, platform: PlatformDep, q: str = "", application: str = ""
) -> Response:
    """The servers one may look at (the service tree), each linking to its monitoring."""
    tree = await services.tree(platform, actor, q.strip(), application or None)
    return render(request, "monitor/index.html", actor=actor, tree=tree, q=q)


@router.get(
    "/monitor/{app}/{server}/stats", response_class=HTMLResponse, **access(Perm.VIEW, "app")
)
async def stats_page(
    request: Request,
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[StatsQuery, Depends()],
) -> Response:
    report = await query.report(platform, actor, app, server)
    return render(
        request,
        "monitor/stats.html",
        actor=actor,
        app=app,
        server=server,
        tab="stats",
        report=report,
        filters=query.filters(),
        groups=monitor.STAT_GROUPS,
        chart=report.as_dict()["series"],
    )


@router.get(
    "/monitor/{app}/{server}/properties",
    response_class=HTMLResponse,
    **access(Perm.VIEW, "app"),
)
async def properties_page(
    request: Request,
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[PropertiesQuery, Depends()],
) -> Response:
    report = await query.report(platform, actor, app, server)
    return render(
        request,
        "monitor/properties.html",
        actor=actor,
        app=app,
        server=server,
        tab="properties",
        report=report,
        filters=query.filters(),
        groups=monitor.PROPERTY_GROUPS,
        chart=report.as_dict()["charts"],
    )
