"""Alembic environment for the Tarsus database.

Normally run by :func:`tarsus.store.migrate.upgrade`, which hands over an open (sync-facing)
connection in ``config.attributes["connection"]``; the caller owns its transaction and lock.

Run by the ``alembic`` command instead (``alembic -c <ini> upgrade head`` with
``script_location = tarsus.store:migrations`` and ``sqlalchemy.url`` set), it opens an async
engine from ``sqlalchemy.url`` itself, or writes SQL with ``--sql``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import tarsus.store.ddl  # noqa: F401  (registers the MySQL/SQLite column DDL)
from tarsus.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


_given = config.attributes.get("connection")
if _given is not None:
    _run(_given)
elif context.is_offline_mode():
    _run_offline()
else:
    _url = config.get_main_option("sqlalchemy.url")
    if not _url:
        raise RuntimeError("set sqlalchemy.url, or migrate with tarsus.store.open_store()")
    asyncio.run(_run_async(_url))
