"""``MonitorQuery.query`` over the hourly tables (upstream ``tarsquerystat`` /
``tarsqueryproperty``, ``QueryImp`` and ``DbProxy``).

A request names the data (``dataid``: ``tars_stat`` or ``tars_property``), a day (``date``,
``YYYYMMDD``), a range of time flags (``tflag1``..``tflag2``, ``HHMM``), conditions, the columns
to sum (``indexs``) and the columns to group by. Each hourly table of that range is asked
``SELECT <groupby>, SUM(<index>)... WHERE f_date = <day> AND f_tflag BETWEEN ... AND
<conditions> GROUP BY <groupby>``; the answers are added up per group. The result maps the
group's values joined by ``,`` to the sums in ``indexs`` order, as upstream's.

Every name a caller sends is checked against the table's columns and every value is a bound
parameter: a request cannot reach another table or run SQL of its own. ``LIKE`` takes the
value as a SQL pattern (``%`` and ``_`` are wildcards); a value without wildcards is compared
for equality, so the table's indexes serve it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, and_, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from tarsus.framework.monitor.tables import HourlyTables
from tarsus.protocol.gen import MonitorQuery

__all__ = ["LATENCY_COLUMN", "MAX_CONDITIONS", "QueryEngine", "QueryError", "parse_buckets"]

#: conditions, indexes and group-by columns one request may carry
MAX_CONDITIONS: Final = 32
MAX_VALUE: Final = 256
#: the stat tables' latency buckets, ``"5|12,10|3,..."`` (summed by :meth:`QueryEngine.latency`)
LATENCY_COLUMN: Final = "interv_count"

_TFLAG = re.compile(r"(\d\d)(\d\d)")
_COUNT = re.compile(r"[0-9]{1,12}")
_OPS: Final = {
    MonitorQuery.OP.EQ: "__eq__",
    MonitorQuery.OP.GT: "__gt__",
    MonitorQuery.OP.GTE: "__ge__",
    MonitorQuery.OP.LT: "__lt__",
    MonitorQuery.OP.LTE: "__le__",
}


class QueryError(ValueError):
    """A request that cannot be answered; its message goes back in ``MonitorQueryRsp.msg``."""


def parse_day(text: str) -> date:
    """``YYYYMMDD`` (upstream) or ``YYYY-MM-DD``."""
    text = text.strip()
    for pattern in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            pass
    raise QueryError(f"date {text[:40]!r} is not YYYYMMDD")


def parse_tflag(text: str, default: str) -> str:
    text = text.strip() or default
    m = _TFLAG.fullmatch(text)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 60:
        raise QueryError(f"time flag {text[:40]!r} is not HHMM")
    return text


class QueryEngine:
    """Answers ``MonitorQueryReq`` for the tables of ``tables``."""

    def __init__(self, tables: HourlyTables) -> None:
        self.tables = tables
        self.kind = tables.kind
        self._columns = frozenset(self.kind.columns)

    async def query(self, req: MonitorQuery.MonitorQueryReq) -> MonitorQuery.MonitorQueryRsp:
        """The answer; raises :class:`QueryError` for a request it refuses, and what the
        database raises."""
        if not req.indexs:
            raise QueryError("no indexs: name the columns to sum")
        for name in req.indexs:
            if name not in self.kind.indexes:
                raise QueryError(
                    f"cannot sum {name[:40]!r}: use one of {sorted(self.kind.indexes)}"
                )
        totals: dict[str, list[float]] = {}
        groups = len(req.groupby)
        async with self.tables.store.connect() as conn:
            parts = [
                select(
                    *(table.c[g] for g in req.groupby),
                    *(func.sum(table.c[i]) for i in req.indexs),
                )
                .where(*where)
                .group_by(*(table.c[g] for g in req.groupby))
                for table, where in await self._tables(conn, req)
            ]
            # one statement for every table (one round trip); groups of different tables
            # with the same key are added up here
            rows = (await conn.execute(union_all(*parts))).all() if parts else []
        for row in rows:
            key = ",".join(_text(v) for v in row[:groups])
            sums = [float(v or 0) for v in row[groups:]]
            seen = totals.get(key)
            if seen is None:
                totals[key] = sums
            else:
                for i, v in enumerate(sums):
                    seen[i] += v
        return MonitorQuery.MonitorQueryRsp(
            ret=0,
            lastTime=await self.tables.last_complete(),
            activeDb=1,
            totalDb=1,
            retThreads=[0],
            result=dict(sorted(totals.items())),
        )

    async def latency(self, req: MonitorQuery.MonitorQueryReq) -> dict[str, dict[int, int]]:
        """The latency buckets (``interv_count``) of the rows ``req`` selects, added up per
        group: ``"g1,g2" -> {bound: calls}`` (our ``MonitorExt.queryLatency``). Buckets
        texts repeat a lot, so the database counts each distinct text once per group and
        only those are parsed."""
        if LATENCY_COLUMN not in self._columns:
            raise QueryError(f"dataid {self.kind.dataid!r} has no latency buckets")
        totals: dict[str, dict[int, int]] = {}
        groups = len(req.groupby)
        async with self.tables.store.connect() as conn:
            for table, where in await self._tables(conn, req):
                columns = [*(table.c[g] for g in req.groupby), table.c[LATENCY_COLUMN]]
                stmt = select(*columns, func.count()).where(*where).group_by(*columns)
                for row in await conn.execute(stmt):
                    key = ",".join(_text(v) for v in row[:groups])
                    into = totals.setdefault(key, {})
                    times = int(row[groups + 1])
                    for bound, calls in parse_buckets(row[groups] or ""):
                        into[bound] = into.get(bound, 0) + calls * times
        return dict(sorted(totals.items()))

    async def _tables(
        self, conn: AsyncConnection, req: MonitorQuery.MonitorQueryReq
    ) -> list[tuple[Table, list[ColumnElement[bool]]]]:
        """The hourly tables ``req`` reaches, each with the conditions selecting its rows;
        raises :class:`QueryError` for a request it refuses."""
        if req.dataid != self.kind.dataid:
            raise QueryError(
                f"this service answers dataid {self.kind.dataid!r}, not {req.dataid[:40]!r}"
            )
        day = parse_day(req.date)
        first = parse_tflag(req.tflag1, "0000")
        last = parse_tflag(req.tflag2, "2360")
        if max(len(req.indexs), len(req.groupby), len(req.conditions)) > MAX_CONDITIONS:
            raise QueryError(f"at most {MAX_CONDITIONS} conditions, indexs and groupby each")
        for name in req.groupby:
            if name not in self._columns:
                raise QueryError(f"cannot group by {name[:40]!r}: no such column")
        for c in req.conditions:
            if c.field not in self._columns:
                raise QueryError(f"condition on {c.field[:40]!r}: no such column")
            if len(c.val) > MAX_VALUE:
                raise QueryError(f"condition on {c.field}: value longer than {MAX_VALUE}")
        day_text = day.strftime("%Y-%m-%d")
        stem = day.strftime("%Y%m%d")
        wanted = {
            self.kind.name(f"{stem}{hour:02d}") for hour in range(int(first[:2]), int(last[:2]) + 1)
        }
        out: list[tuple[Table, list[ColumnElement[bool]]]] = []
        existing = await self.tables.names(conn, f"{self.kind.prefix}{stem}%")
        for name in sorted(wanted.intersection(existing)):
            table = self.tables.table(name)
            hour = name[-2:]
            # A table holds one day and the flags hh01..hh60 of its hour: conditions the
            # table name already meets are left out, so the planner picks the index of
            # what the caller asked for (slave_name...) rather than scan f_date's.
            where = [table.c.f_date == day_text] if _table_day(name) != day_text else []
            if first > f"{hour}00":
                where.append(table.c.f_tflag >= first)
            if last < f"{hour}60":
                where.append(table.c.f_tflag <= last)
            out.append((table, [*where, *self._conditions(table, req.conditions)]))
        return out

    def _conditions(
        self, table: Table, conditions: list[MonitorQuery.Condition]
    ) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for c in conditions:
            column = table.c[c.field]
            value: Any = c.val
            if c.field == "f_date":
                value = parse_day(c.val).strftime("%Y-%m-%d")
            try:
                op = MonitorQuery.OP(c.op)
            except ValueError:
                raise QueryError(f"condition on {c.field}: unknown op {c.op}") from None
            if op == MonitorQuery.OP.LIKE:
                if "%" in value or "_" in value:
                    out.append(column.like(value))
                else:
                    out.append(column == value)
            else:
                out.append(getattr(column, _OPS[op])(value))
        return [and_(*out)] if out else []


def parse_buckets(text: str) -> list[tuple[int, int]]:
    """``"5|12,10|3"`` -> ``[(5, 12), (10, 3)]``; parts that are not ``int|int`` (>= 0) are
    skipped (the stat service writes only well-formed texts; the table may be shared)."""
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        bound, _, calls = part.partition("|")
        if _COUNT.fullmatch(bound) and _COUNT.fullmatch(calls):
            out.append((int(bound), int(calls)))
    return out


def _table_day(name: str) -> str:
    """``YYYY-MM-DD`` of an hourly table's name."""
    stem = name[-10:-2]
    return f"{stem[:4]}-{stem[4:6]}-{stem[6:]}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    return str(value)
