"""Login, logout, password change, the API docs page, and ``/`` (to the service list)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import sessions, users
from tarsus.ops.access import Perm
from tarsus.ops.errors import Invalid, Unauthenticated
from tarsus.web.i18n import catalog
from tarsus.web.params import PlatformDep
from tarsus.web.render import render
from tarsus.web.security import (
    ACCESS_KEY,
    CSRF_FIELD,
    SESSION_COOKIE,
    ActorDep,
    access,
    session_id,
    start_session,
)

router = APIRouter(include_in_schema=False)

#: the login form's CSRF token travels in this cookie too (double submit: no session yet)
LOGIN_COOKIE = "tarsus_login"


def _safe_next(value: str) -> str:
    """Only a path on this site (no ``//host`` or scheme): an open redirect is refused."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:512]
    return "/"


def _form_str(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


@router.get("/", **access(Perm.VIEW, "self"))
async def home(actor: ActorDep) -> Response:
    return RedirectResponse("/services", status_code=303)


@router.get("/login", response_class=HTMLResponse, **access(None, "public"))
async def login_page(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "session/login.html", login_csrf=token, next=_safe_next(next), uid="", error=""
    )
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/login", response_class=HTMLResponse, **access(None, "public"))
async def login(request: Request, platform: PlatformDep) -> Response:
    form = await request.form()
    uid, password = _form_str(form, "uid").strip(), _form_str(form, "password")
    nxt = _safe_next(_form_str(form, "next"))
    sent, expected = _form_str(form, CSRF_FIELD), request.cookies.get(LOGIN_COOKIE, "")
    words = catalog(request.headers.get("accept-language", ""), request.cookies.get("lang", ""))
    token = secrets.token_urlsafe(24)

    def again(error: str, status: int) -> Response:
        page = render(
            request,
            "session/login.html",
            status=status,
            login_csrf=token,
            next=nxt,
            uid=uid[:64],
            error=error,
        )
        page.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
        return page

    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return again("the form's CSRF token is missing or wrong: reload the page", 403)
    response = RedirectResponse(nxt, status_code=303)
    try:
        await start_session(request, response, platform, uid, password)
    except Unauthenticated:
        return again(words.text("session.failed"), 401)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout", **access(Perm.VIEW, "self"))
async def logout(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    await sessions.logout(platform, actor, session_id(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/password", response_class=HTMLResponse, **access(Perm.VIEW, "self"))
async def password_page(request: Request, actor: ActorDep) -> Response:
    return render(request, "session/password.html", actor=actor, error="")


@router.post("/password", response_class=HTMLResponse, **access(Perm.VIEW, "self"))
async def password(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    form = await request.form()
    new = _form_str(form, "new")
    words = catalog(request.headers.get("accept-language", ""), request.cookies.get("lang", ""))
    try:
        if new != _form_str(form, "again"):
            raise Invalid(words.text("session.mismatch"))
        await users.change_password(platform, actor, _form_str(form, "current"), new)
    except Invalid as e:
        return render(request, "session/password.html", actor=actor, status=400, error=e.message)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/docs", response_class=HTMLResponse, **access(None, "public"))
async def docs(request: Request) -> Response:
    """Every operation of the OpenAPI document, with what it needs (no outside host)."""
    spec = request.app.openapi()
    operations = []
    for path, methods in sorted(spec.get("paths", {}).items()):
        for method, op in methods.items():
            declared = op.get(ACCESS_KEY, {})
            needs = declared.get("perm") or "none"
            if declared.get("target") not in (None, "public"):
                needs = f"{needs} ({declared['target']})"
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": (op.get("description") or op.get("summary") or "").split("\n")[0],
                    "access": needs,
                }
            )
    actor = None
    if session_id(request):
        try:
            from tarsus.web.security import current_actor

            actor = await current_actor(request)
        except Unauthenticated:
            actor = None
    return render(request, "docs.html", actor=actor, operations=operations)
