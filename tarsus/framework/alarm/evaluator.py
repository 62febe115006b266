"""One evaluation round: every enabled rule's value, and the firing / resolving it causes.

What is firing is the store's (the latest firing/resolved event of each rule and target,
:meth:`~tarsus.store.alerts.Alerts.firing`), loaded at start, so a restarted service neither
fires twice nor forgets to resolve. A rule whose values cannot be read this round (the query
servant down) changes nothing: no alert fires or resolves on missing data.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import TYPE_CHECKING

from tarsus.framework.alarm.rules import STAT_KINDS, breaches
from tarsus.framework.alarm.sources import MetricSource, QueryFailed, StateSource, stat_target
from tarsus.store.alerts import AlertEventRow, AlertRuleRow
from tarsus.store.errors import StoreError

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["Evaluator"]

log = logging.getLogger("tarsus.framework.alarm")

_UNITS = {"failure_rate": "%", "timeout_rate": "%", "avg_latency": " ms"}

Key = tuple[int, str]


def _describe(rule: AlertRuleRow, target: str, value: float | None, state: str) -> str:
    if rule.kind == "server_down":
        return f"{target} is {'not running' if state == 'firing' else 'running again'}"
    if rule.kind == "node_lost":
        return f"node {target} {'is lost (no heartbeat)' if state == 'firing' else 'is back'}"
    shown = "no data" if value is None or math.isnan(value) else f"{value:.2f}"
    what = rule.property_name if rule.kind == "property" else rule.kind.replace("_", " ")
    unit = _UNITS.get(rule.kind, "")
    if state == "firing":
        return (
            f"{what} of {target} is {shown}{unit}, {rule.comparison} {rule.threshold:g}{unit} "
            f"for {rule.windows} window(s)"
        )
    return f"{what} of {target} is back: {shown}{unit}"


class Evaluator:
    """Evaluates the rules of ``store`` with values from ``metrics`` and ``states``."""

    def __init__(self, store: Store, metrics: MetricSource, states: StateSource) -> None:
        self.store, self.metrics, self.states = store, metrics, states
        self.firing: dict[Key, AlertEventRow] = {}
        #: recent values of each state target (server_down, node_lost), newest last
        self._history: dict[Key, deque[float]] = {}
        self._loaded = False
        #: rounds in which a rule's values could not be read
        self.query_failures = 0

    async def round(self) -> None:
        if not self._loaded:
            self.firing = await self.store.alerts.firing()
            self._loaded = True
        rules = await self.store.alerts.rules(enabled_only=True)
        for rule in rules:
            try:
                await self._rule(rule)
            except (QueryFailed, StoreError) as e:
                self.query_failures += 1
                log.warning("alert rule %s: cannot read its values: %s", rule.name, e)
        live = {r.id for r in rules}
        for key, event in list(self.firing.items()):
            if key[0] not in live:  # rule deleted or disabled while firing
                stub = AlertRuleRow(
                    name=event.rule_name,
                    kind="",
                    webhook=event.webhook,
                    threshold=event.threshold or 0.0,
                    id=event.rule_id,
                )
                await self._record(
                    stub, key[1], "resolved", None, "the rule was removed or disabled"
                )
        live_keys = {k for k in self._history if k[0] in live}
        self._history = {k: v for k, v in self._history.items() if k in live_keys}

    async def _rule(self, rule: AlertRuleRow) -> None:
        if rule.kind in (*STAT_KINDS, "property"):
            windows = await self.metrics.windows(rule)
            target = stat_target(rule)
            last = windows[-1].value if windows else None
            recent = [w.value for w in windows[-rule.windows :]]
            fire = len(recent) >= rule.windows and all(breaches(rule, v) for v in recent)
            clear = last is None or not breaches(rule, last)
            await self._judge(rule, target, last, fire, clear)
            return
        values = await self.states.values(rule)
        for target, value in values.items():
            history = self._history.setdefault((rule.id, target), deque(maxlen=rule.windows))
            if history.maxlen != rule.windows:
                history = self._history[(rule.id, target)] = deque(history, maxlen=rule.windows)
            history.append(value)
            fire = len(history) >= rule.windows and all(v > 0 for v in history)
            await self._judge(rule, target, value, fire, value == 0)
        for key in [k for k in self.firing if k[0] == rule.id and k[1] not in values]:
            # the instance or node is gone (undeployed, deleted): nothing to watch any more
            await self._record(rule, key[1], "resolved", None, f"{key[1]} is no longer deployed")

    async def _judge(
        self, rule: AlertRuleRow, target: str, value: float | None, fire: bool, clear: bool
    ) -> None:
        key = (rule.id, target)
        if key not in self.firing and fire:
            await self._record(
                rule, target, "firing", value, _describe(rule, target, value, "firing")
            )
        elif key in self.firing and clear and not fire:
            await self._record(
                rule, target, "resolved", value, _describe(rule, target, value, "resolved")
            )

    async def _record(
        self, rule: AlertRuleRow, target: str, state: str, value: float | None, message: str
    ) -> None:
        stored = None if value is None or math.isnan(value) else value
        event_id = await self.store.alerts.add_event(rule, target, state, stored, message)
        key = (rule.id, target)
        if state == "firing":
            self.firing[key] = AlertEventRow(
                id=event_id,
                rule_id=rule.id,
                rule_name=rule.name,
                target=target,
                state=state,
                value=stored,
                threshold=rule.threshold,
                message=message,
                event_time=None,
                webhook=rule.webhook,
                delivery="pending",
                attempts=0,
                next_attempt=None,
                last_error="",
            )
        else:
            self.firing.pop(key, None)
        log.warning("alert %s %s: %s", rule.name, state, message)
