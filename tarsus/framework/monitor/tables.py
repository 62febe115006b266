"""The hourly tables of call statistics and properties, with upstream's names and columns.

``tars_stat_YYYYMMDDHH`` and ``tars_property_YYYYMMDDHH`` (TarsFramework's ``tars.tarsstat`` and
``tars.tarsproperty`` ``<sql>`` templates: same columns, same indexes), and ``t_ecstatus``, where
each finished write records the last complete window. They live in the store's database (our
``db_tars``; upstream keeps them in databases ``tars_stat`` and ``tars_property``) and are made
when first written to, not by the store's migrations: a day has 24 of them per kind and old
ones are dropped by :meth:`HourlyTables.drop_before`.

Writes go through the DB-API driver with plain tuples (``executemany``), not SQLAlchemy's row
dicts: a window of 10,000 servers is half a million rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from tarsus.store.engine import Store

__all__ = [
    "ECSTATUS",
    "PROPERTY",
    "STAT",
    "HourlyTables",
    "TableKind",
]

#: ``f_date``: a ``DATE`` on MySQL; on SQLite the same ``YYYY-MM-DD`` text
_DATE = Date().with_variant(String(10), "sqlite")


def _stat_columns() -> list[Column[Any]]:
    return [
        Column("stattime", DateTime(), nullable=True),
        Column("f_date", _DATE, nullable=False),
        Column("f_tflag", String(8), nullable=False, server_default=""),
        Column("source_id", String(50)),
        Column("master_name", String(128)),
        Column("slave_name", String(128)),
        Column("interface_name", String(128)),
        Column("tars_version", String(16), nullable=False, server_default=""),
        Column("master_ip", String(50)),
        Column("slave_ip", String(50)),
        Column("slave_port", Integer()),
        Column("return_value", Integer()),
        Column("succ_count", BigInteger()),
        Column("timeout_count", BigInteger()),
        Column("exce_count", BigInteger()),
        Column("interv_count", String(128)),
        Column("total_time", BigInteger()),
        Column("ave_time", Integer()),
        Column("maxrsp_time", Integer()),
        Column("minrsp_time", Integer()),
    ]


def _stat_indexes(name: str, t: Table) -> None:
    # upstream's keys (its primary key is a plain index here: a window writes a key once)
    c = t.c
    Index(f"{name}_time", c.stattime)
    Index(f"{name}_master", c.master_name)
    Index(f"{name}_interface", c.interface_name)
    Index(f"{name}_flagslave", c.f_tflag, c.slave_name)
    Index(f"{name}_slaveip", c.slave_ip)
    # upstream's IDX_SLAVE (slave_name), widened to cover the console's curve of one server
    # (grouped by f_tflag, summing the four counters): read from the index alone
    Index(
        f"{name}_slave",
        c.slave_name,
        c.f_tflag,
        c.succ_count,
        c.timeout_count,
        c.exce_count,
        c.total_time,
    )
    Index(f"{name}_retval", c.return_value)
    Index(f"{name}_masterip", c.master_ip)
    Index(f"{name}_date", c.f_date)


def _property_columns() -> list[Column[Any]]:
    return [
        Column("stattime", DateTime(), nullable=True),
        Column("f_date", _DATE, nullable=False),
        Column("f_tflag", String(8), nullable=False, server_default=""),
        Column("master_name", String(128), nullable=False, server_default=""),
        Column("master_ip", String(50)),
        Column("property_name", String(100)),
        Column("set_name", String(15), nullable=False, server_default=""),
        Column("set_area", String(15), nullable=False, server_default=""),
        Column("set_id", String(15), nullable=False, server_default=""),
        Column("policy", String(20)),
        Column("value", String(255)),
    ]


def _property_indexes(name: str, t: Table) -> None:
    c = t.c
    Index(f"{name}_key", c.f_date, c.f_tflag, c.master_name, c.master_ip, c.property_name, c.policy)
    Index(f"{name}_master", c.master_name)
    Index(f"{name}_masterip", c.master_ip)
    Index(f"{name}_time", c.stattime)


@dataclass(frozen=True)
class TableKind:
    """One family of hourly tables: ``<prefix>YYYYMMDDHH``."""

    #: upstream's ``dataid`` and table-name prefix without the ``_``: ``tars_stat``
    dataid: str
    #: the columns a row tuple carries, in order
    columns: tuple[str, ...]
    #: columns ``MonitorQuery`` may sum (``indexs``)
    indexes: frozenset[str]

    @property
    def prefix(self) -> str:
        return f"{self.dataid}_"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def table(self, name: str) -> Table:
        """The table ``name`` of this kind (a fresh :class:`Table`, cached by callers)."""
        if self.dataid == STAT_ID:
            t = Table(name, MetaData(), *_stat_columns())
            _stat_indexes(name, t)
        else:
            t = Table(name, MetaData(), *_property_columns())
            _property_indexes(name, t)
        return t

    def suffix_of(self, name: str) -> str | None:
        """``YYYYMMDDHH`` of one of our table names, else None."""
        m = _SUFFIX.fullmatch(name[len(self.prefix) :]) if name.startswith(self.prefix) else None
        return m.group(0) if m else None


_SUFFIX = re.compile(r"\d{10}")
STAT_ID: Final = "tars_stat"
PROPERTY_ID: Final = "tars_property"

STAT: Final = TableKind(
    STAT_ID,
    tuple(c.name for c in _stat_columns()),
    frozenset({"succ_count", "timeout_count", "exce_count", "total_time", "ave_time"})
    | frozenset({"maxrsp_time", "minrsp_time"}),
)
PROPERTY: Final = TableKind(
    PROPERTY_ID, tuple(c.name for c in _property_columns()), frozenset({"value"})
)

#: upstream's ``t_ecstatus`` (a MEMORY table there): the last complete window per writer
ECSTATUS: Final = Table(
    "t_ecstatus",
    MetaData(),
    Column("id", Integer(), nullable=False, server_default="0"),
    Column("appname", String(64), nullable=False, server_default=""),
    Column("action", SmallInteger(), nullable=False, server_default="0"),
    Column("checkint", SmallInteger(), nullable=False, server_default="10"),
    Column("lasttime", String(20), nullable=False, server_default=""),
    PrimaryKeyConstraint("appname", "action"),
)

#: rows per ``executemany`` and per transaction (SQLite's writer lock is let go in between)
CHUNK_ROWS: Final = 5000


class HourlyTables:
    """Make, fill, list and drop the hourly tables of one kind in ``store``'s database."""

    def __init__(self, store: Store, kind: TableKind) -> None:
        self.store = store
        self.kind = kind
        self._known: set[str] = set()
        self._ecstatus = False
        self._tables: dict[str, Table] = {}
        placeholders = ", ".join(["?" if store.dialect == "sqlite" else "%s"] * len(kind.columns))
        self._insert_sql = "INSERT INTO {table} (%s) VALUES (%s)" % (  # noqa: UP031
            ", ".join(kind.columns),
            placeholders,
        )

    def table(self, name: str) -> Table:
        t = self._tables.get(name)
        if t is None:
            t = self._tables[name] = self.kind.table(name)
        return t

    async def write(self, suffix: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (tuples in :attr:`TableKind.columns` order) into the table of
        ``suffix`` in one transaction, making the table first if needed. Raises what the
        database raises (nothing is written then)."""
        name = self.kind.name(suffix)
        if name not in self._known:
            async with self.store.begin() as conn:
                await conn.run_sync(lambda sync: self.table(name).create(sync, checkfirst=True))
            self._known.add(name)
        async with self.store.begin() as conn:
            await conn.exec_driver_sql(self._insert_sql.format(table=name), list(rows))

    async def prepare(self) -> None:
        """Make ``t_ecstatus`` if it is missing."""
        async with self.store.begin() as conn:
            await conn.run_sync(lambda sync: ECSTATUS.create(sync, checkfirst=True))
        self._ecstatus = True

    async def mark_complete(self, appname: str, lasttime: str) -> None:
        """Record in ``t_ecstatus`` that every window up to ``lasttime`` is written."""
        if not self._ecstatus:
            await self.prepare()
        async with self.store.begin() as conn:
            await conn.execute(
                ECSTATUS.delete().where(ECSTATUS.c.appname == appname, ECSTATUS.c.action == 0)
            )
            await conn.execute(ECSTATUS.insert().values(appname=appname, lasttime=lasttime))

    async def last_complete(self) -> str:
        """The oldest of the writers' last complete windows (``""`` when none wrote yet)."""
        async with self.store.connect() as conn:
            if "t_ecstatus" not in await self.names(conn, "t_ecstatus"):
                return ""
            found = await conn.scalar(
                select(ECSTATUS.c.lasttime)
                .where(ECSTATUS.c.appname.like(f"{self.kind.prefix}%"))
                .order_by(ECSTATUS.c.lasttime)
                .limit(1)
            )
        return str(found or "")

    async def existing(self) -> list[str]:
        """Names of this kind's tables in the database, sorted."""
        async with self.store.connect() as conn:
            names = await self.names(conn, f"{self.kind.prefix}%")
        return sorted(n for n in names if self.kind.suffix_of(n) is not None)

    async def names(self, conn: AsyncConnection, pattern: str) -> list[str]:
        """Tables whose name is LIKE ``pattern``."""
        if self.store.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE :p"
        else:
            sql = "SHOW TABLES LIKE :p"
        result = await conn.execute(text(sql), {"p": pattern})
        return [str(r[0]) for r in result]

    async def drop_before(self, first_kept: date) -> list[str]:
        """Drop the tables of days before ``first_kept``; their names."""
        limit = first_kept.strftime("%Y%m%d")
        dropped = []
        for name in await self.existing():
            suffix = self.kind.suffix_of(name)
            if suffix is not None and suffix[:8] < limit:
                table = self.table(name)
                async with self.store.begin() as conn:
                    await conn.run_sync(_drop, table)
                self._known.discard(name)
                self._tables.pop(name, None)
                dropped.append(name)
        return dropped


def _drop(sync: Connection, table: Table) -> None:
    table.drop(sync, checkfirst=True)
