"""``/users``, ``/roles``, ``/tokens``: the user centre (admin; tokens: everyone's own)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import users
from tarsus.ops.access import EVERYTHING, GRANTABLE, Perm
from tarsus.ops.errors import Invalid
from tarsus.web.nav import NavItem
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (
    NavItem("admin", 10, "users.nav_users", "/users", Perm.ADMIN),
    NavItem("admin", 20, "users.nav_roles", "/roles", Perm.ADMIN),
    NavItem("admin", 30, "users.nav_tokens", "/tokens", Perm.VIEW),
)


def _f(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _back(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


@router.get("/users", response_class=HTMLResponse, **access(Perm.ADMIN, "global"))
async def users_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await users.list_users(platform, actor, page)
    return render(
        request, "users/users.html", actor=actor, page=found, grantable=GRANTABLE, error=""
    )


@router.post("/users", **access(Perm.ADMIN, "global"))
async def create_user(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    form = await request.form()
    role = _f(form, "role")
    roles = [(role, _f(form, "flag") or EVERYTHING)] if role else []
    await users.create_user(platform, actor, _f(form, "uid"), _f(form, "password"), roles)
    return _back("/users")


@router.post("/users/{uid}/enabled", **access(Perm.ADMIN, "global"))
async def enable_user(
    uid: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    await users.set_user_enabled(platform, actor, uid, _f(form, "enabled") == "1")
    return _back("/users")


@router.post("/users/{uid}/password", **access(Perm.ADMIN, "global"))
async def reset_password(
    uid: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    await users.reset_password(platform, actor, uid, _f(form, "password"))
    return _back("/users")


@router.post("/users/{uid}/delete", **access(Perm.ADMIN, "global"))
async def delete_user(uid: str, actor: ActorDep, platform: PlatformDep) -> Response:
    await users.delete_user(platform, actor, uid)
    return _back("/users")


@router.get("/roles", response_class=HTMLResponse, **access(Perm.ADMIN, "global"))
async def roles_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await users.grants(platform, actor, page)
    return render(
        request, "users/roles.html", actor=actor, page=found, grantable=GRANTABLE, error=""
    )


@router.post("/roles", **access(Perm.ADMIN, "global"))
async def add_grant(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    form = await request.form()
    await users.add_grant(platform, actor, _f(form, "uid"), _f(form, "role"), _f(form, "flag"))
    return _back("/roles")


@router.post("/roles/{grant_id}/delete", **access(Perm.ADMIN, "global"))
async def delete_grant(grant_id: int, actor: ActorDep, platform: PlatformDep) -> Response:
    await users.delete_grant(platform, actor, grant_id)
    return _back("/roles")


@router.get("/tokens", response_class=HTMLResponse, **access(Perm.VIEW, "self"))
async def tokens_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await users.list_tokens(platform, actor, page, everyone=actor.is_admin)
    return render(request, "users/tokens.html", actor=actor, page=found, secret="", error="")


@router.post("/tokens", response_class=HTMLResponse, **access(Perm.VIEW, "self"))
async def create_token(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    form = await request.form()
    days = _f(form, "days")
    if days and not (days.isdigit() and 1 <= int(days) <= 3650):
        raise Invalid("days must be a whole number from 1 to 3650")
    expires = platform.store.clock() + timedelta(days=int(days)) if days else None
    made = await users.create_token(
        platform,
        actor,
        _f(form, "name"),
        _f(form, "scopes"),
        _f(form, "flag") or EVERYTHING,
        expires,
    )
    found = await users.list_tokens(platform, actor, page, everyone=actor.is_admin)
    return render(
        request,
        "users/tokens.html",
        actor=actor,
        page=found,
        secret=made.secret,
        error="",
        status=201,
        headers={"Cache-Control": "no-store"},
    )


@router.post("/tokens/{token_id}/enabled", **access(Perm.VIEW, "self"))
async def enable_token(
    token_id: int, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    await users.set_token_enabled(platform, actor, token_id, _f(form, "enabled") == "1")
    return _back("/tokens")


@router.post("/tokens/{token_id}/delete", **access(Perm.VIEW, "self"))
async def delete_token(token_id: int, actor: ActorDep, platform: PlatformDep) -> Response:
    await users.delete_token(platform, actor, token_id)
    return _back("/tokens")
