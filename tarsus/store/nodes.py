"""``t_node_info``: node registration, heartbeats and dead-node detection (upstream ``CDbHandle``).

Every write sets ``modify_time`` (and ``registry_timestamp`` on the server rows it touches) from
the store's clock, so SQLite and MySQL, whose ``ON UPDATE`` would do it there, agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tarsus.names import InvalidName, check_node_name
from tarsus.store.bulk import update_many
from tarsus.store.errors import InvalidInput, NotFound
from tarsus.store.rows import NodeRow, read_node
from tarsus.store.schema import t_node_info, t_profile_template, t_server_conf

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["KEEPALIVE_CHUNK", "REGISTER_CONFLICT", "REGISTER_OK", "Nodes"]

#: :meth:`Nodes.register` results, as upstream's ``registerNode`` returns them.
REGISTER_OK = 0
REGISTER_CONFLICT = 1
#: Heartbeats per statement: small enough that a registry stays responsive while 1,000s of
#: heartbeats are written (bench/registry.py: 10,000 rows held the event loop 3-5 ms)
KEEPALIVE_CHUNK = 250

#: (node_name, load_avg1, load_avg5, load_avg15)
Beat = tuple[str, float, float, float]


def _check(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(f"{field} is over {limit} characters: {value[:40]!r}...")


class Nodes:
    """Registered tarsnodes."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def register(
        self,
        node_name: str,
        node_obj: str,
        endpoint_ip: str,
        endpoint_port: int,
        data_dir: str,
        load_avg1: float,
        load_avg5: float,
        load_avg15: float,
        tars_version: str,
        *,
        node_obj_default: str = "",
    ) -> int:
        """Record that node ``node_name`` started: :data:`REGISTER_OK` (0), or
        :data:`REGISTER_CONFLICT` (1) when an *active* node of that name is registered with a
        different ``node_obj`` and the caller's ``node_obj`` is not empty (upstream's test).
        ``node_obj_default`` is stored when ``node_obj`` is empty (a 3.x node sends none; the
        registry derives one from the node's address); it never takes part in that test.

        The row is written with ``last_reg_time = last_heartbeat = now``, setting and present
        state ``active``; the node's ``template_name`` (and group and label) are kept.
        """
        try:
            check_node_name(node_name)
        except InvalidName as e:
            raise InvalidInput(f"registerNode: {e}") from None
        _check("node_obj", node_obj, 128)
        _check("endpoint_ip", endpoint_ip, 50)
        _check("data_dir", data_dir, 128)
        _check("tars_version", tars_version, 128)
        _check("node_obj", node_obj_default, 128)
        now = self._store.clock()
        values: dict[str, Any] = {
            "node_obj": node_obj or node_obj_default,
            "endpoint_ip": endpoint_ip,
            "endpoint_port": int(endpoint_port),
            "data_dir": data_dir,
            "load_avg1": float(load_avg1),
            "load_avg5": float(load_avg5),
            "load_avg15": float(load_avg15),
            "last_reg_time": now,
            "last_heartbeat": now,
            "setting_state": "active",
            "present_state": "active",
            "tars_version": tars_version,
            "modify_time": now,
        }
        async with self._store.begin() as conn:
            current = (
                await conn.execute(
                    select(t_node_info.c.present_state, t_node_info.c.node_obj)
                    .where(t_node_info.c.node_name == node_name)
                    .with_for_update()
                )
            ).first()
            if current is not None:
                state, obj = current
                if (state or "").lower() == "active" and node_obj and (obj or "") != node_obj:
                    return REGISTER_CONFLICT
            if self._store.dialect == "sqlite":
                lite = sqlite_insert(t_node_info).values(node_name=node_name, **values)
                await conn.execute(
                    lite.on_conflict_do_update(index_elements=["node_name"], set_=values)
                )
            else:
                my = mysql_insert(t_node_info).values(node_name=node_name, **values)
                await conn.execute(my.on_duplicate_key_update(**values))
        return REGISTER_OK

    async def keepalive(self, node_name: str, avg1: float, avg5: float, avg15: float) -> bool:
        """One heartbeat: ``last_heartbeat = now``, present ``active``, the load averages.
        False if no such node is registered (upstream's RPC answers 0 regardless)."""
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_node_info)
                .where(t_node_info.c.node_name == node_name)
                .values(
                    last_heartbeat=now,
                    present_state="active",
                    load_avg1=float(avg1),
                    load_avg5=float(avg5),
                    load_avg15=float(avg15),
                    modify_time=now,
                )
            )
        return result.rowcount > 0

    async def keepalive_many(self, beats: Sequence[Beat]) -> int:
        """Many heartbeats at once, ``(node_name, avg1, avg5, avg15)`` each, in one round trip
        (one statement per :data:`KEEPALIVE_CHUNK` on MySQL). Unknown nodes are ignored, as by
        :meth:`keepalive`. Returns how many rows were matched."""
        if not beats:
            return 0
        now = self._store.clock()
        # Sorted: concurrent batches then lock rows in the same order (no InnoDB deadlocks).
        rows = sorted((name, float(a1), float(a5), float(a15)) for name, a1, a5, a15 in beats)
        async with self._store.begin() as conn:
            return await update_many(
                conn,
                t_node_info,
                ["node_name"],
                ["load_avg1", "load_avg5", "load_avg15"],
                rows,
                {"last_heartbeat": now, "present_state": "active", "modify_time": now},
                chunk=KEEPALIVE_CHUNK,
            )

    async def sweep_dead(self, timeout_s: float) -> list[str]:
        """Mark nodes silent for more than ``timeout_s`` seconds inactive, with every server
        on them (``present_state='inactive'``, ``process_id=0``, ``registry_timestamp`` bumped so
        incremental route loads drop their endpoints). Returns the names of the nodes where
        anything changed, sorted. Rows already in that state are not rewritten.
        """
        if timeout_s <= 0:
            raise InvalidInput(f"timeout_s must be positive, got {timeout_s!r}")
        now = self._store.clock()
        cutoff = now - timedelta(seconds=timeout_s)
        stale = select(t_node_info.c.node_name).where(t_node_info.c.last_heartbeat < cutoff)
        server_live = or_(
            t_server_conf.c.present_state != "inactive", t_server_conf.c.process_id != 0
        )
        async with self._store.begin() as conn:
            nodes = set(
                await conn.scalars(
                    select(t_node_info.c.node_name).where(
                        t_node_info.c.last_heartbeat < cutoff,
                        or_(
                            t_node_info.c.present_state != "inactive",
                            t_node_info.c.present_state.is_(None),
                        ),
                    )
                )
            )
            nodes.update(
                await conn.scalars(
                    select(t_server_conf.c.node_name)
                    .where(t_server_conf.c.node_name.in_(stale), server_live)
                    .distinct()
                )
            )
            if not nodes:
                return []
            await conn.execute(
                update(t_server_conf)
                .where(t_server_conf.c.node_name.in_(stale), server_live)
                .values(present_state="inactive", process_id=0, registry_timestamp=now)
            )
            await conn.execute(
                update(t_node_info)
                .where(
                    t_node_info.c.last_heartbeat < cutoff,
                    or_(
                        t_node_info.c.present_state != "inactive",
                        t_node_info.c.present_state.is_(None),
                    ),
                )
                .values(present_state="inactive", modify_time=now)
            )
        return sorted(nodes)

    async def destroy(self, node_name: str) -> None:
        """Mark node ``node_name`` and every server on it inactive (upstream ``destroyNode``)."""
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_node_info)
                .where(t_node_info.c.node_name == node_name)
                .values(present_state="inactive", modify_time=now)
            )
            if result.rowcount == 0:
                raise NotFound(f"node {node_name!r} is not registered")
            await conn.execute(
                update(t_server_conf)
                .where(
                    t_server_conf.c.node_name == node_name,
                    or_(
                        t_server_conf.c.present_state != "inactive",
                        t_server_conf.c.process_id != 0,
                    ),
                )
                .values(present_state="inactive", process_id=0, registry_timestamp=now)
            )

    async def get(self, name: str) -> NodeRow | None:
        """The node ``name``, or None."""
        async with self._store.connect() as conn:
            row = (
                await conn.execute(read_node.select().where(t_node_info.c.node_name == name))
            ).first()
        return None if row is None else read_node(row)

    async def list(self, active_only: bool = False) -> list[NodeRow]:
        """Every registered node (only ``present_state='active'`` ones if asked), by name."""
        query = read_node.select().order_by(t_node_info.c.node_name)
        if active_only:
            query = query.where(t_node_info.c.present_state == "active")
        async with self._store.connect() as conn:
            return [read_node(r) for r in await conn.execute(query)]

    async def set_template(self, name: str, template: str) -> None:
        """Make node ``name`` use profile template ``template`` ("" = the registry's default)."""
        now = self._store.clock()
        async with self._store.begin() as conn:
            if template:
                found = await conn.scalar(
                    select(func.count()).where(t_profile_template.c.template_name == template)
                )
                if not found:
                    raise InvalidInput(
                        f"template_name of node {name!r}: template {template!r} does not exist"
                    )
            result = await conn.execute(
                update(t_node_info)
                .where(t_node_info.c.node_name == name)
                .values(template_name=template, modify_time=now)
            )
            if result.rowcount == 0:
                raise NotFound(f"node {name!r} is not registered")
