"""Who is calling, and whether they may: the web faces' end of :mod:`tarsus.ops.access`.

Every route declares its access with :func:`access` — the permission and how its target is
found — which both enforces it (before the handler runs, before a body is validated) and
records it in the route's OpenAPI entry as ``x-tarsus-access``, where the route-walking test
(tests/web/test_console_access.py) and the API docs read it. The operations check again
themselves (so the CLI and the script API obey the same rules).

Credentials, in this order: an API token (``Authorization: Bearer``, or upstream's
``?ticket=``; also the script token file of docs/web.md, as upload+publish on ``*``), then the
console session cookie (signed with the host's secret, HttpOnly, SameSite=Lax). A session's
mutating request (any method but GET/HEAD/OPTIONS) must carry its CSRF token, as header
``X-CSRF-Token`` (htmx sends it on every request) or form field ``csrf_token``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, Signer

from tarsus.ops.access import EVERYTHING, Actor, Grant, Perm
from tarsus.ops.errors import Denied, Unauthenticated
from tarsus.ops.platform import Platform
from tarsus.ops.sessions import (
    SESSION_HOURS,
    LoginThrottle,
    Session,
    actor_for_session,
    actor_for_token,
    login,
)
from tarsus.web.token import TokenError, TokenFile

__all__ = [
    "ACCESS_KEY",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Access",
    "ActorDep",
    "access",
    "current_actor",
    "session_id",
    "start_session",
    "wants_json",
]

log = logging.getLogger("tarsus.web.security")

SESSION_COOKIE = "tarsus_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
ACCESS_KEY = "x-tarsus-access"
#: paths answered in JSON / plain text (upstream's script prefix too), not pages
API_PREFIXES = ("/api/", "/pages/server/api/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: who the script token file (docs/web.md) acts as
SCRIPT_TOKEN_USER = "web-token"
SCRIPT_TOKEN_GRANTS = (Grant("upload", EVERYTHING), Grant("publish", EVERYTHING))

#: how a route finds what it acts on:
#: ``public`` no login; ``self`` any logged-in user (their own session, password, tokens);
#: ``any`` the permission somewhere (a list shows what the grants cover);
#: ``global`` the permission on ``*``; ``app`` on the path's ``{app}`` (and ``{server}``);
#: ``form`` checked by the handler once the request's form names the server (script API).
Target = Literal["public", "self", "any", "global", "app", "form"]


def wants_json(request: Request) -> bool:
    """API paths answer JSON (401); page paths redirect to the login page."""
    return request.url.path.startswith(API_PREFIXES)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _bearer(request: Request) -> str:
    ticket = request.query_params.get("ticket", "")
    header = request.headers.get("authorization", "")
    if not ticket and header[:7].lower() == "bearer ":
        ticket = header[7:].strip()
    return ticket


async def current_actor(request: Request) -> Actor:
    """The actor of the request (cached on it), or :class:`Unauthenticated`."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    platform: Platform = request.app.state.platform
    client = _client(request)
    ticket = _bearer(request)
    actor: Actor | None = None
    if ticket:
        script: TokenFile = request.app.state.script_token
        try:
            is_script = script.matches(ticket)
        except TokenError as e:
            log.error("%s", e)
            is_script = False
        if is_script:
            actor = Actor(SCRIPT_TOKEN_USER, "script-token", SCRIPT_TOKEN_GRANTS, client=client)
        else:
            actor = await actor_for_token(platform, ticket, client)
    else:
        sid = session_id(request)
        if sid:
            actor = await actor_for_session(platform, sid, client)
        if actor is None:
            raise Unauthenticated("log in first (or send an API token)")
    request.state.actor = actor
    return actor


#: the largest form whose CSRF field is read from the body (an upload sends the header)
MAX_CSRF_FORM_BYTES = 1024 * 1024
MAX_CSRF_FORM_FIELDS = 1000


async def _check_csrf(request: Request, actor: Actor) -> None:
    if actor.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    content_type = request.headers.get("content-type", "")
    if not sent and "form" in content_type:
        # The token from the form field, read before anything checked who sent it: so a
        # bounded read — no file part (an upload sends the header) and a small body.
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_CSRF_FORM_BYTES:
            raise Denied("send the CSRF token in the X-CSRF-Token header with this request")
        form = await request.form(max_files=0, max_fields=MAX_CSRF_FORM_FIELDS)
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent.encode(), actor.csrf.encode()):
        raise Denied("the request's CSRF token is missing or wrong: reload the page")


ActorDep = Annotated[Actor, Depends(current_actor)]


class Access(dict[str, Any]):
    """``@router.get(path, **access(...))``: the keyword arguments a route takes."""


def access(perm: Perm | None, target: Target) -> Access:
    """A route's declared access, enforced before its handler: see the module docstring."""
    if (perm is None) != (target == "public"):
        raise ValueError("a public route has no permission, and every other route has one")
    declared = {"perm": perm.value if perm else None, "target": target}

    async def guard(request: Request) -> None:
        if target == "public":
            return
        actor = await current_actor(request)
        await _check_csrf(request, actor)
        if perm is None or target in ("self", "form"):
            return
        if target == "any":
            if not actor.can_somewhere(perm):
                raise Denied(f"{actor.uid} may not {perm.value} anything")
        elif target == "global":
            actor.require(perm)
        else:  # app
            params = request.path_params
            actor.require(perm, params["app"], params.get("server"))

    check: Callable[[Request], Awaitable[None]] = guard
    return Access(dependencies=[Depends(check)], openapi_extra={ACCESS_KEY: declared})


def make_signer(secret: str) -> Signer:
    return Signer(secret, salt="tarsus.session")


def session_id(request: Request) -> str:
    """The session id in the request's (signed) cookie, "" if none or forged."""
    signer: Signer = request.app.state.signer
    try:
        return signer.unsign(request.cookies.get(SESSION_COOKIE, "")).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return ""


async def start_session(
    request: Request, response: Response, platform: Platform, uid: str, password: str
) -> Session:
    """Log in (rate-limited) and set the session cookie on ``response``."""
    throttle: LoginThrottle = request.app.state.login_throttle
    session = await login(platform, throttle, uid, password, _client(request))
    signer: Signer = request.app.state.signer
    response.set_cookie(
        SESSION_COOKIE,
        signer.sign(session.sid).decode("ascii"),
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return session
