"""The database away while reports keep coming: StatObj keeps the closed windows in bounded
memory, answers every report at once, and writes them when the database returns.

MariaDB is reached through a TCP relay the test cuts and restores (a real outage as the
driver sees it: connections refused, pooled ones dead)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from monitor_support import served, stored_rows
from sqlalchemy.engine import make_url

from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.stat import StatService
from tarsus.protocol.gen import StatF
from tarsus.rpc.communicator import Communicator
from tarsus.store import open_store
from tarsus.testing import free_port

pytestmark = pytest.mark.mariadb


class Relay:
    """127.0.0.1:<port> -> the MariaDB server, until :meth:`cut`; :meth:`restore` brings it back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._pipes):
            w.close()
        self._pipes.clear()

    async def _relay(self, r1: asyncio.StreamReader, w1: asyncio.StreamWriter) -> None:
        r2, w2 = await asyncio.open_connection(*self.target)
        self._pipes |= {w1, w2}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(r1, w2), pipe(r2, w1))


@pytest.fixture
async def relayed(mariadb_url: str) -> AsyncIterator[tuple[Relay, str]]:
    server = make_url(mariadb_url)
    relay = Relay((server.host or "127.0.0.1", server.port or 3306))
    await relay.restore()
    through = mariadb_url.replace(f"{server.host}:{server.port}", f"127.0.0.1:{relay.port}")
    try:
        yield relay, through
    finally:
        await relay.cut()


def report(iface: str) -> dict[StatF.StatMicMsgHead, StatF.StatMicMsgBody]:
    head = StatF.StatMicMsgHead(masterName="Demo.A@1", slaveName="Demo.B", interfaceName=iface)
    return {head: StatF.StatMicMsgBody(count=1, totalRspTime=3, maxRspTime=3, minRspTime=3)}


async def test_reports_wait_for_the_database_and_are_written_when_it_returns(
    relayed: tuple[Relay, str],
) -> None:
    relay, url = relayed
    store = await open_store(url)
    settings = IngestSettings(window_s=1, flush_interval=0.2, max_pending_rows=3)
    try:
        async with served(StatService(store, settings)) as (stat, proxies):
            await relay.cut()
            async with Communicator() as comm:
                proxy = comm.string_to_proxy(StatF.StatFProxy, proxies["tars.tarsstat.StatObj"])
                for i in range(5):  # five windows while the database is away
                    # answered at once: a call waiting for the database would time out here
                    sent = proxy.reportMicMsg(report(f"f{i}"), True)
                    assert await asyncio.wait_for(sent, 5) == 0
                    await asyncio.sleep(1.0)
            assert not await stat.flush(everything=True)
            assert stat.sink.pending == 3  # bounded: the oldest windows were dropped
            assert stat.drops.backlog == 2
            await relay.restore()
            assert await stat.flush()
            assert stat.sink.pending == 0
            rows = await stored_rows(stat)
    finally:
        await store.close()
    assert sorted(r["interface_name"] for r in rows) == ["f2", "f3", "f4"]
