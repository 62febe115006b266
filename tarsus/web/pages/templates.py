"""``/templates``: configuration templates, their parent chain and merged view; create, edit
and delete (admin)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import templates
from tarsus.ops.access import Perm
from tarsus.ops.errors import OpError
from tarsus.web.nav import NavItem
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("admin", 60, "templates.nav", "/templates", Perm.ADMIN),)


def _f(form: Any, name: str, strip: bool = True) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value.replace("\r\n", "\n")


@router.get("/templates", response_class=HTMLResponse, **access(Perm.VIEW, "global"))
async def templates_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await templates.list_templates(platform, actor, page)
    return render(request, "templates/list.html", actor=actor, page=found, error="", values={})


@router.post("/templates", response_class=HTMLResponse, **access(Perm.ADMIN, "global"))
async def create_template(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    form = await request.form()
    name = _f(form, "name")
    try:
        await templates.save(
            platform, actor, name, _f(form, "parent"), _f(form, "profile", strip=False)
        )
    except OpError as e:
        found = await templates.list_templates(platform, actor, page)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        return render(
            request,
            "templates/list.html",
            actor=actor,
            page=found,
            error=e.message,
            values=values,
            status=e.status,
        )
    return RedirectResponse(f"/templates/{quote(name)}", status_code=303)


@router.get("/templates/{name}", response_class=HTMLResponse, **access(Perm.VIEW, "global"))
async def template_page(
    request: Request, name: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    found = await templates.get(platform, actor, name)
    return render(
        request, "templates/detail.html", actor=actor, tpl=found, error="", profile=found.profile
    )


@router.post("/templates/{name}", response_class=HTMLResponse, **access(Perm.ADMIN, "global"))
async def save_template(
    request: Request, name: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    profile = _f(form, "profile", strip=False)
    try:
        await templates.save(
            platform, actor, name, _f(form, "parent"), profile, force=_f(form, "force") == "1"
        )
    except OpError as e:
        found = await templates.get(platform, actor, name)
        return render(
            request,
            "templates/detail.html",
            actor=actor,
            tpl=found,
            error=e.message,
            profile=profile,
            status=e.status,
        )
    return RedirectResponse(f"/templates/{quote(name)}", status_code=303)


@router.post(
    "/templates/{name}/delete", response_class=HTMLResponse, **access(Perm.ADMIN, "global")
)
async def delete_template(
    request: Request, name: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    try:
        await templates.delete(platform, actor, name)
    except OpError as e:
        found = await templates.get(platform, actor, name)
        return render(
            request,
            "templates/detail.html",
            actor=actor,
            tpl=found,
            error=e.message,
            profile=found.profile,
            status=e.status,
        )
    return RedirectResponse("/templates", status_code=303)
