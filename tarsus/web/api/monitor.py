"""``/api/v1/servers/{app}/{server}/stats`` and ``.../properties``: call statistics and
properties of a server, a day beside a compare day (docs/console.md, "Monitoring")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tarsus.ops import monitor
from tarsus.ops.access import Perm
from tarsus.web.params import PlatformDep
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["monitor"])


@router.get("/servers/{app}/{server}/stats", **access(Perm.VIEW, "app"))
async def stats(
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
) -> Any:
    """Calls the server answered on ``date`` (YYYY-MM-DD, default today) beside ``compare``
    (default the day before), ``start``-``end`` (HH:MM): per time flag, or grouped by
    ``group_by`` (``interface_name``, ``master_name`` (caller), ``slave_name``,
    ``master_ip``, ``slave_ip``); each row has both days' calls, average time (ms), failure
    and timeout rates (%), and the calls' swing (%). ``series`` is per time flag, for charts."""
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
    return report.as_dict()


@router.get("/servers/{app}/{server}/properties", **access(Perm.VIEW, "app"))
async def properties(
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
) -> Any:
    """The server's properties on ``date`` beside ``compare``, summed per ``group_by``
    (``property_name``, ``policy``, ``master_ip``; empty: per time flag), and per time flag
    for each property and policy (``charts``)."""
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
    return report.as_dict()
