"""Where a rule's values come from: MonitorQuery for stats and properties, the store for states.

Stats and properties are read the way upstream's web reads them (TarsWeb
``MonitorStatService.js``): ``MonitorQuery.query`` on ``tars.tarsquerystat.QueryObj`` /
``tars.tarsqueryproperty.QueryObj`` with ``groupby=[f_tflag]`` over the last windows, one sum
per window. States are ``t_server_conf.present_state`` against ``setting_state`` and
``t_node_info.present_state``, as the registries keep them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from tarsus.protocol.gen import MonitorQuery
from tarsus.rpc.errors import TarsError
from tarsus.store.alerts import AlertRuleRow

if TYPE_CHECKING:
    from tarsus.rpc.communicator import Communicator
    from tarsus.store.engine import Store

__all__ = ["MetricSource", "QueryFailed", "StateSource", "stat_value"]

#: The sums each stat window is read as (upstream web's ``indexs``).
STAT_INDEXES: Final = ["succ_count", "timeout_count", "exce_count", "total_time"]


class QueryFailed(Exception):
    """MonitorQuery could not answer (unreachable, or ``ret`` != 0)."""


def stat_value(kind: str, succ: float, timeout: float, exce: float, total_time: float) -> float:
    """A window's value for a stat rule; ``nan`` when the window has no calls to judge."""
    calls = succ + timeout + exce
    if kind == "failure_rate":
        return 100.0 * exce / calls if calls > 0 else float("nan")
    if kind == "timeout_rate":
        return 100.0 * timeout / calls if calls > 0 else float("nan")
    if kind == "avg_latency":
        return total_time / succ if succ > 0 else float("nan")
    raise ValueError(f"not a stat kind: {kind}")


@dataclass(frozen=True, slots=True)
class Window:
    """One window's value: ``when`` is ``YYYYMMDDHHMM`` (its f_date + f_tflag)."""

    when: str
    value: float


def stat_target(rule: AlertRuleRow) -> str:
    base = f"{rule.application}.{rule.server_name}"
    if rule.kind == "property":
        return f"{base}.{rule.property_name}"
    return f"{base}.{rule.interface_name}" if rule.interface_name else base


class MetricSource:
    """The last windows of a stat or property rule, from the two query servants."""

    def __init__(
        self,
        communicator: Communicator,
        stat_obj: str,
        property_obj: str,
        *,
        window_s: float,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.communicator = communicator
        self.objects = {"tars_stat": stat_obj, "tars_property": property_obj}
        self.window_s = window_s
        self.clock = clock

    def _proxy(self, dataid: str) -> MonitorQuery.MonitorQueryProxy:
        """The query servant of ``dataid``, made when first needed (a bare name needs the
        locator: without one, each query fails and says so, the service keeps running)."""
        try:
            return self.communicator.string_to_proxy(
                MonitorQuery.MonitorQueryProxy, self.objects[dataid]
            )
        except TarsError as e:
            raise QueryFailed(f"{self.objects[dataid]}: {e}") from None

    async def windows(self, rule: AlertRuleRow) -> list[Window]:
        """The values of the windows with data among the last ``rule.windows + 2`` (the
        query servants write a window after it ends), oldest first; ``nan`` values (no
        calls) left out."""
        now = self.clock()
        start = now - timedelta(seconds=self.window_s * (rule.windows + 2))
        out: list[Window] = []
        day = start.date()
        while day <= now.date():
            first = start if day == start.date() else datetime.combine(day, datetime.min.time())
            last = now if day == now.date() else datetime.combine(day, datetime.max.time())
            out.extend(await self._day(rule, day.strftime("%Y%m%d"), first, last))
            day += timedelta(days=1)
        return [w for w in sorted(out, key=lambda w: w.when) if w.value == w.value]

    async def _day(
        self, rule: AlertRuleRow, date: str, first: datetime, last: datetime
    ) -> list[Window]:
        server = f"{rule.application}.{rule.server_name}"
        cond = MonitorQuery.Condition
        if rule.kind == "property":
            dataid, indexes = "tars_property", ["value"]
            conditions = [
                cond(field="master_name", op=MonitorQuery.OP.EQ, val=server),
                cond(field="property_name", op=MonitorQuery.OP.EQ, val=rule.property_name),
                cond(field="policy", op=MonitorQuery.OP.EQ, val=rule.policy),
            ]
        else:
            dataid, indexes = "tars_stat", list(STAT_INDEXES)
            conditions = [cond(field="slave_name", op=MonitorQuery.OP.EQ, val=server)]
            if rule.interface_name:
                conditions.append(
                    cond(field="interface_name", op=MonitorQuery.OP.EQ, val=rule.interface_name)
                )
        req = MonitorQuery.MonitorQueryReq(
            uid=f"tarsalarm-{rule.id}",
            method="query",
            dataid=dataid,
            date=date,
            tflag1=first.strftime("%H%M"),
            # a day before today is asked to its end: the window ending at midnight is
            # that day's "2360" (docs/monitoring.md, "Windows and tables")
            tflag2=last.strftime("%H%M") if last.time() != datetime.max.time() else "2360",
            conditions=conditions,
            indexs=indexes,
            groupby=["f_tflag"],
        )
        proxy = self._proxy(dataid)
        try:
            _ret, rsp = await proxy.query(req)
        except Exception as e:
            raise QueryFailed(f"{dataid}: {type(e).__name__}: {e}") from None
        if rsp.ret != 0:
            raise QueryFailed(f"{dataid}: ret {rsp.ret}: {rsp.msg[:200]}")
        out = []
        for key, sums in (rsp.result or {}).items():
            tflag = key.split(",")[0].strip()
            if len(sums) < len(indexes):
                continue
            if rule.kind == "property":
                value = float(sums[0])
            else:
                value = stat_value(rule.kind, *(float(s) for s in sums[:4]))
            out.append(Window(date + tflag, value))
        return out


class StateSource:
    """Instances not running as they should, and lost nodes, from the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def values(self, rule: AlertRuleRow) -> dict[str, float]:
        """``target -> 1.0`` (down / lost) or ``0.0`` for every target the rule watches."""
        if rule.kind == "node_lost":
            nodes = await self.store.nodes.list()
            return {
                n.node_name: float(n.present_state != "active")
                for n in nodes
                if n.setting_state == "active"
                and (not rule.node_name or n.node_name == rule.node_name)
            }
        servers = await self.store.servers.list(
            application=rule.application,
            server_name=rule.server_name or None,
            node_name=rule.node_name or None,
        )
        return {
            f"{s.application}.{s.server_name}@{s.node_name}": float(
                s.setting_state == "active" and s.present_state != "active"
            )
            for s in servers
        }
