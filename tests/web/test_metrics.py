"""``GET /metrics``: real HTTP, the query services and the admin registry over real sockets,
the answer read with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tarsus.protocol.gen import AdminReg, MonitorQuery, TarsusMonitor
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.servant import served_together
from tarsus.testing import serve
from tarsus.web.metrics import MetricsSource, render
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings


class FakeQuery(MonitorQuery.MonitorQueryServant):  # type: ignore[misc]
    """A query service answering from ``days[date]`` (group key -> sums; keys start with
    the time flag, and only those in ``tflag1``..``tflag2`` are answered)."""

    def __init__(self, days: dict[str, dict[str, list[float]]]) -> None:
        self.days = days
        self.asked: list[Any] = []
        self.last_time = ""

    def _in_range(self, req: Any, data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if req.tflag1 <= k.split(",")[0] <= req.tflag2}

    async def query(self, req: Any) -> tuple[int, Any]:
        self.asked.append(req)
        return 0, MonitorQuery.MonitorQueryRsp(
            ret=0,
            lastTime=self.last_time,
            activeDb=1,
            totalDb=1,
            retThreads=[],
            result=self._in_range(req, self.days.get(req.date, {})),
        )


class FakeQueryWithLatency(FakeQuery):
    """Also answers our ``MonitorExt.queryLatency`` from ``buckets[date]``."""

    _tars_ops_ = served_together(MonitorQuery.MonitorQueryServant, TarsusMonitor.MonitorExtServant)

    def __init__(
        self,
        days: dict[str, dict[str, list[float]]],
        buckets: dict[str, dict[str, dict[int, int]]],
    ) -> None:
        super().__init__(days)
        self.buckets = buckets

    async def queryLatency(self, req: Any) -> tuple[int, dict[str, dict[int, int]], str]:
        return 0, self._in_range(req, self.buckets.get(req.date, {})), ""


class FakeAdmin(AdminReg.AdminRegServant):  # type: ignore[misc]
    async def getAllServerIds(self) -> tuple[list[list[str]], str]:
        return [
            ["Test.HelloServer_10.0.0.1", "active", "active", "tars_python"],
            ["Test.HelloServer_10.0.0.2", "active", "inactive", "tars_python"],
        ], ""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as rsp:
        return rsp.status, rsp.headers["content-type"], rsp.read().decode()


async def test_metrics_has_calls_properties_and_states_by_server_interface_node(
    tmp_path: Path,
) -> None:
    today = dt.date.today().strftime("%Y%m%d")
    stat = FakeQuery({today: {"0959,Test.HelloServer,sayHello,10.0.0.1": [90, 3, 7, 450]}})
    prop = FakeQuery(
        {
            today: {
                "0959,Test.HelloServer,orders,Sum,10.0.0.1": [5],
                "1000,Test.HelloServer,orders,Sum,10.0.0.1": [8],
            }
        }
    )
    async with (
        serve(stat, "tars.tarsquerystat.QueryObj") as stat_served,
        serve(prop, "tars.tarsqueryproperty.QueryObj") as prop_served,
        serve(FakeAdmin(), "tars.tarsAdminRegistry.AdminRegObj") as admin_served,
    ):
        settings = WebSettings(
            data_dir=tmp_path / "data",
            port=0,
            admin=admin_served.proxy_string,
            query_stat=stat_served.proxy_string,
            query_property=prop_served.proxy_string,
        )
        async with WebServer(settings) as server:
            status, ctype, text = await asyncio.to_thread(get, f"{server.url}/metrics")
            stat.days[today]["0959,Test.HelloServer,sayHello,10.0.0.1"] = [100, 3, 8, 500]
            _, _, later = await asyncio.to_thread(get, f"{server.url}/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    got = samples(text)
    where = (("interface", "sayHello"), ("node", "10.0.0.1"), ("server", "Test.HelloServer"))
    assert got["tarsus_calls_total", (*where[:2], ("result", "success"), where[2])] == 90
    assert got["tarsus_calls_total", (*where[:2], ("result", "timeout"), where[2])] == 3
    assert got["tarsus_calls_total", (*where[:2], ("result", "error"), where[2])] == 7
    assert got["tarsus_call_time_milliseconds_total", where] == 450
    orders = (
        ("node", "10.0.0.1"),
        ("policy", "Sum"),
        ("property", "orders"),
        ("server", "Test.HelloServer"),
    )
    assert got["tarsus_property", orders] == 8  # the latest window
    up = [(k[1], v) for k, v in got.items() if k[0] == "tarsus_server_up"]
    assert sorted((dict(labels)["node"], dict(labels)["present_state"], v) for labels, v in up) == [
        ("10.0.0.1", "active", 1.0),
        ("10.0.0.2", "inactive", 0.0),
    ]
    assert {
        dict(k[1])["source"]: v for k, v in got.items() if k[0] == "tarsus_scrape_source_up"
    } == {
        "stat": 1,
        "latency": 0,  # a query service without our MonitorExt: no histogram
        "property": 1,
        "admin": 1,
    }
    assert (
        samples(later)["tarsus_calls_total", (*where[:2], ("result", "success"), where[2])] == 100
    )


async def test_counters_keep_growing_across_midnight() -> None:
    stat = FakeQuery({"20260101": {"2359,A.B,f,n": [10, 0, 1, 20]}})
    clock = [dt.datetime(2026, 1, 1, 23, 59)]
    async with (
        serve(stat, "tars.tarsquerystat.QueryObj") as stat_served,
        Communicator() as comm,
    ):
        admin = comm.string_to_proxy(AdminReg.AdminRegProxy, "x@tcp -h 127.0.0.1 -p 1 -t 500")
        source = MetricsSource(
            comm,
            admin,
            query_stat=stat_served.proxy_string,
            query_property=stat_served.proxy_string,
            now=lambda: clock[0],
        )
        first = await source.snapshot()
        stat.days["20260101"]["2360,A.B,f,n"] = [2, 0, 0, 4]  # the day's last window landed
        stat.days["20260102"] = {"0001,A.B,f,n": [3, 0, 0, 6]}
        clock[0] = dt.datetime(2026, 1, 2, 0, 1)
        second = await source.snapshot()
    assert first.calls is not None and second.calls is not None
    assert first.calls[("A.B", "f", "n")].sums == [10, 0, 1, 20]
    assert second.calls[("A.B", "f", "n")].sums == [15, 0, 1, 30]
    assert not second.latency  # an upstream-like query service: no MonitorExt
    assert second.servers is None  # the admin registry down: only its family is missing


async def test_latency_histogram_is_cumulative_and_grows_across_midnight() -> None:
    key = "2300,A.B,f,n"
    stat = FakeQueryWithLatency(
        {"20260101": {key: [10, 0, 1, 200]}},
        {"20260101": {key: {5: 4, 10: 3, 50: 2}}},  # one success took 3000 ms or more
    )
    clock = [dt.datetime(2026, 1, 1, 23, 59)]
    async with (
        serve(stat, "tars.tarsquerystat.QueryObj") as stat_served,
        Communicator() as comm,
    ):
        admin = comm.string_to_proxy(AdminReg.AdminRegProxy, "x@tcp -h 127.0.0.1 -p 1 -t 500")
        source = MetricsSource(
            comm,
            admin,
            query_stat=stat_served.proxy_string,
            query_property=stat_served.proxy_string,
            now=lambda: clock[0],
        )
        first = samples(render(await source.snapshot()).decode())
        stat.days["20260102"] = {"0001,A.B,f,n": [2, 0, 0, 30]}
        stat.buckets["20260102"] = {"0001,A.B,f,n": {10: 1, 100: 1}}
        clock[0] = dt.datetime(2026, 1, 2, 0, 1)
        second = samples(render(await source.snapshot()).decode())
    where = (("interface", "f"), ("node", "n"), ("server", "A.B"))

    def histogram(got: dict[Any, float]) -> dict[str, float]:
        name = "tarsus_call_duration_milliseconds_bucket"
        return {
            dict(k[1])["le"]: v for k, v in got.items() if k[0] == name and set(where) <= set(k[1])
        }

    assert histogram(first) == {"5.0": 4, "10.0": 7, "50.0": 9, "+Inf": 10}
    assert first["tarsus_call_duration_milliseconds_count", where] == 10
    assert first["tarsus_call_duration_milliseconds_sum", where] == 200
    assert histogram(second) == {"5.0": 4, "10.0": 8, "50.0": 10, "100.0": 11, "+Inf": 12}
    assert second["tarsus_call_duration_milliseconds_sum", where] == 230
    assert second["tarsus_scrape_source_up", (("source", "latency"),)] == 1


async def test_without_monitor_ext_the_histogram_is_left_out(tmp_path: Path) -> None:
    today = dt.date.today().strftime("%Y%m%d")
    stat = FakeQuery({today: {"0001,A.B,f,n": [1, 0, 0, 2]}})
    async with serve(stat, "tars.tarsquerystat.QueryObj") as stat_served, Communicator() as comm:
        admin = comm.string_to_proxy(AdminReg.AdminRegProxy, "x@tcp -h 127.0.0.1 -p 1 -t 500")
        source = MetricsSource(
            comm,
            admin,
            query_stat=stat_served.proxy_string,
            query_property=stat_served.proxy_string,
        )
        got = samples(render(await source.snapshot()).decode())
    assert not [k for k in got if k[0].startswith("tarsus_call_duration")]
    assert got["tarsus_scrape_source_up", (("source", "latency"),)] == 0
    assert got["tarsus_scrape_source_up", (("source", "stat"),)] == 1


async def test_each_scrape_reads_only_the_windows_not_yet_complete() -> None:
    """Windows up to the stat writers' ``lastTime`` (less a minute) are read once and kept;
    later scrapes ask only for the flags after them, and the counters still add up."""
    day = "20260101"
    stat = FakeQueryWithLatency(
        {day: {"1001,A.B,f,n": [5, 0, 0, 10], "1002,A.B,f,n": [1, 0, 0, 2]}},
        {day: {"1001,A.B,f,n": {5: 5}, "1002,A.B,f,n": {5: 1}}},
    )
    stat.last_time = "2026-01-01 10:03:00"  # windows up to 1003 written: up to 1002 is safe
    async with serve(stat, "tars.tarsquerystat.QueryObj") as served, Communicator() as comm:
        admin = comm.string_to_proxy(AdminReg.AdminRegProxy, "x@tcp -h 127.0.0.1 -p 1 -t 500")
        source = MetricsSource(
            comm,
            admin,
            query_stat=served.proxy_string,
            query_property=served.proxy_string,
            now=lambda: dt.datetime(2026, 1, 1, 10, 4),
        )
        first = await source.snapshot()  # all read, nothing known complete before it began
        stat.days[day]["1003,A.B,f,n"] = [2, 0, 0, 4]
        stat.buckets[day]["1003,A.B,f,n"] = {10: 2}
        stat.asked.clear()
        second = await source.snapshot()  # 1001..1002 kept for good, 1003 pending
        stat.asked.clear()
        third = await source.snapshot()
    assert first.calls is not None and second.calls is not None and third.calls is not None
    assert first.calls[("A.B", "f", "n")].sums == [6, 0, 0, 12]
    assert second.calls[("A.B", "f", "n")].sums == [8, 0, 0, 16]
    assert third.calls[("A.B", "f", "n")].sums == [8, 0, 0, 16]
    assert third.calls[("A.B", "f", "n")].buckets == {5: 6, 10: 2}
    stat_asks = [r.tflag1 for r in stat.asked if r.dataid == "tars_stat"]
    assert stat_asks == ["1003"]  # the third scrape: only what was not complete
