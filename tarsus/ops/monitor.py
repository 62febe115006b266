"""Call statistics and properties of a server, a day beside a compare day (the console's
"service monitor" and "property monitor", upstream TarsWeb ``stat_monitor_data`` and
``property_monitor_data``; docs/console.md "Monitoring").

Both ask a ``MonitorQuery`` service (``tars.tarsquerystat.QueryObj`` over ``tars_stat``,
``tars.tarsqueryproperty.QueryObj`` over ``tars_property``; docs/monitoring.md) once per day
for the chart (sums per time flag) and, with a group-by, once more per day for the table, and
merge the two days. Every field of the request is checked here first (dates, ``HHMM`` times,
group-by against upstream's list, filter values against a narrow alphabet): the query service
checks again, but a caller gets a clear 400 without a round trip.

Call statistics (the four numbers upstream shows for each day): **calls** (successes +
timeouts + exceptions) and its swing against the compare day in percent, **average time**
(total time / successes, ms), **failure rate** (exceptions / calls, %), **timeout rate**
(timeouts / calls, %). Properties: each group's value summed over the range (as upstream's
``MonitorQuery`` does; ``Distr`` rows, whose stored value is a bucket list, are left out).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Invalid, UpstreamFailed
from tarsus.ops.framework import calling, proxy
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import MonitorQuery

__all__ = [
    "PROPERTY_GROUPS",
    "STAT_GROUPS",
    "CallNumbers",
    "PropertyReport",
    "PropertyRow",
    "StatReport",
    "StatRow",
    "properties",
    "stats",
]

#: what the stat table may be grouped by (upstream's buttons: caller, callee, interface, IPs)
STAT_GROUPS = ("interface_name", "master_name", "slave_name", "master_ip", "slave_ip")
#: and the property table
PROPERTY_GROUPS = ("property_name", "policy", "master_ip")
STAT_INDEXES = ("succ_count", "timeout_count", "exce_count", "total_time")
#: charts drawn for properties at most (one per property and policy)
MAX_PROPERTY_CHARTS = 12
#: what a filter value may hold: names (``App.Server``, ``sayHello``, ``memsize``) and IPs
_VALUE = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")
_FLAG = re.compile(r"(\d{2}):?(\d{2})")


@dataclass(frozen=True)
class CallNumbers:
    """One day's numbers of a row."""

    calls: int = 0
    succ: int = 0
    timeout: int = 0
    error: int = 0
    total_time: float = 0.0

    @property
    def avg_ms(self) -> float:
        return round(self.total_time / self.succ, 2) if self.succ else 0.0

    @property
    def failure_rate(self) -> float:
        return round(100.0 * self.error / self.calls, 2) if self.calls else 0.0

    @property
    def timeout_rate(self) -> float:
        return round(100.0 * self.timeout / self.calls, 2) if self.calls else 0.0

    @classmethod
    def of(cls, sums: Sequence[float]) -> CallNumbers:
        succ, timeout, error, total = (float(v) for v in sums[:4])
        return cls(int(succ + timeout + error), int(succ), int(timeout), int(error), total)

    def as_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "succ": self.succ,
            "timeout": self.timeout,
            "error": self.error,
            "avg_ms": self.avg_ms,
            "failure_rate": self.failure_rate,
            "timeout_rate": self.timeout_rate,
        }


def swing(now: float, before: float) -> float | None:
    """``now`` against ``before`` in percent (None when there was nothing before)."""
    return round(100.0 * (now - before) / before, 1) if before else None


@dataclass(frozen=True)
class StatRow:
    """A time flag (``HH:MM``, the end of its window) or a group's value, both days."""

    key: str
    today: CallNumbers
    compare: CallNumbers

    @property
    def swing(self) -> float | None:
        return swing(self.today.calls, self.compare.calls)

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "today": self.today.as_dict(),
            "compare": self.compare.as_dict(),
            "swing": self.swing,
        }


@dataclass(frozen=True)
class StatReport:
    server: str
    date: str
    compare: str
    start: str
    end: str
    group_by: str
    #: the table: per group, or per time flag without a group-by
    rows: list[StatRow]
    #: the charts: per time flag (minutes since midnight of the window's end), both days
    series: list[StatRow]

    def as_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "date": self.date,
            "compare": self.compare,
            "start": self.start,
            "end": self.end,
            "group_by": self.group_by,
            "rows": [r.as_dict() for r in self.rows],
            "series": [r.as_dict() for r in self.series],
        }


@dataclass(frozen=True)
class PropertyRow:
    key: str
    today: float | None
    compare: float | None

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "today": self.today, "compare": self.compare}


@dataclass(frozen=True)
class PropertyChart:
    """One property and policy over the day: ``(time flag label, today, compare)``."""

    name: str
    points: list[PropertyRow] = field(default_factory=list)


@dataclass(frozen=True)
class PropertyReport:
    server: str
    date: str
    compare: str
    start: str
    end: str
    group_by: str
    rows: list[PropertyRow]
    charts: list[PropertyChart]

    def as_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "date": self.date,
            "compare": self.compare,
            "start": self.start,
            "end": self.end,
            "group_by": self.group_by,
            "rows": [r.as_dict() for r in self.rows],
            "charts": [
                {"name": c.name, "points": [p.as_dict() for p in c.points]} for c in self.charts
            ],
        }


# ------------------------------------------------------------------ checking the request


def check_date(text: str, what: str, default: dt.date) -> dt.date:
    """``YYYY-MM-DD`` (or ``YYYYMMDD``), or :class:`Invalid` naming the field."""
    text = text.strip()
    if not text:
        return default
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            day = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if day.year >= 2000:
            return day
    raise Invalid(f"{what} {text[:40]!r} is not a date (YYYY-MM-DD)")


def check_flag(text: str, what: str, default: str) -> str:
    """A time ``HHMM`` or ``HH:MM`` (00:00-23:60, as the stat tables' flags), as ``HHMM``."""
    text = text.strip()
    if not text:
        return default
    found = _FLAG.fullmatch(text)
    if found is None or int(found.group(1)) > 23 or int(found.group(2)) > 60:
        raise Invalid(f"{what} {text[:40]!r} is not a time of day (HH:MM, 00:00 to 23:60)")
    return found.group(1) + found.group(2)


def check_value(text: str, what: str) -> str:
    text = text.strip()
    if text and not _VALUE.fullmatch(text):
        raise Invalid(
            f"{what} {text[:40]!r} may hold letters, digits and . _ - : @ (1-128 characters)"
        )
    return text


def check_group(text: str, allowed: Sequence[str]) -> str:
    text = text.strip()
    if text and text not in allowed:
        raise Invalid(f"group_by {text[:40]!r} is not one of {', '.join(allowed)}")
    return text


def flag_label(flag: str) -> str:
    """A time flag ``0960`` as the time of day its window ends, ``10:00``."""
    hour, minute = int(flag[:2]), int(flag[2:])
    if minute == 60:
        hour, minute = hour + 1, 0
    return f"{hour:02d}:{minute:02d}"


def _range(
    date: str, compare: str, start: str, end: str, today: dt.date
) -> tuple[dt.date, dt.date, str, str]:
    day = check_date(date, "date", today)
    other = check_date(compare, "compare", day - dt.timedelta(days=1))
    first = check_flag(start, "start", "0000")
    last = check_flag(end, "end", "2360")
    if first > last:
        raise Invalid(f"start {flag_label(first)} is after end {flag_label(last)}")
    return day, other, first, last


# ------------------------------------------------------------------ asking the query services


async def _query(
    platform: Platform,
    obj: str,
    dataid: str,
    day: dt.date,
    first: str,
    last: str,
    conditions: list[MonitorQuery.Condition],
    indexes: Sequence[str],
    groupby: Sequence[str],
) -> dict[str, list[float]]:
    query = proxy(platform, MonitorQuery.MonitorQueryProxy, obj)
    request = MonitorQuery.MonitorQueryReq(
        uid="tarsus-web",
        method="query",
        dataid=dataid,
        date=day.strftime("%Y%m%d"),
        tflag1=first,
        tflag2=last,
        conditions=conditions,
        indexs=list(indexes),
        groupby=list(groupby),
    )
    async with calling(obj):
        ret, rsp = await query.query(request)
    if ret != 0 or rsp.ret != 0:
        raise UpstreamFailed(f"{obj} refused the query: {rsp.msg or ret}")
    return {key: list(values) for key, values in (rsp.result or {}).items()}


def _eq(field_name: str, value: str) -> MonitorQuery.Condition:
    return MonitorQuery.Condition(field_name, MonitorQuery.OP.EQ, value)


async def stats(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    *,
    date: str = "",
    compare: str = "",
    start: str = "",
    end: str = "",
    group_by: str = "",
    interface: str = "",
    caller: str = "",
    caller_ip: str = "",
    callee_ip: str = "",
    today: dt.date | None = None,
) -> StatReport:
    """The calls ``app.server`` answered (it is the callee, ``slave_name``), on ``date``
    (default today) beside ``compare`` (default the day before), ``start``-``end``; by time
    flag, or grouped by one of :data:`STAT_GROUPS`; narrowed to an interface, a caller
    (``App.Server``) and IPs."""
    actor.require(Perm.VIEW, app, server)
    day, other, first, last = _range(date, compare, start, end, today or dt.date.today())
    group = check_group(group_by, STAT_GROUPS)
    conditions = [_eq("slave_name", f"{app}.{server}")]
    for column, value, what in (
        ("interface_name", interface, "interface"),
        ("master_name", caller, "caller"),
        ("master_ip", caller_ip, "caller_ip"),
        ("slave_ip", callee_ip, "callee_ip"),
    ):
        if check_value(value, what):
            conditions.append(_eq(column, value.strip()))

    async def ask(when: dt.date, groupby: str) -> dict[str, list[float]]:
        return await _query(
            platform,
            platform.query_stat,
            "tars_stat",
            when,
            first,
            last,
            conditions,
            STAT_INDEXES,
            [groupby],
        )

    asks = [ask(day, "f_tflag"), ask(other, "f_tflag")]
    if group:
        asks += [ask(day, group), ask(other, group)]
    answers = await asyncio.gather(*asks)
    series = _stat_rows(answers[0], answers[1], by_flag=True)
    rows = _stat_rows(answers[2], answers[3], by_flag=False) if group else series
    return StatReport(
        f"{app}.{server}",
        day.isoformat(),
        other.isoformat(),
        flag_label(first) if first != "0000" else "00:00",
        flag_label(last),
        group,
        rows,
        series,
    )


def _stat_rows(
    today: dict[str, list[float]], compare: dict[str, list[float]], *, by_flag: bool
) -> list[StatRow]:
    rows = [
        StatRow(
            key,
            CallNumbers.of(today[key]) if key in today else CallNumbers(),
            CallNumbers.of(compare[key]) if key in compare else CallNumbers(),
        )
        for key in set(today) | set(compare)
    ]
    if by_flag:
        rows = [StatRow(flag_label(r.key), r.today, r.compare) for r in rows if r.key.isdigit()]
        return sorted(rows, key=lambda r: r.key)
    return sorted(rows, key=lambda r: (-r.today.calls, -r.compare.calls, r.key))


async def properties(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    *,
    date: str = "",
    compare: str = "",
    start: str = "",
    end: str = "",
    group_by: str = "property_name",
    property_name: str = "",
    policy: str = "",
    ip: str = "",
    today: dt.date | None = None,
) -> PropertyReport:
    """The properties ``app.server`` reported (``master_name``), ``date`` beside ``compare``:
    a table grouped by one of :data:`PROPERTY_GROUPS` (empty: by time flag) and one chart per
    property and policy."""
    actor.require(Perm.VIEW, app, server)
    day, other, first, last = _range(date, compare, start, end, today or dt.date.today())
    group = check_group(group_by, PROPERTY_GROUPS)
    conditions = [_eq("master_name", f"{app}.{server}")]
    for column, value, what in (
        ("property_name", property_name, "property"),
        ("policy", policy, "policy"),
        ("master_ip", ip, "ip"),
    ):
        if check_value(value, what):
            conditions.append(_eq(column, value.strip()))

    async def ask(when: dt.date, groupby: list[str]) -> dict[str, list[float]]:
        return await _query(
            platform,
            platform.query_property,
            "tars_property",
            when,
            first,
            last,
            conditions,
            ["value"],
            groupby,
        )

    by_time = ["f_tflag", "property_name", "policy"]
    asks = [ask(day, by_time), ask(other, by_time)]
    if group:
        table = [group] if group == "policy" else [group, "policy"]
        asks += [ask(day, table), ask(other, table)]
    answers = await asyncio.gather(*asks)
    charts = _property_charts(answers[0], answers[1])
    if group:
        rows = _property_rows(answers[2], answers[3], keep_first=group != "policy")
    else:
        rows = [
            PropertyRow(f"{p.key} {c.name}", p.today, p.compare) for c in charts for p in c.points
        ]
    return PropertyReport(
        f"{app}.{server}",
        day.isoformat(),
        other.isoformat(),
        flag_label(first) if first != "0000" else "00:00",
        flag_label(last),
        group,
        rows,
        charts,
    )


def _property_rows(
    today: dict[str, list[float]], compare: dict[str, list[float]], *, keep_first: bool
) -> list[PropertyRow]:
    """``"group,policy"`` keys summed per group (``Distr`` left out)."""
    sums: dict[str, list[float | None]] = {}
    for i, answer in enumerate((today, compare)):
        for key, values in answer.items():
            name, _, pol = key.rpartition(",")
            if pol == "Distr" or not values:
                continue
            label = f"{name} ({pol})" if keep_first else pol
            slot = sums.setdefault(label, [None, None])
            slot[i] = (slot[i] or 0.0) + float(values[0])
    return [PropertyRow(k, v[0], v[1]) for k, v in sorted(sums.items())]


def _property_charts(
    today: dict[str, list[float]], compare: dict[str, list[float]]
) -> list[PropertyChart]:
    points: dict[str, dict[str, list[float | None]]] = {}
    for i, answer in enumerate((today, compare)):
        for key, values in answer.items():
            parts = key.split(",")
            if len(parts) < 3 or not parts[0].isdigit() or not values:
                continue
            flag, pol = parts[0], parts[-1]
            name = ",".join(parts[1:-1])
            if pol == "Distr":
                continue
            slot = points.setdefault(f"{name} ({pol})", {}).setdefault(flag, [None, None])
            slot[i] = (slot[i] or 0.0) + float(values[0])
    charts = []
    for name in sorted(points)[:MAX_PROPERTY_CHARTS]:
        flags = points[name]
        charts.append(
            PropertyChart(
                name,
                [PropertyRow(flag_label(f), flags[f][0], flags[f][1]) for f in sorted(flags)],
            )
        )
    return charts
