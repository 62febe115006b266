"""The alert service put together: ``tars.tarsalarm``, servant ``tars.tarsalarm.AlarmObj``.

Tarsus's own framework service (upstream keeps alerting in its paid edition). Once a window it
evaluates every enabled rule (:class:`~tarsus.framework.alarm.evaluator.Evaluator`: stats and
properties through ``MonitorQuery``, states from the store) and records what fires or
resolves in ``t_alert_events``; a delivery loop posts those to the rules' webhooks
(:class:`~tarsus.framework.alarm.webhook.Delivery`). Rules are managed through ``AlertExt``
(TarsusAlert.tars), which ``tarsus alert`` calls. See docs/alerts.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import ALARM_OBJ, ALARM_PORT
from tarsus.framework.alarm.evaluator import Evaluator
from tarsus.framework.alarm.rules import check_rule, rule_struct
from tarsus.framework.alarm.servant import AlarmImp
from tarsus.framework.alarm.settings import AlarmSettings
from tarsus.framework.alarm.sources import MetricSource, StateSource
from tarsus.framework.alarm.webhook import Delivery, payload, post_json
from tarsus.framework.service import FrameworkService, ServiceSpec, host, require_store
from tarsus.protocol.gen import TarsusAlert
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.periodic import Periodic
from tarsus.store.alerts import AlertEventRow
from tarsus.store.errors import NotFound

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["ALARM_SPEC", "AlarmService", "add_alarm"]

#: ``tars.tarsalarm``: our object and port (18893, free among upstream's 18x93 ports).
ALARM_SPEC: Final = ServiceSpec(
    name="tarsalarm",
    servants=((ALARM_OBJ, ALARM_PORT),),
    module="tarsus.framework.alarm",
)


def _event_struct(e: AlertEventRow) -> TarsusAlert.AlertEvent:
    return TarsusAlert.AlertEvent(
        id=e.id,
        rule=e.rule_name,
        target=e.target,
        state=e.state,
        value=e.value if e.value is not None else 0.0,
        message=e.message,
        time=e.event_time.strftime("%Y-%m-%d %H:%M:%S") if e.event_time else "",
        delivery=e.delivery,
        attempts=e.attempts,
        lastError=e.last_error,
    )


class AlarmService(FrameworkService):
    """Alert rules of ``store`` evaluated every window, events posted to webhooks."""

    spec = ALARM_SPEC

    def __init__(
        self,
        store: Store,
        settings: AlarmSettings | None = None,
        *,
        communicator: Communicator | None = None,
        clock: type[datetime] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.settings = settings = settings or AlarmSettings()
        self.communicator = communicator or Communicator()
        self.owns_communicator = communicator is None
        metrics = MetricSource(
            self.communicator,
            settings.querystat_obj,
            settings.queryproperty_obj,
            window_s=settings.window_s,
        )
        self.evaluator = Evaluator(store, metrics, StateSource(store))
        self.delivery = Delivery(store, settings.delivery)
        self.deliver_loop = Periodic(
            "tarsus-alarm-deliver", settings.deliver_every_s, self.delivery.round, run_first=True
        )
        self.loops = [
            Periodic("tarsus-alarm-evaluate", settings.window_s, self.evaluate, fixed_rate=True),
            self.deliver_loop,
        ]

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """``/tars/alarm`` keys (:meth:`AlarmSettings.from_tcconfig`); the query servants are
        found through the config's locator."""
        communicator = Communicator(
            config.client.locator or None,
            timeout_ms=config.client.sync_invoke_timeout,
            security=config.client.objects,  # keys for framework objects with -e 1
        )
        service = cls(
            require_store(cls.spec, store),
            AlarmSettings.from_tcconfig(tc),
            communicator=communicator,
        )
        service.owns_communicator = True
        return service

    def servants(self) -> dict[str, Servant]:
        return {ALARM_OBJ: AlarmImp(self)}

    async def stop(self) -> None:
        await super().stop()
        if self.owns_communicator:
            await self.communicator.close()

    # ------------------------------------------------------------------ the logic

    async def evaluate(self) -> None:
        """One round: every rule judged; new events sent at once."""
        before = set(self.evaluator.firing)
        await self.evaluator.round()
        if set(self.evaluator.firing) != before:
            self.deliver_loop.run_now()

    async def list_rules(self) -> list[TarsusAlert.AlertRule]:
        return [rule_struct(r) for r in await self.store.alerts.rules()]

    async def add_rule(self, rule: TarsusAlert.AlertRule, user: str = "") -> int:
        return (await self.store.alerts.add_rule(check_rule(rule, user=user))).id

    async def update_rule(self, rule: TarsusAlert.AlertRule, user: str = "") -> int:
        """Replace the rule of ``rule.name``; its id stays, so what it has firing stays
        firing (or is resolved at the next round if the new rule no longer breaches)."""
        return (await self.store.alerts.update_rule(check_rule(rule, user=user))).id

    async def delete_rule(self, name: str) -> None:
        """Delete it; what it had firing is resolved at the next round."""
        await self.store.alerts.delete_rule(name[:200])

    async def test_rule(self, name: str) -> str:
        """POST a ``test`` event of rule ``name`` to its webhook now: "" when taken, else why
        not. The event is recorded (delivered or failed; a test is not retried)."""
        rules = {r.name: r for r in await self.store.alerts.rules()}
        rule = rules.get(name)
        if rule is None:
            raise NotFound(f"no alert rule named {name[:128]!r}")
        target = f"{rule.application}.{rule.server_name}".strip(".") or rule.node_name or "*"
        message = f"a test of alert rule {rule.name}"
        event_id = await self.store.alerts.add_event(rule, target, "test", None, message)
        event = next(
            e
            for e in await self.store.alerts.events(rule_name=rule.name, limit=5)
            if e.id == event_id
        )
        error = await post_json(
            rule.webhook, payload(event, rule), self.settings.delivery.timeout_s
        )
        if error:
            await self.store.alerts.gave_up(event_id, 1, error)
        else:
            await self.store.alerts.delivered(event_id, 1)
        return error

    async def list_events(self, rule: str, limit: int) -> list[TarsusAlert.AlertEvent]:
        return [
            _event_struct(e) for e in await self.store.alerts.events(rule_name=rule, limit=limit)
        ]


def add_alarm(
    app: Application,
    store: Store,
    settings: AlarmSettings | None = None,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {ALARM_PORT} -t 60000",
    communicator: Communicator | None = None,
) -> AlarmService:
    """Serve ``tars.tarsalarm.AlarmObj`` on ``endpoint`` in ``app``."""
    return host(
        app, AlarmService(store, settings, communicator=communicator), {ALARM_OBJ: endpoint}
    )
