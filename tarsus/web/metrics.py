"""``GET /metrics``: the platform's calls, properties and server states for Prometheus.

The web app (port 3000 under ``tarsus up``) answers every scrape from what the framework
services already keep, so one scrape target covers every server of every node:

- **calls**, from ``tars.tarsquerystat.QueryObj`` (``MonitorQuery.query`` on ``tars_stat``):
  today's sums per (callee server, interface, callee node) of successes, timeouts, errors and
  response time, and (our ``MonitorExt.queryLatency`` beside it) the latency buckets, as a
  histogram. Each stored row is a finished stat window that never changes, so today's sums
  only grow; the sums of the days before, taken once when the day turns, are added to them.
  Each scrape reads only the time flags after those known complete at the previous one
  (from the answers' ``lastTime``): see :class:`CallTotals`.
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
from tarsus.framework.monitor.windows import slot_of
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
    """Monotonic call counters: the sums of finished days, of today's windows already read for
    good (``done``, every time flag up to ``through``), and of today's later windows, read
    again at each scrape (``pending``)."""

    day: str = ""
    before: dict[_Key, Calls] = field(default_factory=dict)
    done: dict[_Key, Calls] = field(default_factory=dict)
    #: the last time flag (``HHMM``) whose rows are in ``done`` ("" none yet)
    through: str = ""
    #: the last time flag known complete (from the stat writers' ``lastTime``) when the
    #: latest read began: the next read moves flags up to it into ``done``
    complete: str = ""
    pending: dict[_Key, Calls] = field(default_factory=dict)

    def totals(self) -> dict[_Key, Calls]:
        return _added(self.before, self.done, self.pending)

    def take(self, by_flag: dict[str, dict[_Key, Calls]], last_time: str) -> None:
        """A read of the flags after ``through``: those up to ``complete`` are kept for good,
        the rest pending; ``last_time`` (the answer's) bounds the next read's ``complete``."""
        self.pending = {}
        for flag, part in by_flag.items():
            if flag <= self.complete:
                self.done = _added(self.done, part)
            else:
                self.pending = _added(self.pending, part)
        self.through = max(self.through, self.complete)
        self.complete = max(self.complete, complete_flag(last_time, self.day))

    def close_day(self, final: dict[_Key, Calls]) -> None:
        """The day ended; ``final``: its rows after ``through``. All of it joins the base."""
        self.before = _added(self.before, self.done, final)
        self.done, self.pending = {}, {}
        self.through = self.complete = ""


def complete_flag(last_time: str, day: str) -> str:
    """The last time flag of ``day`` (``YYYYMMDD``) whose rows are all written, given the
    stat writers' ``lastTime`` (``YYYY-MM-DD HH:MM:SS``, the end of the last window each has
    written): the flag of one minute before it, as windows shorter than a minute share the flag
    of their end's minute ("" when that is not in ``day``, or ``last_time`` is not a time)."""
    try:
        end = dt.datetime.strptime(last_time.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ""
    slot = slot_of(int((end - dt.timedelta(minutes=1)).timestamp()) - 1, 1)
    return slot.f_tflag if slot.f_date.replace("-", "") == day else ""


def next_flag(flag: str) -> str | None:
    """The time flag after ``flag`` (flags of an hour run ``hh01``..``hh60``); ``None`` after
    the day's last."""
    if not flag:
        return "0000"
    hour, minute = int(flag[:2]), int(flag[2:])
    if minute < 60:
        return f"{hour:02d}{minute + 1:02d}"
    return None if hour >= 23 else f"{hour + 1:02d}01"


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
            calls = self.calls
            if calls.day and calls.day != today:
                rest = await self._read_after(calls.day, calls.through)
                calls.close_day(_added(*rest[0].values()))
            calls.day = today
            by_flag, last_time = await self._read_after(today, calls.through)
            calls.take(by_flag, last_time)
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

    async def _read_after(self, day: str, through: str) -> tuple[dict[str, dict[_Key, Calls]], str]:
        """The sums and latency buckets of ``day``'s windows after flag ``through``, per flag
        and (server, interface, node), and the answer's ``lastTime``. The buckets are left
        empty (and :attr:`latency` false) when the query service does not answer our
        ``MonitorExt.queryLatency`` (an upstream tarsquerystat)."""
        first = next_flag(through)
        if first is None:
            return {}, ""
        req = MonitorQuery.MonitorQueryReq(
            uid="tarsus-metrics",
            method="query",
            dataid="tars_stat",
            date=day,
            tflag1=first,
            tflag2="2360",
            conditions=[],
            indexs=list(STAT_INDEXES),
            groupby=["f_tflag", *STAT_GROUPS],
        )
        proxy = self.communicator.string_to_proxy(MonitorQuery.MonitorQueryProxy, self.query_stat)
        ret, rsp = await proxy.query(req)
        if ret != 0 or rsp.ret != 0:
            raise QueryError(rsp.msg or f"query answered {ret}")
        out: dict[str, dict[_Key, Calls]] = {}
        for group, sums in (rsp.result or {}).items():
            found = _flag_key(group)
            if found is not None and len(sums) == len(STAT_INDEXES):
                out.setdefault(found[0], {})[found[1]] = Calls(sums=list(sums))
        ext = self.communicator.string_to_proxy(TarsusMonitor.MonitorExtProxy, self.query_stat)
        try:
            ret, buckets, msg = await ext.queryLatency(req)
        except TarsError as e:
            ret, buckets, msg = -1, {}, str(e)
        self.latency = ret == 0
        if ret != 0:
            log.debug("metrics: no latency buckets: %s", msg)
        for group, counts in buckets.items():
            found = _flag_key(group)
            if found is not None:
                out.setdefault(found[0], {}).setdefault(found[1], Calls()).buckets = dict(counts)
        return out, rsp.lastTime

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


def _flag_key(group: str) -> tuple[str, _Key] | None:
    """``"flag,server,interface,node"`` split."""
    parts = group.split(",")
    if len(parts) != 1 + len(STAT_GROUPS):
        return None
    return parts[0], (parts[1], parts[2], parts[3])


class QueryError(Exception):
    """A query service answered with an error."""
