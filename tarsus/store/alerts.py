"""``t_alert_rules`` and ``t_alert_events``: alert rules and what they raised (Tarsus's own).

The alert service (:mod:`tarsus.framework.alarm`) checks a rule before it reaches here; this
repository keeps rows within their columns and knows nothing of what a rule means. An event
row is one notification (``firing``, ``resolved`` or ``test``) with its webhook delivery
state: ``pending`` (to send at ``next_attempt``), ``sent`` or ``failed`` (gave up).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.schema import t_alert_events, t_alert_rules

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["AlertEventRow", "AlertRuleRow", "Alerts"]


@dataclass(frozen=True, slots=True)
class AlertRuleRow:
    """One rule as stored (``id`` 0 before it is)."""

    name: str
    kind: str
    webhook: str
    application: str = ""
    server_name: str = ""
    interface_name: str = ""
    node_name: str = ""
    property_name: str = ""
    policy: str = ""
    comparison: str = ">"
    threshold: float = 0.0
    windows: int = 1
    enabled: bool = True
    id: int = 0
    posttime: datetime | None = None
    lastuser: str = ""


@dataclass(frozen=True, slots=True)
class AlertEventRow:
    """One notification of a rule about a target."""

    id: int
    rule_id: int
    rule_name: str
    target: str
    state: str
    value: float | None
    threshold: float | None
    message: str
    event_time: datetime | None
    webhook: str
    delivery: str
    attempts: int
    next_attempt: datetime | None
    last_error: str


_RULE_FIELDS = tuple(f.name for f in fields(AlertRuleRow))
_EVENT_FIELDS = tuple(f.name for f in fields(AlertEventRow))


def _rule(row: Any) -> AlertRuleRow:
    values = {name: getattr(row, name) for name in _RULE_FIELDS}
    values["enabled"] = bool(values["enabled"])
    values["threshold"] = float(values["threshold"])
    for name in ("application", "server_name", "interface_name", "node_name", "property_name"):
        values[name] = values[name] or ""
    values["policy"] = values["policy"] or ""
    values["lastuser"] = values["lastuser"] or ""
    return AlertRuleRow(**values)


def _event(row: Any) -> AlertEventRow:
    values = {name: getattr(row, name) for name in _EVENT_FIELDS}
    for name in ("rule_name", "target", "message", "webhook", "delivery", "last_error"):
        values[name] = values[name] or ""
    return AlertEventRow(**values)


def _fits(rule: AlertRuleRow) -> None:
    for column in t_alert_rules.columns:
        value = getattr(rule, column.name, None)
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length is not None and len(value) > length:
            raise InvalidInput(f"alert rule {column.name} is over {length} characters")


class Alerts:
    """Alert rules and events."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # ------------------------------------------------------------------ rules

    async def add_rule(self, rule: AlertRuleRow) -> AlertRuleRow:
        """Store a new rule; :class:`Conflict` when one of that name exists."""
        _fits(rule)
        values = {name: getattr(rule, name) for name in _RULE_FIELDS if name != "id"}
        values["enabled"] = int(rule.enabled)
        values["posttime"] = self._store.clock()
        try:
            async with self._store.begin() as conn:
                result = await conn.execute(insert(t_alert_rules).values(**values))
                new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError:
            raise Conflict(f"an alert rule named {rule.name!r} exists") from None
        return await self.rule(new_id)

    async def rule(self, rule_id: int) -> AlertRuleRow:
        async with self._store.connect() as conn:
            row = (
                await conn.execute(select(t_alert_rules).where(t_alert_rules.c.id == rule_id))
            ).first()
        if row is None:
            raise NotFound(f"no alert rule {rule_id}")
        return _rule(row)

    async def rules(self, *, enabled_only: bool = False) -> list[AlertRuleRow]:
        query = select(t_alert_rules).order_by(t_alert_rules.c.id)
        if enabled_only:
            query = query.where(t_alert_rules.c.enabled != 0)
        async with self._store.connect() as conn:
            return [_rule(r) for r in await conn.execute(query)]

    async def update_rule(self, rule: AlertRuleRow) -> AlertRuleRow:
        """Replace the stored rule named ``rule.name`` (keeping its id); :class:`NotFound`."""
        _fits(rule)
        values = {name: getattr(rule, name) for name in _RULE_FIELDS if name not in ("id", "name")}
        values["enabled"] = int(rule.enabled)
        values["posttime"] = self._store.clock()
        c = t_alert_rules.c
        async with self._store.begin() as conn:
            row = (await conn.execute(select(c.id).where(c.name == rule.name))).first()
            if row is None:
                raise NotFound(f"no alert rule named {rule.name[:128]!r}")
            await conn.execute(update(t_alert_rules).where(c.id == row.id).values(**values))
        return await self.rule(int(row.id))

    async def delete_rule(self, name: str) -> AlertRuleRow:
        """Delete the rule named ``name`` (its events are kept, as history)."""
        async with self._store.begin() as conn:
            row = (
                await conn.execute(select(t_alert_rules).where(t_alert_rules.c.name == name))
            ).first()
            if row is None:
                raise NotFound(f"no alert rule named {name[:128]!r}")
            await conn.execute(delete(t_alert_rules).where(t_alert_rules.c.id == row.id))
        return _rule(row)

    # ------------------------------------------------------------------ events

    async def add_event(
        self,
        rule: AlertRuleRow,
        target: str,
        state: str,
        value: float | None,
        message: str,
    ) -> int:
        """Record a notification, pending delivery now; returns its id."""
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                insert(t_alert_events).values(
                    rule_id=rule.id,
                    rule_name=rule.name,
                    target=target[:256],
                    state=state,
                    value=value,
                    threshold=rule.threshold,
                    message=message,
                    event_time=now,
                    webhook=rule.webhook,
                    delivery="pending",
                    attempts=0,
                    next_attempt=now,
                    last_error="",
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def events(
        self, *, rule_name: str = "", limit: int = 100, delivery: str = ""
    ) -> list[AlertEventRow]:
        """The newest ``limit`` events (of a rule, in a delivery state), newest first."""
        query = select(t_alert_events).order_by(t_alert_events.c.id.desc()).limit(limit)
        if rule_name:
            query = query.where(t_alert_events.c.rule_name == rule_name)
        if delivery:
            query = query.where(t_alert_events.c.delivery == delivery)
        async with self._store.connect() as conn:
            return [_event(r) for r in await conn.execute(query)]

    async def firing(self) -> dict[tuple[int, str], AlertEventRow]:
        """``(rule id, target) -> its firing event`` for every pair whose latest
        firing/resolved event is a firing one: what is firing now."""
        latest = (
            select(func.max(t_alert_events.c.id))
            .where(t_alert_events.c.state.in_(("firing", "resolved")))
            .group_by(t_alert_events.c.rule_id, t_alert_events.c.target)
        )
        query = select(t_alert_events).where(
            t_alert_events.c.id.in_(latest), t_alert_events.c.state == "firing"
        )
        async with self._store.connect() as conn:
            return {(r.rule_id, r.target): _event(r) for r in await conn.execute(query)}

    async def due(self, limit: int) -> list[AlertEventRow]:
        """Up to ``limit`` pending events whose next attempt is due, oldest first."""
        query = (
            select(t_alert_events)
            .where(
                t_alert_events.c.delivery == "pending",
                t_alert_events.c.next_attempt <= self._store.clock(),
            )
            .order_by(t_alert_events.c.id)
            .limit(limit)
        )
        async with self._store.connect() as conn:
            return [_event(r) for r in await conn.execute(query)]

    async def delivered(self, event_id: int, attempts: int) -> None:
        await self._set_delivery(event_id, delivery="sent", attempts=attempts, last_error="")

    async def retry_at(self, event_id: int, attempts: int, when: datetime, error: str) -> None:
        await self._set_delivery(
            event_id, delivery="pending", attempts=attempts, next_attempt=when, last_error=error
        )

    async def gave_up(self, event_id: int, attempts: int, error: str) -> None:
        await self._set_delivery(event_id, delivery="failed", attempts=attempts, last_error=error)

    async def _set_delivery(self, event_id: int, **values: Any) -> None:
        if "last_error" in values:
            values["last_error"] = values["last_error"][:255]
        async with self._store.begin() as conn:
            await conn.execute(
                update(t_alert_events).where(t_alert_events.c.id == event_id).values(**values)
            )

    async def drop_pending_over(self, keep: int) -> int:
        """Mark pending events beyond the newest ``keep`` as failed (a webhook down for long
        must not make the backlog grow without end); returns how many."""
        async with self._store.begin() as conn:
            ids = [
                r.id
                for r in await conn.execute(
                    select(t_alert_events.c.id)
                    .where(t_alert_events.c.delivery == "pending")
                    .order_by(t_alert_events.c.id.desc())
                    .offset(keep)
                )
            ]
            if ids:
                await conn.execute(
                    update(t_alert_events)
                    .where(t_alert_events.c.id.in_(ids))
                    .values(delivery="failed", last_error="dropped: too many pending")
                )
        return len(ids)
