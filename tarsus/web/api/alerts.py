"""``/api/v1/alerts/...`` and ``/api/v1/servers/{app}/{server}/alerts/...``: alert rules and
their events (docs/console.md, "Alerts"; docs/alerts.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from tarsus.ops import alerts
from tarsus.ops.access import Perm
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class AlertRuleBody(BaseModel):
    """A rule (docs/alerts.md): ``kind`` is ``failure_rate``, ``timeout_rate``,
    ``avg_latency``, ``property``, ``server_down`` or ``node_lost``."""

    name: str = ""
    kind: str
    webhook: str
    application: str = ""
    server: str = ""
    interface: str = ""
    node: str = ""
    property: str = ""
    policy: str = ""
    comparison: str = ">"
    threshold: float = 0.0
    windows: int = 1
    enabled: bool = True


@router.get("/alerts/rules", **access(Perm.VIEW, "global"))
async def list_rules(actor: ActorDep, platform: PlatformDep, page: PageDep) -> Any:
    """Every rule (``q``: in its name, kind, target or webhook)."""
    return page_json(await alerts.rules(platform, actor, page))


@router.get("/alerts/events", **access(Perm.VIEW, "global"))
async def list_events(actor: ActorDep, platform: PlatformDep, page: PageDep, rule: str = "") -> Any:
    """The newest events (of ``rule``), newest first (the service keeps the last 1000)."""
    return page_json(await alerts.events(platform, actor, page, rule=rule))


@router.get("/servers/{app}/{server}/alerts/rules", **access(Perm.VIEW, "app"))
async def server_rules(
    app: str, server: str, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Any:
    """The rules watching the server (and its whole application)."""
    where = alerts.AlertFilter(app, server)
    return page_json(await alerts.rules(platform, actor, page, where))


@router.get("/servers/{app}/{server}/alerts/events", **access(Perm.VIEW, "app"))
async def server_events(
    app: str, server: str, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Any:
    """The events of those rules, newest first."""
    where = alerts.AlertFilter(app, server)
    return page_json(await alerts.events(platform, actor, page, where=where))


@router.post("/alerts/rules", status_code=201, **access(Perm.OPERATE, "any"))
async def create_rule(body: AlertRuleBody, actor: ActorDep, platform: PlatformDep) -> Any:
    """Add a rule: ``operate`` on what it watches (``admin`` for node rules)."""
    return await alerts.create_rule(platform, actor, body.model_dump())


@router.put("/alerts/rules/{rule}", **access(Perm.OPERATE, "any"))
async def update_rule(
    rule: str, body: AlertRuleBody, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Replace a rule (its name stays): ``operate`` on what it watched and will watch."""
    return await alerts.update_rule(platform, actor, rule, body.model_dump(exclude={"name"}))


@router.delete("/alerts/rules/{rule}", status_code=204, **access(Perm.OPERATE, "any"))
async def delete_rule(rule: str, actor: ActorDep, platform: PlatformDep) -> Response:
    await alerts.delete_rule(platform, actor, rule)
    return Response(status_code=204)


@router.post("/alerts/rules/{rule}/test", **access(Perm.OPERATE, "any"))
async def test_rule(rule: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """POST a test payload to the rule's webhook now."""
    return {"result": await alerts.test_rule(platform, actor, rule)}
