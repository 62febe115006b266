"""Updating many rows, each with its own values, in one round trip.

A registry absorbs heartbeats of 10,000 nodes every 10 s and state reports of 100,000
instances a minute, so per-row statements are out. On SQLite, ``executemany`` of one ``UPDATE``
runs the whole batch in a single call into the driver. On MySQL, whose drivers only batch
``INSERT``, the rows become a derived table joined to the target: one statement per chunk::

    UPDATE t_node_info AS t JOIN (SELECT %s AS k0, %s AS v0 UNION ALL SELECT %s, %s ...) AS v
        ON t.node_name = v.k0 SET t.load_avg1 = v.v0, t.last_heartbeat = %s

(``CASE`` chains would be quadratic; ``INSERT ... ON DUPLICATE KEY UPDATE`` would create rows
for unknown keys.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["update_many"]


async def update_many(
    conn: AsyncConnection,
    table: Table,
    keys: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fixed: Mapping[str, Any],
    *,
    chunk: int,
) -> int:
    """For each row ``(key values..., column values...)``, update the row of ``table`` whose
    ``keys`` equal the key values: set ``columns`` to the row's values and ``fixed`` to the same
    values for all. Returns the number of rows matched. ``chunk`` rows per statement.

    Column names come from our code, never from input; values are always bound parameters.
    """
    if not rows:
        return 0
    for name in (*keys, *columns, *fixed):
        if name not in table.c:  # also guards the SQL text below against a stray name
            raise ValueError(f"{table.name} has no column {name!r}")
    width = len(keys) + len(columns)
    if conn.dialect.name == "sqlite":
        assignments = [f'"{c}" = ?' for c in (*columns, *fixed)]
        conditions = [f'"{k}" = ?' for k in keys]
        sql = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE {' AND '.join(conditions)}"
        tail = tuple(fixed.values())
        total = 0
        # In slices: each one is a short stretch of work, and the event loop (a registry
        # answering lookups) gets its turn between them.
        for start in range(0, len(rows), chunk):
            params = [
                (*row[len(keys) :], *tail, *row[: len(keys)]) for row in rows[start : start + chunk]
            ]
            result = await conn.exec_driver_sql(sql, params)
            total += max(result.rowcount, 0)
        return total
    aliases = [f"k{i}" for i in range(len(keys))] + [f"v{i}" for i in range(len(columns))]
    first = "SELECT " + ", ".join(f"%s AS {a}" for a in aliases)
    other = " UNION ALL SELECT " + ", ".join(["%s"] * width)
    on = " AND ".join(f"t.`{k}` = v.k{i}" for i, k in enumerate(keys))
    assignments = [f"t.`{c}` = v.v{i}" for i, c in enumerate(columns)]
    assignments += [f"t.`{c}` = %s" for c in fixed]
    set_clause = ", ".join(assignments)
    matched = 0
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        derived = first + other * (len(part) - 1)
        sql = f"UPDATE {table.name} AS t JOIN ({derived}) AS v ON {on} SET {set_clause}"
        flat: list[Any] = [value for row in part for value in row]
        flat.extend(fixed.values())
        result = await conn.exec_driver_sql(sql, tuple(flat))
        matched += max(result.rowcount, 0)
    return matched
