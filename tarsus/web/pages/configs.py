"""``/configs``: pick a server; ``/configs/{app}/{server}``: its config files by level (add,
merged view of an instance); ``/configs/{app}/{server}/{file_id}``: one file (edit with a
reason, history, diff, restore, push to instances with each one's answer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import configs, services
from tarsus.ops.access import Perm
from tarsus.ops.paging import PageQuery
from tarsus.web.nav import NavItem
from tarsus.web.params import PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("operation", 40, "configs.nav", "/configs", Perm.VIEW),)

SERVER = "/configs/{app}/{server}"
FILE = SERVER + "/{file_id}"


def _f(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


@router.get("/configs", response_class=HTMLResponse, **access(Perm.VIEW, "any"))
async def pick(
    request: Request, actor: ActorDep, platform: PlatformDep, q: str = "", application: str = ""
) -> Response:
    apps = await services.tree(platform, actor, q.strip(), application or None)
    return render(
        request, "release/pick.html", actor=actor, tree=apps, q=q, base="/configs",
        title="configs.title",
    )  # fmt: skip


async def _nodes(platform: Any, actor: Any, app: str, server: str) -> list[str]:
    insts = await services.instances(
        platform, actor, PageQuery(size=500), application=app, server_name=server
    )
    return [i.node_name for i in insts.items]


@router.get(SERVER, response_class=HTMLResponse, **access(Perm.VIEW, "app"))
async def server_page(
    app: str,
    server: str,
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    name: str = "",
    node: str = "",
) -> Response:
    found = await configs.files(platform, actor, app, server)
    merged = await configs.merged(platform, actor, app, server, name, node) if name else None
    return render(
        request, "configs/server.html", actor=actor, app=app, server=server, files=found,
        nodes=await _nodes(platform, actor, app, server), merged=merged, name=name, node=node,
        can_edit=actor.can(Perm.CONFIG_EDIT, app, server),
    )  # fmt: skip


@router.post(SERVER, **access(Perm.CONFIG_EDIT, "app"))
async def add_file(
    app: str, server: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    added = await configs.add_file(
        platform, actor, app, server, _f(form, "name").strip(), _f(form, "content"),
        level=_f(form, "level") or "server", reason=_f(form, "reason"),
    )  # fmt: skip
    return RedirectResponse(f"/configs/{app}/{server}/{added.id}", status_code=303)


async def _file_page(
    request: Request,
    actor: Any,
    platform: Any,
    app: str,
    server: str,
    file_id: int,
    **extra: Any,
) -> Response:
    f = await configs.file(platform, actor, app, server, file_id)
    versions = await configs.history(platform, actor, app, server, file_id)
    context: dict[str, Any] = {
        "app": app, "server": server, "file": f, "versions": versions,
        "nodes": await _nodes(platform, actor, app, server),
        "can_edit": actor.can(Perm.CONFIG_EDIT, *(
            (app, None) if f.owner == app else (app, server))),
        "can_push": actor.can(Perm.CONFIG_PUSH, app, server), "answers": None, "diff": None,
    }  # fmt: skip
    context.update(extra)
    return render(request, "configs/file.html", actor=actor, **context)


@router.get(FILE, response_class=HTMLResponse, **access(Perm.VIEW, "app"))
async def file_page(
    app: str, server: str, file_id: int, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    return await _file_page(request, actor, platform, app, server, file_id)


@router.get(FILE + "/diff", response_class=HTMLResponse, **access(Perm.VIEW, "app"))
async def diff_page(
    app: str,
    server: str,
    file_id: int,
    old: int,
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    new: int | None = None,
) -> Response:
    found = await configs.diff(platform, actor, app, server, file_id, old, new)
    return await _file_page(request, actor, platform, app, server, file_id, diff=found)


@router.post(FILE, **access(Perm.CONFIG_EDIT, "app"))
async def edit_file(
    app: str, server: str, file_id: int, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    await configs.edit_file(
        platform, actor, app, server, file_id, _f(form, "content"), _f(form, "reason")
    )
    return RedirectResponse(f"/configs/{app}/{server}/{file_id}", status_code=303)


@router.post(FILE + "/restore/{version_id}", **access(Perm.CONFIG_EDIT, "app"))
async def restore(
    app: str,
    server: str,
    file_id: int,
    version_id: int,
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
) -> Response:
    form = await request.form()
    await configs.restore(platform, actor, app, server, file_id, version_id, _f(form, "reason"))
    return RedirectResponse(f"/configs/{app}/{server}/{file_id}", status_code=303)


@router.post(FILE + "/push", response_class=HTMLResponse, **access(Perm.CONFIG_PUSH, "app"))
async def push(
    app: str, server: str, file_id: int, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    nodes = [n for n in form.getlist("node") if isinstance(n, str)]
    f = await configs.file(platform, actor, app, server, file_id)
    answers = await configs.push(platform, actor, app, server, f.name, nodes)
    return await _file_page(request, actor, platform, app, server, file_id, answers=answers)
