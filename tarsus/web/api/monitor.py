"""``/api/v1/servers/{app}/{server}/stats`` and ``.../properties``: call statistics and
properties of a server, a day beside a compare day (docs/console.md, "Monitoring")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tarsus.ops.access import Perm
from tarsus.web.params import PlatformDep, PropertiesQuery, StatsQuery
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["monitor"])


@router.get("/servers/{app}/{server}/stats", **access(Perm.VIEW, "app"))
async def stats(
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[StatsQuery, Depends()],
) -> Any:
    """Calls the server answered on ``date`` (YYYY-MM-DD, default today) beside ``compare``
    (default the day before), ``start``-``end`` (HH:MM): per time flag, or grouped by
    ``group_by`` (``interface_name``, ``master_name`` (caller), ``slave_name``,
    ``master_ip``, ``slave_ip``); each row has both days' calls, average time (ms), failure
    and timeout rates (%), and the calls' swing (%). ``series`` is per time flag, for charts."""
    return (await query.report(platform, actor, app, server)).as_dict()


@router.get("/servers/{app}/{server}/properties", **access(Perm.VIEW, "app"))
async def properties(
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[PropertiesQuery, Depends()],
) -> Any:
    """The server's properties on ``date`` beside ``compare``, summed per ``group_by``
    (``property_name``, ``policy``, ``master_ip``; empty: per time flag), and per time flag
    for each property and policy (``charts``)."""
    return (await query.report(platform, actor, app, server)).as_dict()
