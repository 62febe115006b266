"""``/api/v1/users``, ``/api/v1/grants`` (roles), ``/api/v1/tokens``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from tarsus.ops import users
from tarsus.ops.access import EVERYTHING, Perm
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["users"])


class NewUser(BaseModel):
    uid: str
    password: str
    #: ``[["operator", "Test"], ...]``
    roles: list[tuple[str, str]] = Field(default_factory=list)


class UserChange(BaseModel):
    enabled: bool | None = None
    password: str | None = None


class NewGrant(BaseModel):
    uid: str
    role: str
    flag: str = EVERYTHING


class NewToken(BaseModel):
    name: str
    scopes: str = "view"
    flag: str = EVERYTHING
    expires: datetime | None = None


class TokenChange(BaseModel):
    enabled: bool


def _token(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = jsonable_encoder(row)
    out.pop("token_hash", None)
    return out


@router.get("/users", **access(Perm.ADMIN, "global"))
async def list_users(actor: ActorDep, platform: PlatformDep, page: PageDep) -> Any:
    """Users with their roles."""
    return page_json(await users.list_users(platform, actor, page))


@router.post("/users", status_code=201, **access(Perm.ADMIN, "global"))
async def create_user(body: NewUser, actor: ActorDep, platform: PlatformDep) -> Any:
    """A user with a password and roles."""
    return jsonable_encoder(
        await users.create_user(platform, actor, body.uid, body.password, body.roles)
    )


@router.get("/users/{uid}", **access(Perm.ADMIN, "global"))
async def get_user(uid: str, actor: ActorDep, platform: PlatformDep) -> Any:
    return jsonable_encoder(await users.get_user(platform, actor, uid))


@router.patch("/users/{uid}", **access(Perm.ADMIN, "global"))
async def change_user(uid: str, body: UserChange, actor: ActorDep, platform: PlatformDep) -> Any:
    """Enable or disable a user, or set their password (their sessions end)."""
    if body.enabled is not None:
        await users.set_user_enabled(platform, actor, uid, body.enabled)
    if body.password is not None:
        await users.reset_password(platform, actor, uid, body.password)
    return jsonable_encoder(await users.get_user(platform, actor, uid))


@router.delete("/users/{uid}", status_code=204, **access(Perm.ADMIN, "global"))
async def delete_user(uid: str, actor: ActorDep, platform: PlatformDep) -> Response:
    """A user, their roles, tokens and sessions."""
    await users.delete_user(platform, actor, uid)
    return Response(status_code=204)


@router.get("/grants", **access(Perm.ADMIN, "global"))
async def list_grants(actor: ActorDep, platform: PlatformDep, page: PageDep) -> Any:
    """Every grant (``q`` matches user, role or scope)."""
    return page_json(await users.grants(platform, actor, page))


@router.post("/grants", status_code=201, **access(Perm.ADMIN, "global"))
async def add_grant(body: NewGrant, actor: ActorDep, platform: PlatformDep) -> Any:
    """Grant a role (or one of upload/publish/restart/config_edit/config_push) on a scope."""
    return jsonable_encoder(await users.add_grant(platform, actor, body.uid, body.role, body.flag))


@router.delete("/grants/{grant_id}", status_code=204, **access(Perm.ADMIN, "global"))
async def delete_grant(grant_id: int, actor: ActorDep, platform: PlatformDep) -> Response:
    await users.delete_grant(platform, actor, grant_id)
    return Response(status_code=204)


@router.get("/tokens", **access(Perm.VIEW, "self"))
async def list_tokens(
    actor: ActorDep, platform: PlatformDep, page: PageDep, everyone: bool = False
) -> Any:
    """Your tokens (``everyone=true``: everyone's, admin only); never the secrets."""
    found = await users.list_tokens(platform, actor, page, everyone=everyone)
    return {**page_json(found), "items": [_token(r) for r in found.items]}


@router.post("/tokens", status_code=201, **access(Perm.VIEW, "self"))
async def create_token(body: NewToken, actor: ActorDep, platform: PlatformDep) -> Any:
    """A token of yours; its secret is in this answer only."""
    made = await users.create_token(
        platform, actor, body.name, body.scopes, body.flag, body.expires
    )
    return {**_token(made.row), "token": made.secret}


@router.patch("/tokens/{token_id}", **access(Perm.VIEW, "self"))
async def change_token(
    token_id: int, body: TokenChange, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Enable or disable a token (yours, or any as admin)."""
    await users.set_token_enabled(platform, actor, token_id, body.enabled)
    return {"id": token_id, "enabled": body.enabled}


@router.delete("/tokens/{token_id}", status_code=204, **access(Perm.VIEW, "self"))
async def delete_token(token_id: int, actor: ActorDep, platform: PlatformDep) -> Response:
    await users.delete_token(platform, actor, token_id)
    return Response(status_code=204)
