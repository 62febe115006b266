"""Shared by the stat/property tests: a framework service served on free ports, rows read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import select

from tarsus.framework.monitor.ingest import IngestService
from tarsus.framework.service import FrameworkService, host
from tarsus.rpc.application import Application

S = TypeVar("S", bound=FrameworkService)


@asynccontextmanager
async def served(service: S) -> AsyncIterator[tuple[S, dict[str, str]]]:
    """``service`` on free ports of 127.0.0.1; yields it and servant -> proxy string."""
    app = Application()
    endpoints = {name: "tcp -h 127.0.0.1 -p 0 -t 60000" for name, _port in service.spec.servants}
    host(app, service, endpoints)
    await app.start()
    try:
        yield (
            service,
            {a.servant_name: f"{a.servant_name}@{a.bound_endpoint}" for a in service.adapters},
        )
    finally:
        await app.stop(drain_timeout=1.0)


async def stored_rows(service: IngestService) -> list[dict[str, Any]]:
    """Every row of the service's hourly tables."""
    out: list[dict[str, Any]] = []
    for name in await service.tables.existing():
        table = service.tables.table(name)
        async with service.store.connect() as conn:
            out += [dict(r._mapping) for r in await conn.execute(select(table))]
    return out
