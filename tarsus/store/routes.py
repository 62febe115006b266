"""What the registry reads to build its route cache, and the rows it keeps for itself.

* :func:`load_routes` — every instance with its adapters (upstream: ``t_adapter_conf RIGHT JOIN
  t_server_conf``, written here as a LEFT JOIN from ``t_server_conf``), plus the registries' own
  objects from ``t_registry_info``, so ``tars.tarsregistry.QueryObj`` resolves like any servant.
  With ``since``, only the servers (application, server_name) having a ``t_server_conf`` or
  ``t_adapter_conf`` row whose ``registry_timestamp`` is at or after ``since`` — every writer
  bumps that column, so a state, flow or config change reloads its whole server.
* :func:`load_group_rules`, :func:`load_group_priorities` — the IDC group tables.
* :func:`heartbeat_registry` — upsert this registry's servants into ``t_registry_info``;
  :func:`expire_registries` marks registries whose heartbeat stopped inactive.
* :func:`node_inactive_rate` — the share of inactive nodes, for the recover-protection check.
* :func:`node_servers` — the instances of one node with their adapters (``getServers``).

Everything is one statement per table and step (no per-row round trips); the instances of a
route load are read in pages of a few hundred (two SELECTs each: see :data:`_PAGE`), the
changed servers of an incremental one a few dozen a query (:data:`_PAGE_SERVERS`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, literal, select, tuple_, union, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from tarsus.store.rows import AdapterRow, ServerRow, read_adapter, read_server
from tarsus.store.schema import (
    t_adapter_conf,
    t_group_priority,
    t_node_info,
    t_registry_info,
    t_server_conf,
    t_server_group_rule,
)
from tarsus.store.server_types import with_types

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = [
    "GroupPriority",
    "GroupRule",
    "RouteLoad",
    "RouteRow",
    "expire_registries",
    "heartbeat_registry",
    "load_group_priorities",
    "load_group_rules",
    "load_routes",
    "node_inactive_rate",
    "node_servers",
]


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One row of the route load: an instance (``t_server_conf``) and one of its adapters.

    ``servant`` and ``endpoint`` are empty for an instance without adapters. Rows of
    ``t_registry_info`` have ``from_registry=True``, empty application and server name, the
    host of ``locator_id`` as node name, and their ``present_state`` as both states (as
    upstream's load query does).
    """

    application: str
    server_name: str
    node_name: str
    servant: str = ""
    endpoint: str = ""
    enable_group: str = "N"
    setting_state: str = "inactive"
    present_state: str = "inactive"
    flow_state: str = "active"
    enable_set: str = "N"
    set_name: str = ""
    set_area: str = ""
    set_group: str = ""
    ip_group_name: str = ""
    bak_flag: int = 0
    from_registry: bool = False


@dataclass(frozen=True, slots=True)
class GroupRule:
    """A ``t_server_group_rule`` row: an IDC group and the caller addresses in it
    (``allow_ip_rule``: ``|``-separated exact IPs or ``a.b.c.*`` prefixes)."""

    group_id: int
    group_name: str = ""
    allow_ip_rule: str = ""


@dataclass(frozen=True, slots=True)
class GroupPriority:
    """A ``t_group_priority`` row: groups (``group_list``, e.g. ``"1|2,3"``) tried together."""

    id: int
    group_list: str = ""
    list_order: int = 0
    station: str = ""


@dataclass(frozen=True, slots=True)
class RouteLoad:
    """The result of :func:`load_routes`."""

    rows: list[RouteRow]
    #: for an incremental load, the servers that changed (some may have no rows any more);
    #: None for a full load
    changed: set[tuple[str, str]] | None
    #: the database's "now" as the store's clock saw it when the load began
    started: datetime


#: Rows converted between two yields to the event loop.
_SLICE = 100
#: Instances read per query by a full :func:`load_routes`. A driver decodes the rows of a
#: query at once, on the event loop with asyncmy (which parses every row already received in
#: one go: streamed, a 100,000-row load held the loop up to 50 ms when its socket had filled),
#: so a page bounds what one step of a load costs (bench/registry.py; docs/registry.md,
#: "Latency").
_PAGE = 400
#: Changed servers read per query by an incremental :func:`load_routes`: a deploy or a
#: restart of many servers changes thousands of instances, re-read by every incremental load
#: for ``least_changed_time`` (1,000 instances in one query held the loop 10 ms).
_PAGE_SERVERS = 40


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _lower(value: Any) -> str:
    return "" if value is None else str(value).lower()


_S, _A = t_server_conf.c, t_adapter_conf.c

_ROUTE_COLUMNS = (
    _S.application,
    _S.server_name,
    _S.node_name,
    _A.servant,
    _A.endpoint,
    _S.enable_group,
    _S.setting_state,
    _S.present_state,
    _S.flow_state,
    _S.enable_set,
    _S.set_name,
    _S.set_area,
    _S.set_group,
    _S.ip_group_name,
    _S.bak_flag,
)

_JOIN = t_server_conf.outerjoin(
    t_adapter_conf,
    and_(
        _A.application == _S.application,
        _A.server_name == _S.server_name,
        _A.node_name == _S.node_name,
    ),
)


def _route_row(r: Sequence[Any]) -> RouteRow:
    return RouteRow(
        _text(r[0]),
        _text(r[1]),
        _text(r[2]),
        _text(r[3]),
        _text(r[4]),
        _text(r[5]),
        _lower(r[6]),
        _lower(r[7]),
        _lower(r[8]),
        _text(r[9]),
        _text(r[10]),
        _text(r[11]),
        _text(r[12]),
        _text(r[13]),
        int(r[14] or 0),
    )


def _registry_row(r: Sequence[Any]) -> RouteRow:
    locator_id, servant, endpoint, enable_group, present = r
    host = _text(locator_id).rpartition(":")[0] or _text(locator_id)
    state = _lower(present)
    return RouteRow(
        "",
        "",
        host,
        _text(servant),
        _text(endpoint),
        _text(enable_group),
        state,
        state,
        "active",
        from_registry=True,
    )


async def load_routes(store: Store, since: datetime | None = None) -> RouteLoad:
    """The route rows: all of them, or (``since`` given) those of servers changed since then.

    Rows of ``t_registry_info`` are part of both. One read transaction, so the changed set
    and the rows agree. A full load is read in pages of :data:`_PAGE` instances (see there),
    rows in the order of ``t_server_conf.id`` then ``t_adapter_conf.id``; an incremental one
    :data:`_PAGE_SERVERS` servers a query, each server's rows in that order.
    """
    started = store.clock()
    changed: set[tuple[str, str]] | None = None
    async with store.connect() as conn:
        if since is not None:
            recent = union(
                select(_S.application, _S.server_name).where(_S.registry_timestamp >= since),
                select(_A.application, _A.server_name).where(_A.registry_timestamp >= since),
            ).subquery("changed")
            changed = {
                (_text(app), _text(server)) for app, server in await conn.execute(select(recent))
            }
        rows: list[RouteRow] = []
        if changed is None:
            rows = await _read_instances(conn)
        elif changed:
            rows = await _read_servers(conn, sorted(changed))
        registry = await conn.execute(
            select(
                t_registry_info.c.locator_id,
                t_registry_info.c.servant,
                t_registry_info.c.endpoint,
                t_registry_info.c.enable_group,
                t_registry_info.c.present_state,
            ).order_by(t_registry_info.c.endpoint, t_registry_info.c.id)
        )
        rows.extend(_registry_row(r) for r in registry)
    return RouteLoad(rows, changed, started)


async def _read_instances(conn: AsyncConnection) -> list[RouteRow]:
    """The route rows of every instance, page by page: the id bounding the next
    :data:`_PAGE` instances, on the primary key, then the rows of those instances with their
    adapters."""
    rows: list[RouteRow] = []
    after = 0
    while True:
        upper = await conn.scalar(
            select(_S.id).where(_S.id > after).order_by(_S.id).offset(_PAGE - 1).limit(1)
        )
        query = select(*_ROUTE_COLUMNS).select_from(_JOIN).where(_S.id > after)
        if upper is not None:
            query = query.where(_S.id <= upper)
        rows += await _convert((await conn.execute(query.order_by(_S.id, _A.id))).all())
        if upper is None:
            return rows
        after = int(upper)


async def _read_servers(conn: AsyncConnection, servers: list[tuple[str, str]]) -> list[RouteRow]:
    """The route rows of the instances of ``servers`` (``(application, server_name)``),
    :data:`_PAGE_SERVERS` of them per query, each one's rows in id order (a page of ids over
    the join instead would scan the whole table on SQLite; these are index lookups on the
    unique keys of both tables)."""
    rows: list[RouteRow] = []
    key = tuple_(_S.application, _S.server_name)
    for at in range(0, len(servers), _PAGE_SERVERS):
        page = servers[at : at + _PAGE_SERVERS]
        query = select(*_ROUTE_COLUMNS).select_from(_JOIN).where(key.in_(page))
        rows += await _convert((await conn.execute(query.order_by(_S.id, _A.id))).all())
    return rows


async def _convert(part: Sequence[Any]) -> list[RouteRow]:
    """``part``'s rows as :class:`RouteRow`, :data:`_SLICE` between two turns of the loop."""
    rows: list[RouteRow] = []
    for at in range(0, len(part), _SLICE):
        rows.extend(_route_row(r) for r in part[at : at + _SLICE])
        await asyncio.sleep(0)  # a driver reading buffered rows never suspends
    return rows


async def load_group_rules(store: Store) -> list[GroupRule]:
    """``t_server_group_rule`` by ``group_id``."""
    g = t_server_group_rule.c
    async with store.connect() as conn:
        result = await conn.execute(
            select(g.group_id, g.group_name, g.allow_ip_rule).order_by(g.group_id)
        )
        return [GroupRule(int(i or 0), _text(n), _text(a)) for i, n, a in result]


async def load_group_priorities(store: Store) -> list[GroupPriority]:
    """``t_group_priority`` by ``list_order``."""
    p = t_group_priority.c
    async with store.connect() as conn:
        result = await conn.execute(
            select(p.id, p.group_list, p.list_order, p.station).order_by(p.list_order, p.id)
        )
        return [
            GroupPriority(int(i or 0), _text(gl), int(lo or 0), _text(st))
            for i, gl, lo, st in result
        ]


async def heartbeat_registry(
    store: Store, locator_id: str, servants: Iterable[tuple[str, str]], tars_version: str
) -> None:
    """Upsert ``(servant, endpoint)`` rows of the registry whose QueryObj is at ``locator_id``
    (``host:port``): ``last_heartbeat`` now, ``present_state`` active."""
    now = store.clock()
    values = [
        {
            "locator_id": locator_id,
            "servant": servant,
            "endpoint": endpoint,
            "last_heartbeat": now,
            "present_state": "active",
            "tars_version": tars_version,
            "modify_time": now,
        }
        for servant, endpoint in servants
    ]
    if not values:
        return
    async with store.begin() as conn:
        if store.dialect == "sqlite":
            ins = sqlite.insert(t_registry_info).values(values)
            stmt: Any = ins.on_conflict_do_update(
                index_elements=["locator_id", "servant"],
                set_={
                    "endpoint": ins.excluded.endpoint,
                    "last_heartbeat": ins.excluded.last_heartbeat,
                    "present_state": ins.excluded.present_state,
                    "tars_version": ins.excluded.tars_version,
                    "modify_time": ins.excluded.modify_time,
                },
            )
        else:
            mins = mysql.insert(t_registry_info).values(values)
            stmt = mins.on_duplicate_key_update(
                endpoint=mins.inserted.endpoint,
                last_heartbeat=mins.inserted.last_heartbeat,
                present_state=mins.inserted.present_state,
                tars_version=mins.inserted.tars_version,
                modify_time=mins.inserted.modify_time,
            )
        await conn.execute(stmt)


async def expire_registries(store: Store, timeout_s: float) -> int:
    """Mark registries (``t_registry_info`` rows) without a heartbeat for ``timeout_s``
    seconds inactive; returns how many rows changed."""
    now = store.clock()
    cutoff = now - timedelta(seconds=timeout_s)
    r = t_registry_info.c
    async with store.begin() as conn:
        result = await conn.execute(
            update(t_registry_info)
            .where(r.last_heartbeat < cutoff, r.present_state != literal("inactive"))
            .values(present_state="inactive", modify_time=now)
        )
        return max(result.rowcount, 0)


async def node_inactive_rate(store: Store) -> int:
    """Percent of ``t_node_info`` rows that are inactive (upstream ``computeInactiveRate``)."""
    state = func.lower(t_node_info.c.present_state)
    async with store.connect() as conn:
        row = (
            await conn.execute(
                select(
                    func.sum(case((state == "active", 1), else_=0)),
                    func.sum(case((state == "inactive", 1), else_=0)),
                )
            )
        ).one()
    active, inactive = int(row[0] or 0), int(row[1] or 0)
    total = active + inactive
    return 0 if total <= 0 else 100 * inactive // total


async def node_servers(
    store: Store, node_name: str, application: str = "", server_name: str = ""
) -> list[tuple[ServerRow, list[AdapterRow]]]:
    """The instances on ``node_name`` (only ``application``/``server_name`` when not empty)
    with their adapters, ``tars_dns`` servers left out (upstream ``getServers``): two SELECTs,
    whatever the number of servers."""
    s, a = t_server_conf.c, t_adapter_conf.c
    servers = read_server.select().where(s.node_name == node_name, s.server_type != "tars_dns")
    adapters = read_adapter.select().where(a.node_name == node_name)
    if application:
        servers = servers.where(s.application == application)
        adapters = adapters.where(a.application == application)
    if server_name:
        servers = servers.where(s.server_name == server_name)
        adapters = adapters.where(a.server_name == server_name)
    servers = servers.order_by(s.application, s.server_name)
    adapters = adapters.order_by(a.application, a.server_name, a.adapter_name)
    async with store.connect() as conn:
        rows = await with_types(conn, [read_server(r) for r in await conn.execute(servers)])
        by_server: dict[tuple[str, str], list[AdapterRow]] = {}
        for r in await conn.execute(adapters):
            adapter = read_adapter(r)
            by_server.setdefault((adapter.application, adapter.server_name), []).append(adapter)
    return [(row, by_server.get((row.application, row.server_name), [])) for row in rows]
