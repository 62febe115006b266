"""``/api/v1/servers/{app}/{server}/logs``: a server's log files, their last lines, search
(docs/console.md, "Logs")."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tarsus.ops import logs
from tarsus.ops.access import Perm
from tarsus.web.params import LogQuery, PlatformDep
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["logs"])


@router.get("/servers/{app}/{server}/logs", **access(Perm.VIEW, "app"))
async def log_files(app: str, server: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """The server's log files per node (``local``), on tars.tarslog (``remote``; null when
    it cannot be reached), and the nodes that could not list theirs (``errors``)."""
    return dataclasses.asdict(await logs.log_files(platform, actor, app, server))


@router.get("/servers/{app}/{server}/logs/data", **access(Perm.VIEW, "app"))
async def log_data(
    app: str,
    server: str,
    file: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[LogQuery, Depends()],
) -> Any:
    """The last ``lines`` lines (1-10000) of ``file`` on ``node`` (or ``remote``); with
    ``q``, of the lines holding it (``regex``: an extended regular expression, run bounded
    on the node), with their numbers."""
    found = await query.text(platform, actor, app, server, file)
    return {"text": found.text, "command": found.command, "source": found.source}
