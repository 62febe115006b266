"""``/deploy``: the deploy form (application, server, type, template, nodes, objs with their
ports, threads, connections; run as a process or in a container)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import deploy, services, templates
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Invalid, OpError
from tarsus.ops.platform import Platform
from tarsus.web.nav import NavItem
from tarsus.web.params import PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("operation", 10, "deploy.nav", "/deploy", Perm.OPERATE),)

#: obj rows the form shows (no JavaScript needed to add one)
OBJ_ROWS = 4
_INTS = ("port", "threads", "max_connections")


def _f(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _form(
    request: Request,
    actor: Actor,
    platform: Platform,
    values: dict[str, str],
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    try:
        names = await templates.names(platform, actor)
    except OpError:  # the admin registry down: the form still shows, the deploy will say so
        names = []
    apps = [a.name for a in await services.tree(platform, actor)]
    return render(
        request,
        "deploy/form.html",
        actor=actor,
        status=status,
        values=values,
        error=error,
        templates=names,
        apps=apps,
        server_types=deploy.SERVER_TYPES,
        rows=range(OBJ_ROWS),
    )


def _objs(form: Any) -> list[deploy.Servant]:
    objs = []
    for i in range(OBJ_ROWS):
        name = _f(form, f"obj{i}_name")
        if not name:
            continue
        numbers = {}
        for key in _INTS:
            text = _f(form, f"obj{i}_{key}")
            if text and not text.isdigit():
                raise Invalid(f"obj {name}: {key.replace('_', ' ')} must be a whole number")
            numbers[key] = int(text) if text else None
        defaults = deploy.Servant(name)
        objs.append(
            deploy.Servant(
                name=name,
                port=numbers["port"] or 0,
                threads=numbers["threads"] or defaults.threads,
                max_connections=numbers["max_connections"] or defaults.max_connections,
                protocol=_f(form, f"obj{i}_protocol") or "tars",
            )
        )
    return objs


@router.get("/deploy", response_class=HTMLResponse, **access(Perm.OPERATE, "any"))
async def deploy_form(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    values = {"server_type": "tars_python", "run_type": "process", "obj0_threads": "5"}
    values |= {k: v for k, v in request.query_params.items() if k in ("application",)}
    return await _form(request, actor, platform, values)


@router.post("/deploy", response_class=HTMLResponse, **access(Perm.OPERATE, "any"))
async def deploy_server(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    form = await request.form()
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    try:
        req = deploy.DeployRequest(
            application=_f(form, "application"),
            server_name=_f(form, "server_name"),
            nodes=_f(form, "nodes").replace(",", " ").split(),
            servants=_objs(form),
            server_type=_f(form, "server_type") or "tars_python",
            template=_f(form, "template"),
            run_type=_f(form, "run_type") or "process",
            image=_f(form, "image"),
        )
        await deploy.deploy(platform, actor, req)
    except OpError as e:
        return await _form(request, actor, platform, values, error=e.message, status=e.status)
    where = f"/servers/{quote(req.application)}/{quote(req.server_name)}"
    return RedirectResponse(where, status_code=303)
