"""StatObj on real sockets: what a server's StatReporter reports lands in tars_stat_YYYYMMDDHH."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from monitor_support import served, stored_rows

import tarsus.idl
from tarsus.conf import TCConfig
from tarsus.framework.allinone import AllInOneSettings, framework_profile
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.property import PROPERTY_SPEC
from tarsus.framework.stat import STAT_SPEC, StatService
from tarsus.protocol.gen import StatF
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.stats import StatReporter
from tarsus.store import Store
from tarsus.testing import eventually, serve

IDL = """
module Demo { interface Echo { int echo(string s, out string r); }; };
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("statidl") / "Demo.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Demo


def settings(**kw: Any) -> IngestSettings:
    return IngestSettings(window_s=1, flush_interval=0.1, source_id="10.0.0.9", **kw)


async def test_a_servers_reports_become_rows(store: Store, demo: Any) -> None:
    class Echo(demo.EchoServant):  # type: ignore[misc,name-defined]
        async def echo(self, s: str) -> tuple[int, str]:
            return 0, s

    async with served(StatService(store, settings())) as (stat, proxies):
        async with serve(Echo(), "Demo.EchoServer.EchoObj") as echo, Communicator() as comm:
            reporter = StatReporter(comm, proxies["tars.tarsstat.StatObj"], "Demo.EchoServer")
            reporter.attach_server(echo.adapter)
            proxy = comm.string_to_proxy(demo.EchoProxy, echo.proxy_string)
            for _ in range(7):
                assert await proxy.echo("x") == (0, "x")
            await reporter.flush()
            assert reporter.failed == 0

        async def written() -> list[dict[str, Any]]:
            return [r for r in await stored_rows(stat) if r["interface_name"] == "echo"]

        rows = await eventually(written, "the echo row in tars_stat")
    assert len(rows) == 1
    row = rows[0]
    assert row["master_name"] == "stat_from_server"
    assert row["slave_name"] == "Demo.EchoServer"
    assert row["slave_ip"] == "127.0.0.1"  # the reporter's address, filled in by StatObj
    assert row["succ_count"] == 7 and row["exce_count"] == row["timeout_count"] == 0
    assert row["source_id"] == "10.0.0.9"
    assert sum(int(p.split("|")[1]) for p in row["interv_count"].split(",")) == 7
    assert len(row["f_tflag"]) == 4 and str(row["f_date"])[:4] == time.strftime("%Y")
    assert await stat.tables.last_complete() != ""


def head(**kw: Any) -> StatF.StatMicMsgHead:
    base: dict[str, Any] = dict(
        masterName="Demo.Caller@1.2.3", slaveName="Demo.Callee", interfaceName="f"
    )
    base.update(kw)
    return StatF.StatMicMsgHead(**base)


def body(**kw: Any) -> StatF.StatMicMsgBody:
    base: dict[str, Any] = dict(count=1, totalRspTime=5, maxRspTime=5, minRspTime=5)
    base.update(kw)
    return StatF.StatMicMsgBody(**base)


async def test_reports_of_a_window_add_up_and_bad_ones_are_dropped(store: Store) -> None:
    stat = StatService(store, settings(max_keys_per_source=3))
    agg = stat.aggregator
    now = time.time()
    agg.add({head(): body(intervalCount={10: 1})}, True, "10.1.1.1", now)
    agg.add(
        {head(): body(count=2, maxRspTime=9, minRspTime=2, totalRspTime=11, intervalCount={10: 2})},
        True,
        "10.1.1.1",
        now,
    )
    agg.add(
        {
            head(interfaceName="neg"): body(count=-1),
            head(interfaceName="zero"): body(count=0),
            head(interfaceName="buckets"): body(intervalCount={i: 1 for i in range(100)}),
        },
        True,
        "10.1.1.1",
        now,
    )
    # a flood: one caller may add 3 rows to a window
    agg.add({head(interfaceName=f"flood{i}"): body() for i in range(10)}, True, "10.1.1.2", now)
    assert (agg.drops.absurd, agg.drops.empty, agg.drops.flood) == (2, 1, 7)
    await stat.flush(everything=True)
    rows = {r["interface_name"]: r for r in await stored_rows(stat)}
    assert set(rows) == {"f", "flood0", "flood1", "flood2"}
    f = rows["f"]
    assert (f["master_name"], f["tars_version"], f["master_ip"]) == (
        "Demo.Caller",
        "1.2.3",
        "10.1.1.1",
    )
    assert (f["succ_count"], f["total_time"], f["maxrsp_time"], f["minrsp_time"]) == (3, 16, 9, 2)
    assert f["interv_count"] == "10|3" and f["ave_time"] == 5


def test_tarsus_up_stat_window_reaches_the_services_profiles(tmp_path: Path) -> None:
    """``tarsus up --stat-window 5``: in the processes layout the stat and property services
    read their window from the profile of their row."""
    up = AllInOneSettings(data_dir=tmp_path, stat_window=5)
    for spec in (STAT_SPEC, PROPERTY_SPEC):
        tc = TCConfig.parse(framework_profile(up, spec))
        got = IngestSettings.from_tcconfig(tc, reserve_key="stat_reserve_time", source_id="x")
        assert got.window_s == 5
    default = TCConfig.parse(framework_profile(AllInOneSettings(data_dir=tmp_path), STAT_SPEC))
    assert IngestSettings.from_tcconfig(default, reserve_key="k", source_id="x").window_s == 60


async def test_tables_older_than_the_retention_are_dropped(store: Store) -> None:
    stat = StatService(store, settings())  # reserve_days = 31
    old = time.strftime("%Y%m%d", time.localtime(time.time() - 40 * 86400))
    recent = time.strftime("%Y%m%d", time.localtime(time.time() - 2 * 86400))
    row = ("2020-01-01 00:01:00", "2020-01-01", "0001", "s", "m", "sl", "f", "v", "", "", 0, 0)
    row += (1, 0, 0, "", 1, 1, 1, 1)
    for day in (old, recent):
        await stat.tables.write(f"{day}05", [row])
    assert await stat.purge() == [f"tars_stat_{old}05"]
    assert await stat.tables.existing() == [f"tars_stat_{recent}05"]
