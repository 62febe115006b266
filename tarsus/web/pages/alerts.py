"""``/monitor/{app}/{server}/alerts``: the alert rules watching a server (or its whole
application), their events, and forms to add, edit, test and delete rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import alerts
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import OpError
from tarsus.ops.paging import PageQuery
from tarsus.ops.platform import Platform
from tarsus.web.params import PlatformDep
from tarsus.web.render import render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

#: the kinds a server's page offers (``node_lost`` watches nodes: the API, admins)
SERVER_KINDS = tuple(k for k in alerts.KINDS if k != "node_lost")


#: what the "new rule" form starts with
_BLANK: dict[str, Any] = {
    "name": "",
    "kind": "failure_rate",
    "server": "-",
    "interface": "",
    "property": "",
    "policy": "",
    "node": "",
    "comparison": ">",
    "threshold": 5,
    "windows": 1,
    "webhook": "",
    "enabled": True,
}


def _f(form: Any, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def _rule_from_form(form: Any, app: str, server: str) -> dict[str, Any]:
    whole_app = _f(form, "scope") == "application"
    try:
        threshold = float(_f(form, "threshold", "0") or 0)
        windows = int(_f(form, "windows", "1") or 1)
    except ValueError:
        threshold, windows = float("nan"), 0  # the service names what is wrong
    return {
        "name": _f(form, "name"),
        "kind": _f(form, "kind"),
        "application": app,
        "server": "" if whole_app else server,
        "interface": _f(form, "interface"),
        "node": _f(form, "node"),
        "property": _f(form, "property"),
        "policy": _f(form, "policy"),
        "comparison": "<" if _f(form, "comparison") == "<" else ">",
        "threshold": threshold,
        "windows": windows,
        "webhook": _f(form, "webhook"),
        "enabled": _f(form, "enabled") == "1",
    }


async def _page(
    request: Request,
    actor: Actor,
    platform: Platform,
    app: str,
    server: str,
    *,
    error: str = "",
    editing: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    where = alerts.AlertFilter(app, server)
    found = await alerts.rules(platform, actor, PageQuery(size=500), where)
    happened = await alerts.events(platform, actor, PageQuery(size=100), where=where)
    return render(
        request,
        "alerts/index.html",
        actor=actor,
        app=app,
        server=server,
        tab="alerts",
        rules=found,
        events=happened,
        kinds=SERVER_KINDS,
        error=error,
        editing=editing,
        form_rule=editing or _BLANK,
        may_operate=actor.can(Perm.OPERATE, app, server),
        status=status,
    )


def _back(app: str, server: str) -> Response:
    return RedirectResponse(f"/monitor/{quote(app)}/{quote(server)}/alerts", status_code=303)


@router.get(
    "/monitor/{app}/{server}/alerts", response_class=HTMLResponse, **access(Perm.VIEW, "app")
)
async def alerts_page(
    request: Request, app: str, server: str, actor: ActorDep, platform: PlatformDep, edit: str = ""
) -> Response:
    editing = None
    if edit:
        found = await alerts.rules(
            platform, actor, PageQuery(size=500), alerts.AlertFilter(app, server)
        )
        editing = next((r for r in found.items if r["name"] == edit), None)
    return await _page(request, actor, platform, app, server, editing=editing)


async def _do(
    request: Request, actor: Actor, platform: Platform, app: str, server: str, action: Any
) -> Response:
    """Run ``action``; back to the page, or the page with what was refused."""
    try:
        await action
    except OpError as e:
        if e.status in (401, 403):
            raise
        return await _page(request, actor, platform, app, server, error=e.message, status=e.status)
    return _back(app, server)


@router.post("/monitor/{app}/{server}/alerts", **access(Perm.OPERATE, "app"))
async def create_rule(
    request: Request, app: str, server: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    doc = _rule_from_form(await request.form(), app, server)
    return await _do(
        request, actor, platform, app, server, alerts.create_rule(platform, actor, doc)
    )


@router.post("/monitor/{app}/{server}/alerts/{rule}", **access(Perm.OPERATE, "app"))
async def update_rule(
    request: Request, app: str, server: str, rule: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    doc = _rule_from_form(await request.form(), app, server)
    doc.pop("name")
    return await _do(
        request, actor, platform, app, server, alerts.update_rule(platform, actor, rule, doc)
    )


@router.post("/monitor/{app}/{server}/alerts/{rule}/delete", **access(Perm.OPERATE, "app"))
async def delete_rule(
    request: Request, app: str, server: str, rule: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    return await _do(
        request, actor, platform, app, server, alerts.delete_rule(platform, actor, rule)
    )


@router.post("/monitor/{app}/{server}/alerts/{rule}/test", **access(Perm.OPERATE, "app"))
async def test_rule(
    request: Request, app: str, server: str, rule: str, actor: ActorDep, platform: PlatformDep
) -> Response:
    return await _do(request, actor, platform, app, server, alerts.test_rule(platform, actor, rule))
