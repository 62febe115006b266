"""``/monitor``: pick a server; ``/monitor/{app}/{server}/stats`` and ``.../properties``: its
call statistics and properties, a day beside a compare day, as charts (uPlot, vendored) and
as a table of the same numbers (the table is the page without JavaScript)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import monitor, services
from tarsus.ops.access import Perm
from tarsus.web.nav import NavItem
from tarsus.web.params import PlatformDep
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
    date: str = "",
    compare: str = "",
    start: str = "",
    end: str = "",
    group_by: str = "",
    interface: str = "",
    caller: str = "",
    caller_ip: str = "",
    callee_ip: str = "",
) -> Response:
    report = await monitor.stats(
        platform,
        actor,
        app,
        server,
        date=date,
        compare=compare,
        start=start,
        end=end,
        group_by=group_by,
        interface=interface,
        caller=caller,
        caller_ip=caller_ip,
        callee_ip=callee_ip,
    )
    filters = {
        "interface": interface,
        "caller": caller,
        "caller_ip": caller_ip,
        "callee_ip": callee_ip,
    }
    return render(
        request,
        "monitor/stats.html",
        actor=actor,
        app=app,
        server=server,
        tab="stats",
        report=report,
        filters=filters,
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
    date: str = "",
    compare: str = "",
    start: str = "",
    end: str = "",
    group_by: str = "property_name",
    property: str = "",
    policy: str = "",
    ip: str = "",
) -> Response:
    report = await monitor.properties(
        platform,
        actor,
        app,
        server,
        date=date,
        compare=compare,
        start=start,
        end=end,
        group_by=group_by,
        property_name=property,
        policy=policy,
        ip=ip,
    )
    return render(
        request,
        "monitor/properties.html",
        actor=actor,
        app=app,
        server=server,
        tab="properties",
        report=report,
        filters={"property": property, "policy": policy, "ip": ip},
        groups=monitor.PROPERTY_GROUPS,
        chart=report.as_dict()["charts"],
    )
