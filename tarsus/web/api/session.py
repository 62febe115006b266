"""``/api/v1/session`` (log in, log out), ``/api/v1/me`` (who am I, my password)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from tarsus.ops import sessions, users
from tarsus.ops.access import Perm
from tarsus.ops.errors import Invalid
from tarsus.web.params import PlatformDep
from tarsus.web.security import SESSION_COOKIE, ActorDep, access, session_id, start_session

router = APIRouter(prefix="/api/v1", tags=["session"])


class Login(BaseModel):
    uid: str
    password: str


class PasswordChange(BaseModel):
    current: str
    new: str


@router.post("/session", status_code=201, **access(None, "public"))
async def log_in(body: Login, request: Request, response: Response, platform: PlatformDep) -> Any:
    """Log in: sets the session cookie; answers the CSRF token to send as X-CSRF-Token."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Invalid("send the login as JSON")  # a form cannot be posted here from elsewhere
    session = await start_session(request, response, platform, body.uid, body.password)
    return {"uid": session.uid, "csrf": session.csrf}


@router.delete("/session", status_code=204, **access(Perm.VIEW, "self"))
async def log_out(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    """Log out: the session ends on the server (the cookie is worthless after)."""
    await sessions.logout(platform, actor, session_id(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", **access(Perm.VIEW, "self"))
async def me(actor: ActorDep) -> Any:
    """Who the credentials are, how they came, and the grants."""
    return {
        "uid": actor.uid,
        "via": actor.via,
        "grants": [{"role": g.role, "flag": g.flag} for g in actor.grants],
        "scopes": sorted(p.value for p in actor.scopes) if actor.scopes is not None else None,
        "target": actor.limit,
    }


@router.put("/me/password", status_code=204, **access(Perm.VIEW, "self"))
async def change_password(body: PasswordChange, actor: ActorDep, platform: PlatformDep) -> Response:
    """Change your password (every session of yours ends; log in again)."""
    await users.change_password(platform, actor, body.current, body.new)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
