"""``/monitor/{app}/{server}/logs``: a server's log files (per node, and remote), the last
lines of one, search, and follow (htmx polls ``.../logs/tail``, for at most
:data:`MAX_POLLS` rounds; then a click resumes)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import logs
from tarsus.ops.access import Perm
from tarsus.ops.errors import OpError
from tarsus.web.params import LogQuery, PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

#: rounds of following (every :data:`POLL_SECONDS`) before it stops: a forgotten tab does not
#: read a log every two seconds for ever
MAX_POLLS = 150
POLL_SECONDS = 2


async def _view(
    actor: ActorDep, platform: PlatformDep, app: str, server: str, file: str, query: LogQuery
) -> dict[str, object]:
    """The viewer's context: the text, or the reason there is none."""
    view: dict[str, object] = {
        "file": file,
        **dataclasses.asdict(query),
        "text": None,
        "error": "",
    }
    if file:
        try:
            found = await query.text(platform, actor, app, server, file)
            view["text"] = found.text
            view["source"] = found.source
        except OpError as e:
            if e.status == 403:
                raise
            view["error"] = e.message
    return view


@router.get("/monitor/{app}/{server}/logs", response_class=HTMLResponse, **access(Perm.VIEW, "app"))
async def logs_page(
    request: Request,
    app: str,
    server: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[LogQuery, Depends()],
    file: str = "",
    follow: bool = False,
) -> Response:
    files = await logs.log_files(platform, actor, app, server)
    view = await _view(actor, platform, app, server, file, query)
    return render(
        request,
        "logs/index.html",
        actor=actor,
        app=app,
        server=server,
        tab="logs",
        files=files,
        view=view,
        follow=follow and view["text"] is not None,
        polls=0,
        max_polls=MAX_POLLS,
        poll_seconds=POLL_SECONDS,
    )


@router.get(
    "/monitor/{app}/{server}/logs/tail", response_class=HTMLResponse, **access(Perm.VIEW, "app")
)
async def logs_tail(
    request: Request,
    app: str,
    server: str,
    file: str,
    actor: ActorDep,
    platform: PlatformDep,
    query: Annotated[LogQuery, Depends()],
    polls: int = 0,
) -> Response:
    """The viewer alone (htmx's poll while following)."""
    view = await _view(actor, platform, app, server, file, query)
    polls = max(0, min(polls, MAX_POLLS)) + 1
    return render(
        request,
        "logs/viewer.html",
        actor=actor,
        app=app,
        server=server,
        view=view,
        follow=polls < MAX_POLLS and view["text"] is not None,
        polls=polls,
        max_polls=MAX_POLLS,
        poll_seconds=POLL_SECONDS,
    )
