"""Alert rules and their events (the alert service ``tars.tarsalarm.AlarmObj``, our
``tarsus.AlertExt``; docs/alerts.md): list, create, edit, delete, test; events.

Who may: a rule watching ``App`` or ``App.Server`` is looked at with ``view`` on it and
changed with ``operate`` on it; a rule watching no application (``node_lost``) is the
platform's, ``admin`` on ``*``. Events are shown with the rules they belong to. Every change
goes to the audit log with the rule before and after. A rule's webhook is a URL the alert
service will POST to: a user who may operate an application can point it anywhere the
framework host reaches (the service refuses non-http(s) URLs and credentials in them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tarsus.codec.constants import ALARM_OBJ
from tarsus.ops import audit
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Conflict, Invalid, NotFound, OpError, UpstreamFailed
from tarsus.ops.framework import calling, proxy
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import TarsusAlert

__all__ = [
    "KINDS",
    "MEANINGS",
    "AlertFilter",
    "create_rule",
    "delete_rule",
    "event_doc",
    "events",
    "rule_doc",
    "rule_struct",
    "rules",
    "test_rule",
    "update_rule",
]

KINDS = ("failure_rate", "timeout_rate", "avg_latency", "property", "server_down", "node_lost")
#: the alert service's return codes (TarsusAlert.tars)
MEANINGS = {
    -1: "refused",
    -2: "no such rule",
    -3: "the alert service is too old for this",
    -4: "a rule of that name exists",
    -5: "the webhook did not take it",
    -6: "the alert service's store failed",
}
_STATUS: dict[int, type[OpError]] = {-1: Invalid, -2: NotFound, -4: Conflict}
#: the fields of a rule document (what the API takes and answers; ``tarsus alert --json``)
RULE_FIELDS = (
    "name",
    "kind",
    "application",
    "server",
    "interface",
    "node",
    "property",
    "policy",
    "comparison",
    "threshold",
    "windows",
    "webhook",
    "enabled",
)


def rule_doc(r: TarsusAlert.AlertRule) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "application": r.application,
        "server": r.serverName,
        "interface": r.interfaceName,
        "node": r.nodeName,
        "property": r.propertyName,
        "policy": r.policy,
        "comparison": r.comparison,
        "threshold": r.threshold,
        "windows": r.windows,
        "webhook": r.webhook,
        "enabled": r.enabled,
    }


def event_doc(e: TarsusAlert.AlertEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": e.time,
        "rule": e.rule,
        "target": e.target,
        "state": e.state,
        "value": e.value,
        "message": e.message,
        "delivery": e.delivery,
        "attempts": e.attempts,
        "last_error": e.lastError,
    }


def rule_struct(doc: dict[str, Any]) -> TarsusAlert.AlertRule:
    """A rule document (:data:`RULE_FIELDS`) as the wire's struct; the service checks what
    the fields mean, this only that they have the right types."""
    unknown = sorted(set(doc) - set(RULE_FIELDS) - {"id"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0][:40]!r}; a rule has {', '.join(RULE_FIELDS)}")

    def text(key: str, default: str = "") -> str:
        value = doc.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > 1024:
            raise Invalid(f"{key} must be text (at most 1024 characters)")
        return value.strip()

    try:
        threshold = float(doc["threshold"] if doc.get("threshold") is not None else 0.0)
        windows = int(doc["windows"] if doc.get("windows") is not None else 1)
    except (TypeError, ValueError):
        raise Invalid("threshold must be a number and windows a whole number") from None
    if not -(2**31) <= windows < 2**31:
        raise Invalid(f"windows {windows}: 1 to 100 or so")
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Invalid("enabled must be true or false")
    return TarsusAlert.AlertRule(
        name=text("name"),
        kind=text("kind"),
        application=text("application"),
        serverName=text("server"),
        interfaceName=text("interface"),
        nodeName=text("node"),
        propertyName=text("property"),
        policy=text("policy"),
        comparison=text("comparison", ">") or ">",
        threshold=threshold,
        windows=windows,
        webhook=text("webhook"),
        enabled=enabled,
    )


def _where(rule: TarsusAlert.AlertRule) -> tuple[str | None, str | None]:
    """What a rule is about, for the access check (None, None: the platform)."""
    return (rule.application or None, (rule.serverName or None) if rule.application else None)


def _require(actor: Actor, perm: Perm, rule: TarsusAlert.AlertRule) -> None:
    app, server = _where(rule)
    actor.require(perm if app is not None else Perm.ADMIN, app, server)


def _can_see(actor: Actor, rule: TarsusAlert.AlertRule) -> bool:
    app, server = _where(rule)
    return actor.can(Perm.VIEW if app is not None else Perm.ADMIN, app, server)


def _service(platform: Platform) -> TarsusAlert.AlertExtProxy:
    return proxy(platform, TarsusAlert.AlertExtProxy, ALARM_OBJ)


def _check(ret: int, doing: str, text: str = "") -> None:
    if ret == 0:
        return
    meaning = MEANINGS.get(ret, f"code {ret}")
    cls = _STATUS.get(ret, UpstreamFailed)
    raise cls(f"{doing}: {meaning}" + (f": {text}" if text else ""))


@dataclass(frozen=True)
class AlertFilter:
    """Rules about one application (and server: with the application's own rules)."""

    application: str = ""
    server: str = ""

    def keeps(self, rule: TarsusAlert.AlertRule) -> bool:
        if self.application and rule.application != self.application:
            return False
        return not self.server or rule.serverName in (self.server, "")


async def _all_rules(platform: Platform) -> list[TarsusAlert.AlertRule]:
    async with calling("the alert service (tars.tarsalarm)"):
        ret, found = await _service(platform).listRules()
    _check(ret, "listing the alert rules")
    return list(found)


async def rules(
    platform: Platform, actor: Actor, query: PageQuery, where: AlertFilter = AlertFilter()
) -> Page[dict[str, Any]]:
    """The rules the actor may see (those ``where`` keeps), whose name, kind, what they
    watch or webhook hold ``query.q``."""
    if where.application:
        actor.require(Perm.VIEW, where.application, where.server or None)
    q = query.q.lower()
    docs = [
        rule_doc(r)
        for r in await _all_rules(platform)
        if where.keeps(r) and _can_see(actor, r)
        if not q
        or any(
            q in str(v).lower()
            for v in (r.name, r.kind, r.application, r.serverName, r.nodeName, r.webhook)
        )
    ]
    return Page.of(docs[query.offset : query.offset + query.size], len(docs), query)


async def events(
    platform: Platform,
    actor: Actor,
    query: PageQuery,
    *,
    rule: str = "",
    where: AlertFilter = AlertFilter(),
) -> Page[dict[str, Any]]:
    """The newest events (firing, resolved, test) of the rules the actor may see (of
    ``rule`` only, if named), newest first; events of deleted rules: admins only."""
    if where.application:
        actor.require(Perm.VIEW, where.application, where.server or None)
    if len(rule) > 128:
        raise Invalid("the rule name is over 128 characters")
    seen = {r.name for r in await _all_rules(platform) if where.keeps(r) and _can_see(actor, r)}
    if not where.application and actor.is_admin:
        seen = None  # type: ignore[assignment]  # everything, deleted rules' events too
    limit = min(1000, query.offset + query.size)
    async with calling("the alert service (tars.tarsalarm)"):
        ret, found = await _service(platform).listEvents(rule, limit)
    _check(ret, "listing the alert events")
    q = query.q.lower()
    docs = [
        event_doc(e)
        for e in found
        if (seen is None or e.rule in seen)
        and (not q or q in f"{e.rule} {e.target} {e.state} {e.message}".lower())
    ]
    return Page.of(docs[query.offset : query.offset + query.size], len(docs), query)


async def _find(platform: Platform, name: str) -> TarsusAlert.AlertRule:
    for r in await _all_rules(platform):
        if r.name == name:
            return r
    raise NotFound(f"no alert rule named {name[:128]!r}")


async def create_rule(platform: Platform, actor: Actor, doc: dict[str, Any]) -> dict[str, Any]:
    """Add a rule (the alert service checks what its fields mean)."""
    rule = rule_struct(doc)
    _require(actor, Perm.OPERATE, rule)
    async with calling("the alert service (tars.tarsalarm)"):
        ret, text = await _service(platform).addRule(rule)
    _check(ret, f"adding alert rule {rule.name[:128]!r}", text)
    rule.id = int(text) if text.isdigit() else 0
    after = rule_doc(rule)
    await audit.record(platform, actor, "alert.create", rule.name, after=after)
    return after


async def update_rule(
    platform: Platform, actor: Actor, name: str, doc: dict[str, Any]
) -> dict[str, Any]:
    """Replace rule ``name`` with ``doc`` (the name stays; its id and firing state too):
    ``operate`` on what it watched and on what it will watch."""
    old = await _find(platform, name)
    _require(actor, Perm.OPERATE, old)
    rule = rule_struct({**doc, "name": name})
    _require(actor, Perm.OPERATE, rule)
    async with calling("the alert service (tars.tarsalarm)"):
        ret, text = await _service(platform).updateRule(rule)
    _check(ret, f"changing alert rule {name[:128]!r}", text)
    rule.id = old.id
    before, after = rule_doc(old), rule_doc(rule)
    await audit.record(platform, actor, "alert.update", name, before=before, after=after)
    return after


async def delete_rule(platform: Platform, actor: Actor, name: str) -> None:
    """Delete rule ``name`` (what it had firing is resolved at the next round)."""
    old = await _find(platform, name)
    _require(actor, Perm.OPERATE, old)
    async with calling("the alert service (tars.tarsalarm)"):
        ret, text = await _service(platform).deleteRule(name)
    _check(ret, f"deleting alert rule {name[:128]!r}", text)
    await audit.record(platform, actor, "alert.delete", name, before=rule_doc(old))


async def test_rule(platform: Platform, actor: Actor, name: str) -> str:
    """POST a test payload to rule ``name``'s webhook now; what the webhook answered."""
    old = await _find(platform, name)
    _require(actor, Perm.OPERATE, old)
    async with calling("the alert service (tars.tarsalarm)"):
        ret, text = await _service(platform).testRule(name)
    await audit.record(platform, actor, "alert.test", name, after={"ret": ret, "result": text})
    _check(ret, f"testing alert rule {name[:128]!r}", text)
    return str(text)
