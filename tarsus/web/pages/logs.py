"""``/monitor/{app}/{server}/logs``: a server's log files (per node, and remote), the last
lines of one, search, and follow (htmx polls ``.../logs/tail``, for at most
:data:`MAX_POLLS` rounds; then a click resumes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import logs
from tarsus.ops.access import Perm
from tarsus.ops.errors import OpError
from tarsus.web.params import PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

#: rounds of following (every :data:`POLL_SECONDS`) before it stops: a forgotten tab does not
#: read a log every two seconds for ever
MAX_POLLS = 150
POLL_SECONDS = 2


async def _view(
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    app: str,
    server: str,
    *,
    file: str,
    node: str,
    remote: bool,
    lines: int,
    q: str,
    regex: bool,
    ignore_case: bool,
) -> dict[str, object]:
    """The viewer's context: the text, or the reason there is none."""
    view: dict[str, object] = {
        "file": file,
        "node": node,
        "remote": remote,
        "lines": lines,
        "q": q,
        "regex": regex,
        "ignore_case": ignore_case,
        "text": None,
        "error": "",
    }
    if file:
        try:
            found = await logs.log_data(
                platform,
                actor,
                app,
                server,
                file,
                node=node,
                remote=remote,
                lines=lines,
                search=q,
                regex=regex,
                ignore_case=ignore_case,
            )
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
    file: str = "",
    node: str = "",
    remote: bool = False,
    lines: int = 200,
    q: str = "",
    regex: bool = False,
    ignore_case: bool = False,
    follow: bool = False,
) -> Response:
    files = await logs.log_files(platform, actor, app, server)
    view = await _view(
        request, actor, platform, app, server, file=file, node=node, remote=remote,
        lines=lines, q=q, regex=regex, ignore_case=ignore_case,
    )  # fmt: skip
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
    node: str = "",
    remote: bool = False,
    lines: int = 200,
    q: str = "",
    regex: bool = False,
    ignore_case: bool = False,
    polls: int = 0,
) -> Response:
    """The viewer alone (htmx's poll while following)."""
    view = await _view(
        request, actor, platform, app, server, file=file, node=node, remote=remote,
        lines=lines, q=q, regex=regex, ignore_case=ignore_case,
    )  # fmt: skip
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
