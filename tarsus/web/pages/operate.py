"""``/servers/{app}/{server}``: one server's instances, to start, stop, restart (a task whose
progress ``/tasks/{task_no}`` shows live: :mod:`tarsus.web.pages.tasks`), send admin commands
to, expand, and undeploy (with a confirmation page; refused while active)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import deploy, operate, services
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import OpError
from tarsus.ops.paging import MAX_PAGE_SIZE, PageQuery
from tarsus.ops.platform import Platform
from tarsus.web.pages.tasks import task_path
from tarsus.web.params import PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)


def _f(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _chosen(form: Any, app: str, server: str) -> list[str]:
    """The ticked instances (node names) of this server, as ``App.Server@node``."""
    return [f"{app}.{server}@{n}" for n in form.getlist("node") if isinstance(n, str)]


async def _server_page(
    request: Request,
    actor: Actor,
    platform: Platform,
    app: str,
    server: str,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    found = await services.instances(
        platform,
        actor,
        PageQuery(size=MAX_PAGE_SIZE),
        application=app,
        server_name=server,
    )
    context: dict[str, Any] = {
        "app": app,
        "server": server,
        "page": found,
        "answers": None,
        "command": "",
        "error": "",
        "notice": "",
        "levels": operate.LOG_LEVELS,
        "may_restart": actor.can(Perm.RESTART, app, server),
        "may_operate": actor.can(Perm.OPERATE, app, server),
        **extra,
    }
    return render(request, "operate/server.html", actor=actor, status=status, **context)


@router.get("/servers/{app}/{server}", response_class=HTMLResponse, **access(Perm.VIEW, "app"))
async def server_page(
    request: Request, app: str, server: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    return await _server_page(request, actor, platform, app, server)


@router.post("/servers/{app}/{server}/task", **access(Perm.RESTART, "app"))
async def add_task(
    request: Request, app: str, server: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    try:
        targets = operate.parse_targets(_chosen(form, app, server))
        task_no = await operate.lifecycle(
            platform, actor, _f(form, "command"), targets, serial=_f(form, "serial") == "1"
        )
    except OpError as e:
        return await _server_page(
            request, actor, platform, app, server, status=e.status, error=e.message
        )
    return RedirectResponse(task_path(task_no), status_code=303)


@router.post(
    "/servers/{app}/{server}/notify", response_class=HTMLResponse, **access(Perm.OPERATE, "app")
)
async def notify(
    request: Request, app: str, server: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    try:
        targets = operate.parse_targets(_chosen(form, app, server))
        command = operate.admin_command(_f(form, "kind"), _f(form, "argument"))
        answers = await operate.notify(platform, actor, targets, command)
    except OpError as e:
        return await _server_page(
            request, actor, platform, app, server, status=e.status, error=e.message
        )
    return await _server_page(
        request, actor, platform, app, server, answers=answers, command=command
    )


@router.post(
    "/servers/{app}/{server}/expand", response_class=HTMLResponse, **access(Perm.OPERATE, "app")
)
async def expand(
    request: Request, app: str, server: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    nodes = _f(form, "nodes").replace(",", " ").split()
    try:
        done = await deploy.expand(
            platform,
            actor,
            app,
            server,
            _f(form, "source_node"),
            nodes,
            same_ports=_f(form, "ports") != "auto",
        )
    except OpError as e:
        return await _server_page(
            request, actor, platform, app, server, status=e.status, error=e.message
        )
    shown = ", ".join(d.node_name for d in done)
    return await _server_page(request, actor, platform, app, server, notice=f"+ {shown}")


@router.get(
    "/servers/{app}/{server}/{node}/undeploy",
    response_class=HTMLResponse,
    **access(Perm.OPERATE, "app"),
)
async def confirm_undeploy(
    request: Request, app: str, server: str, node: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    target = operate.Target.of(app, server, node)
    row = await platform.store.servers.get(app, server, node)
    return render(request, "operate/undeploy.html", actor=actor, target=target, row=row, error="")


@router.post(
    "/servers/{app}/{server}/{node}/undeploy",
    response_class=HTMLResponse,
    **access(Perm.OPERATE, "app"),
)
async def undeploy(
    request: Request, app: str, server: str, node: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    target = operate.Target.of(app, server, node)
    form = await request.form()
    if _f(form, "confirm") != str(target):
        row = await platform.store.servers.get(app, server, node)
        return render(
            request,
            "operate/undeploy.html",
            actor=actor,
            target=target,
            row=row,
            error="confirm",
            status=400,
        )
    try:
        await operate.undeploy(platform, actor, target)
    except OpError as e:
        row = await platform.store.servers.get(app, server, node)
        return render(
            request,
            "operate/undeploy.html",
            actor=actor,
            target=target,
            row=row,
            error=e.message,
            status=e.status,
        )
    return RedirectResponse(f"/servers/{quote(app)}/{quote(server)}", status_code=303)
