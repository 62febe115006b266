"""``GET /metrics``: the platform's calls, properties and server states for Prometheus.

The web app (port 3000 under ``tarsus up``) answers every scrape from what the framework
services already keep, so one scrape target covers every server of every node:

- **calls**, from ``tars.tarsquerystat.QueryObj`` (``MonitorQuery.query`` on ``tars_stat``):
  today's sums per (callee server, interface, callee node) of successes, timeouts, errors and
  response time. Each stored row is a finished stat window that never changes, so today's sums
  only grow; the sums of the days before, taken once when the day turns, are added to them.
  Every series is therefore a monotonic counter, as Prometheus wants (it resets only when the
  web app restarts, which ``rate()`` handles).
- **properties**, from ``tars.tarsqueryproperty.QueryObj`` (``tars_property``): each property
  and policy's value in the latest window stored, as a gauge (``Distr`` left out: its stored
  value is a bucket list, which ``MonitorQuery`` cannot sum).
- **server states**, from the admin registry (``getAllServerIds``): one gauge per instance,
  1 when its present state is ``active``, with its setting and present states as labels.

A service that cannot be reached leaves its families out of that scrape (and
``tarsus_scrape_source_up{source=...}`` says 0); the others are still answered.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from tarsus.codec.constants import QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ
from tarsus.protocol.gen import AdminReg, MonitorQuery, TarsusMonitor
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError

__all__ = ["CONTENT_TYPE", "CallTotals", "Calls", "MetricsSource", "Snapshot", "render"]

log = logging.getLogger("tarsus.web.metrics")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: the ``tars_stat`` columns summed, in this order
STAT_INDEXES: Final = ("succ_count", "timeout_count", "exce_count", "total_time")
STAT_GROUPS: Final = ("slave_name", "interface_name", "slave_ip")
PROPERTY_GROUPS: Final = ("f_tflag", "master_name", "property_name", "policy", "master_ip")

_Key = tuple[str, str, str]  # server, interface, node


@dataclass
class Calls:
    """What the stat rows of one (server, interface, node) add up to."""

    #: the :data:`STAT_INDEXES` sums
    sums: list[float] = field(default_factory=lambda: [0.0] * len(STAT_INDEXES))
    #: latency bucket bound (ms) -> successful calls in it (``interv_count``)
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, other: Calls) -> None:
        for i, value in enumerate(other.sums):
            self.sums[i] += value
        for bound, n in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0) + n

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: ``le`` -> calls at most that slow, ending with ``+Inf`` (every
        success: calls slower than the last bound, 3000 ms, are in no stored bucket)."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound in sorted(self.buckets):
            running += self.buckets[bound]
            out.append((str(float(bound)), float(running)))  # "5.0", as prometheus_client
        out.append(("+Inf", max(float(running), self.sums[0])))
        return out


def _added(*parts: dict[_Key, Calls]) -> dict[_Key, Calls]:
    out: dict[_Key, Calls] = {}
    for part in parts:
        for key, calls in part.items():
            out.setdefault(key, Calls()).add(calls)
    return out


@dataclass
class CallTotals:
    """Monotonic call counters: the sums of finished days plus today's."""

    day: str = ""
    before: dict[_Key, Calls] = field(default_factory=dict)
    today: dict[_Key, Calls] = field(default_factory=dict)

    def totals(self) -> dict[_Key, Calls]:
        return _added(self.before, self.today)

    def close_day(self, final: dict[_Key, Calls]) -> None:
        """The day ended with these sums: keep them in the base."""
        self.before = _added(self.before, final)
        self.today = {}


@dataclass
class Snapshot:
    """What one scrape found."""

    calls: dict[_Key, Calls] | None = None
    #: whether ``calls`` has the latency buckets (the query service answers our
    #: ``MonitorExt.queryLatency``)
    latency: bool = False
    #: (server, property, policy, ip) -> value
    properties: dict[tuple[str, str, str, str], float] | None = None
    #: [App.Server_node, setting, present, type] rows
    servers: list[list[str]] | None = None


def _family_samples(snapshot: Snapshot) -> Iterable[Metric]:
    up = GaugeMetricFamily(
        "tarsus_scrape_source_up",
        "1 when the framework service behind a family answered this scrape",
        labels=["source"],
    )
    up.add_metric(["stat"], float(snapshot.calls is not None))
    up.add_metric(["latency"], float(snapshot.latency))
    up.add_metric(["property"], float(snapshot.properties is not None))
    up.add_metric(["admin"], float(snapshot.servers is not None))
    yield up
    if snapshot.calls is not None:
        labels = ["server", "interface", "node"]
        calls = CounterMetricFamily(
            "tarsus_calls",
            "calls answered, as the callers and servers reported them to tarsstat, by result",
            labels=[*labels, "result"],
        )
        time_ms = CounterMetricFamily(
            "tarsus_call_time_milliseconds",
            "response time of the successful calls, summed (divide by the success rate)",
            labels=labels,
        )
        duration = HistogramMetricFamily(
            "tarsus_call_duration_milliseconds",
            "response time of the successful calls, in tarsstat's latency buckets",
            labels=labels,
        )
        for (server, interface, node), call in sorted(snapshot.calls.items()):
            succ, timeout, error, total = call.sums
            calls.add_metric([server, interface, node, "success"], succ)
            calls.add_metric([server, interface, node, "timeout"], timeout)
            calls.add_metric([server, interface, node, "error"], error)
            time_ms.add_metric([server, interface, node], total)
            duration.add_metric([server, interface, node], call.cumulative(), total)
        yield calls
        yield time_ms
        if snapshot.latency:
            yield duration
    if snapshot.properties is not None:
        props = GaugeMetricFamily(
            "tarsus_property",
            "each property's value in its latest stored window, by policy",
            labels=["server", "property", "policy", "node"],
        )
        for (server, name, policy, ip), value in sorted(snapshot.properties.items()):
            props.add_metric([server, name, policy, ip], value)
        yield props
    if snapshot.servers is not None:
        states = GaugeMetricFamily(
            "tarsus_server_up",
            "1 when the instance's present state is active",
            labels=["server", "node", "setting_state", "present_state"],
        )
        for row in snapshot.servers:
            if len(row) < 3:
                continue
            server, _, node = row[0].rpartition("_")  # App.Server_node
            states.add_metric([server, node, row[1], row[2]], float(row[2].lower() == "active"))
        yield states


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        return _family_samples(self.snapshot)


def render(snapshot: Snapshot) -> bytes:
    """The Prometheus text exposition of ``snapshot``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)


class MetricsSource:
    """Asks the query services and the admin registry for one scrape's snapshot."""

    def __init__(
        self,
        communicator: Communicator,
        admin: AdminReg.AdminRegProxy,
        *,
        query_stat: str = QUERY_STAT_OBJ,
        query_property: str = QUERY_PROPERTY_OBJ,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.admin = admin
        self.communicator = communicator
        self.query_stat = query_stat
        self.query_property = query_property
        self.now = now
        self.calls = CallTotals()
        #: whether the last read of the stat service had the latency buckets
        self.latency = False

    async def snapshot(self) -> Snapshot:
        snap = Snapshot()
        today = self.now().strftime("%Y%m%d")
        try:
            if self.calls.day and self.calls.day != today:
                self.calls.close_day(await self._day_sums(self.calls.day))
            self.calls.day = today
            self.calls.today = await self._day_sums(today)
            snap.latency = self.latency
            snap.calls = self.calls.totals()
        except (TarsError, QueryError) as e:
            log.debug("metrics: no call statistics: %s", e)
        try:
            snap.properties = await self._latest_properties(today)
        except (TarsError, QueryError) as e:
            log.debug("metrics: no properties: %s", e)
        try:
            snap.servers, _ = await self.admin.getAllServerIds()
        except TarsError as e:
            log.debug("metrics: no server states: %s", e)
        return snap

    async def _query(self, obj: str, req: MonitorQuery.MonitorQueryReq) -> dict[str, list[float]]:
        # Made per call: a name that cannot be resolved (no locator) fails this scrape only.
        proxy = self.communicator.string_to_proxy(MonitorQuery.MonitorQueryProxy, obj)
        ret, rsp = await proxy.query(req)
        if ret != 0 or rsp.ret != 0:
            raise QueryError(rsp.msg or f"query answered {ret}")
        return dict(rsp.result or {})

    async def _day_sums(self, day: str) -> dict[_Key, Calls]:
        """The day's sums and latency buckets per (server, interface, node); the buckets are
        left empty (and :attr:`latency` false) when the query service does not answer our
        ``MonitorExt.queryLatency`` (an upstream tarsquerystat)."""
        req = MonitorQuery.MonitorQueryReq(
            uid="tarsus-metrics",
            method="query",
            dataid="tars_stat",
            date=day,
            tflag1="0000",
            tflag2="2360",
            conditions=[],
            indexs=list(STAT_INDEXES),
            groupby=list(STAT_GROUPS),
        )
        out: dict[_Key, Calls] = {}
        for group, sums in (await self._query(self.query_stat, req)).items():
            key = _group_key(group)
            if key is not None and len(sums) == len(STAT_INDEXES):
                out[key] = Calls(sums=list(sums))
        ext = self.communicator.string_to_proxy(TarsusMonitor.MonitorExtProxy, self.query_stat)
        try:
            ret, buckets, msg = await ext.queryLatency(req)
        except TarsError as e:
            ret, buckets, msg = -1, {}, str(e)
        self.latency = ret == 0
        if ret != 0:
            log.debug("metrics: no latency buckets: %s", msg)
        for group, counts in buckets.items():
            key = _group_key(group)
            if key is not None:
                out.setdefault(key, Calls()).buckets = dict(counts)
        return out

    async def _latest_properties(self, day: str) -> dict[tuple[str, str, str, str], float]:
        req = MonitorQuery.MonitorQueryReq(
            uid="tarsus-metrics",
            method="query",
            dataid="tars_property",
            date=day,
            tflag1="0000",
            tflag2="2360",
            conditions=[],
            indexs=["value"],
            groupby=list(PROPERTY_GROUPS),
        )
        latest: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        for group, values in (await self._query(self.query_property, req)).items():
            parts = group.split(",")
            if len(parts) != len(PROPERTY_GROUPS) or not values:
                continue
            tflag, key = parts[0], (parts[1], parts[2], parts[3], parts[4])
            if key[2] == "Distr":
                # stored as a bucket list ("10|0,100|1,max|0"): the database's SUM of that
                # text is its first bound, not a value
                continue
            seen = latest.get(key)
            if seen is None or tflag > seen[0]:
                latest[key] = (tflag, values[0])
        return {key: value for key, (_, value) in latest.items()}


def _group_key(group: str) -> _Key | None:
    parts = group.split(",")
    if len(parts) != len(STAT_GROUPS):
        return None
    return parts[0], parts[1], parts[2]


class QueryError(Exception):
    """A query service answered with an error."""
