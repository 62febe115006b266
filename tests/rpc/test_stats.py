"""Call statistics to tarsstat and properties to tarsproperty: what those services receive,
over real sockets, from real calls.

Recording ``StatF`` and ``PropertyF`` servants stand in for tarsstat and tarsproperty (the
real interfaces, served by ``tarsus.testing.serve``); a business servant is called through
real proxies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import tarsus
import tarsus.idl
from tarsus.protocol.gen import PropertyF, StatF
from tarsus.rpc.client import CallRecord
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import InvokeTimeout, NoEndpointError, ServerError, TarsError
from tarsus.rpc.property import (
    Avg,
    Count,
    Distr,
    Max,
    Min,
    Property,
    PropertyReporter,
    Sum,
    format_decimal,
)
from tarsus.rpc.server import Adapter
from tarsus.rpc.stats import INTERVAL_BOUNDS, StatReporter, split_by_size
from tarsus.testing import Served, eventually, free_port, serve

VERSION = tarsus.__version__

IDL = """
module Demo {
    interface Calc {
        int add(int a, int b, out int sum);
        int fail(int how);
        int slow(int ms);
        void note(string text);
    };
};
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("stats") / "Demo.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Demo


@pytest.fixture(scope="module")
def calc_impl(demo: Any) -> Any:
    class CalcImpl(demo.CalcServant):  # type: ignore[misc,name-defined]
        async def add(self, a: int, b: int) -> tuple[int, int]:
            return 0, a + b

        async def fail(self, how: int) -> int:
            if how == 1:
                raise ValueError("bad value")
            raise TarsError(12345, "chosen by the servant")

        async def slow(self, ms: int) -> int:
            await asyncio.sleep(ms / 1000)
            return ms

        async def note(self, text: str) -> None:
            return None

    return CalcImpl


class RecordingStat(StatF.StatFServant):  # type: ignore[misc]
    """tarsstat's interface, keeping every report it gets."""

    def __init__(self) -> None:
        self.reports: list[tuple[dict[Any, Any], bool]] = []

    async def reportMicMsg(self, msg: dict[Any, Any], bFromClient: bool) -> int:
        self.reports.append((dict(msg), bFromClient))
        return 0

    async def reportSampleMsg(self, msg: list[Any]) -> int:
        return 0

    def rows(self, from_client: bool) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for msg, flag in self.reports:
            if flag == from_client:
                assert not set(out) & set(msg), "a head was reported twice in one flush"
                out.update(msg)
        return out


@pytest.fixture
async def stat_service() -> AsyncIterator[tuple[RecordingStat, Served]]:
    servant = RecordingStat()
    async with serve(servant, "tars.tarsstat.StatObj") as served:
        yield servant, served


def by_func(rows: dict[Any, Any], slave: str) -> dict[tuple[str, int], tuple[Any, Any]]:
    """(interfaceName, returnValue) → (head, body), for the rows about ``slave``."""
    out = {}
    for head, body in rows.items():
        if head.slaveName == slave:
            key = (head.interfaceName, head.returnValue)
            assert key not in out
            out[key] = (head, body)
    return out


def in_buckets(body: Any) -> int:
    assert sorted(body.intervalCount) == list(INTERVAL_BOUNDS)  # every bucket, as C++ sends
    return sum(body.intervalCount.values())


async def test_client_and_server_sides_report_what_happened(
    demo: Any, calc_impl: Any, stat_service: tuple[RecordingStat, Served]
) -> None:
    stat, stat_served = stat_service
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as calc_served:
        port = calc_served.adapter.port
        async with Communicator() as client_comm, Communicator() as server_comm:
            client_stats = StatReporter(client_comm, stat_served.proxy_string, "Demo.Caller")
            client_stats.attach_client(client_comm)
            server_stats = StatReporter(server_comm, stat_served.proxy_string, "Demo.CalcServer")
            server_stats.attach_server(calc_served.adapter)

            calc = client_comm.string_to_proxy(demo.CalcProxy, calc_served.proxy_string)
            await calc.tars_oneway().note("one way")  # one-way: counted by the server only
            for i in range(5):
                assert await calc.add(i, 1) == (0, i + 1)
            for how, code in ((1, -99), (1, -99), (2, 12345)):
                with pytest.raises(ServerError) as e:
                    await calc.fail(how)
                assert e.value.code == code
            with pytest.raises(InvokeTimeout):
                await calc.with_options(timeout_ms=50).slow(300)
            assert await calc.slow(120) == 120
            while calc_served.adapter.tasks:  # the timed-out call still finishes on the server
                await asyncio.sleep(0.01)

            await client_stats.flush()
            await server_stats.flush()
            assert client_stats.failed == server_stats.failed == 0

    client = by_func(stat.rows(from_client=True), "Demo.CalcServer")
    assert set(client) == {("add", 0), ("fail", -99), ("fail", 12345), ("slow", -7), ("slow", 0)}
    for head, _ in client.values():
        assert head.masterName == f"Demo.Caller@{VERSION}"
        assert (head.masterIp, head.slaveIp, head.slavePort) == ("", "127.0.0.1", port)
        assert (head.slaveSetName, head.slaveSetArea, head.slaveSetID, head.tarsVersion) == (
            ("", "", "", "")
        )
    _, add = client["add", 0]
    assert (add.count, add.timeoutCount, add.execCount, in_buckets(add)) == (5, 0, 0, 5)
    assert add.minRspTime <= add.maxRspTime <= add.totalRspTime
    _, failed = client["fail", -99]
    assert (failed.count, failed.timeoutCount, failed.execCount, in_buckets(failed)) == (0, 0, 2, 0)
    assert (failed.totalRspTime, failed.maxRspTime, failed.minRspTime) == (0, 0, 0)
    assert client["fail", 12345][1].execCount == 1
    _, timed_out = client["slow", -7]
    assert (timed_out.count, timed_out.timeoutCount, timed_out.execCount) == (0, 1, 0)
    _, slow = client["slow", 0]
    assert slow.count == 1 and slow.maxRspTime >= 119
    assert slow.minRspTime == slow.maxRspTime == slow.totalRspTime
    assert [n for bound, n in slow.intervalCount.items() if n] == [1]
    assert all(n == 0 for bound, n in slow.intervalCount.items() if bound <= 120)

    server = by_func(stat.rows(from_client=False), "Demo.CalcServer")
    assert set(server) == {("note", 0), ("add", 0), ("fail", -99), ("fail", 12345), ("slow", 0)}
    for (func, _), (head, _) in server.items():
        expected_master = "one_way_client" if func == "note" else "stat_from_server"
        assert head.masterName == expected_master
        assert (head.masterIp, head.slaveIp, head.slavePort) == ("127.0.0.1", "", 0)
    assert server["note", 0][1].count == 1
    assert server["add", 0][1].count == 5 and in_buckets(server["add", 0][1]) == 5
    assert server["fail", -99][1].execCount == 2
    assert server["fail", 12345][1].execCount == 1
    _, slow = server["slow", 0]
    assert slow.count == 2 and slow.timeoutCount == 0  # the server answered both
    # uvloop's timers tick in whole ms and may fire up to 1 ms early
    assert slow.maxRspTime >= 299 and 119 <= slow.minRspTime < slow.maxRspTime
    assert slow.totalRspTime >= 418 and in_buckets(slow) == 2


def record(
    elapsed: float,
    code: int = 0,
    *,
    obj: str = "Demo.CalcServer.CalcObj",
    func: str = "add",
    endpoint: Endpoint | None = None,
) -> CallRecord:
    ep = endpoint or Endpoint("tcp", "10.0.0.1", 1000)
    return CallRecord(obj, func, ep, code, elapsed)


async def test_latency_buckets_min_and_max_follow_cxx(
    stat_service: tuple[RecordingStat, Served],
) -> None:
    """Bucket bound b counts times t < b; 3000 ms and more fall in no bucket; the minimum
    is the smallest non-zero time; failures carry no time."""
    stat, stat_served = stat_service
    async with Communicator() as comm:
        stats = StatReporter(comm, stat_served.proxy_string, "Demo.Caller")
        for elapsed in (0.0, 0.0049, 0.005, 0.0499, 0.05, 2.9999, 3.0, 12.5):
            stats.observe_call(record(elapsed))
        stats.observe_call(record(0.001, -7))
        stats.observe_call(record(0.001, -7))
        stats.observe_call(record(0.001, -8))
        await stats.flush()

    rows = by_func(stat.rows(from_client=True), "Demo.CalcServer")
    _, ok = rows["add", 0]
    assert ok.intervalCount == {
        5: 2,  # 0 and 4.9 ms
        10: 1,  # 5 ms is not < 5
        50: 1,
        100: 1,
        200: 0,
        500: 0,
        1000: 0,
        2000: 0,
        3000: 1,  # 2999 ms
    }
    assert (ok.count, ok.timeoutCount, ok.execCount) == (8, 0, 0)
    assert ok.totalRspTime == 0 + 4 + 5 + 49 + 50 + 2999 + 3000 + 12500
    assert (ok.minRspTime, ok.maxRspTime) == (4, 12500)
    _, timeouts = rows["add", -7]
    assert (timeouts.count, timeouts.timeoutCount, timeouts.execCount) == (0, 2, 0)
    assert rows["add", -8][1].execCount == 1


async def test_heads_name_sets_and_merge_servants_of_one_server() -> None:
    async with Communicator() as comm:
        stats = StatReporter(
            comm,
            "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 1",
            "Demo.Caller",
            set_division="app.sz.1",
        )
        in_set = Endpoint("tcp", "10.0.0.2", 2000, set_id="app.sh.2")
        plain = Endpoint("tcp", "10.0.0.1", 1000)
        # Two servants of one server on one endpoint: one row, as C++ merges them.
        stats.observe_call(record(0.002, obj="Demo.CalcServer.AObj", endpoint=plain))
        stats.observe_call(record(0.007, obj="Demo.CalcServer.BObj", endpoint=plain))
        stats.observe_call(record(0.0, obj="Demo.CalcServer.BObj", endpoint=plain))
        stats.observe_call(record(0.001, obj="Demo.CalcServer.AObj", endpoint=in_set))
        stats.observe_call(record(0.001, obj="NoDots", endpoint=plain))
        client, server = stats.take()
        assert server == {}
        assert stats.take() == ({}, {})  # taken means gone

    heads = {(h.slaveName, h.slaveIp): (h, b) for h, b in client.items()}
    assert set(heads) == {
        ("Demo.CalcServer", "10.0.0.1"),
        ("Demo.CalcServer.appsh2", "10.0.0.2"),
        ("NoDots", "10.0.0.1"),
    }
    head, merged = heads["Demo.CalcServer", "10.0.0.1"]
    assert head.masterName == f"Demo.Caller.appsz1@{VERSION}"
    assert (merged.count, merged.minRspTime, merged.maxRspTime, merged.totalRspTime) == (3, 2, 7, 9)
    assert merged.intervalCount[5] == 2 and merged.intervalCount[10] == 1
    head, _ = heads["Demo.CalcServer.appsh2", "10.0.0.2"]
    assert (head.slaveSetName, head.slaveSetArea, head.slaveSetID, head.slavePort) == (
        ("app", "sh", "2", 2000)
    )


async def test_server_side_heads_in_a_set(
    demo: Any, calc_impl: Any, stat_service: tuple[RecordingStat, Served]
) -> None:
    stat, stat_served = stat_service
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as calc_served:
        stats = StatReporter(
            calc_served.communicator,
            stat_served.proxy_string,
            "Demo.CalcServer",
            set_division="app.sz.1",
        )
        stats.attach_server(calc_served.adapter)
        assert await calc_served.proxy(demo.CalcProxy).add(1, 2) == (0, 3)
        await stats.flush()
    ((head, body),) = stat.rows(from_client=False).items()
    assert head.masterName == "stat_from_server"
    assert head.slaveName == "Demo.CalcServer.appsz1"
    assert (head.slaveSetName, head.slaveSetArea, head.slaveSetID) == ("app", "sz", "1")
    assert (head.interfaceName, head.returnValue, body.count) == ("add", 0, 1)


async def test_stat_service_down_never_breaks_calls(
    demo: Any, calc_impl: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tarsus.rpc.stats")
    down = f"tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p {free_port()}"
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as calc_served:
        comm = calc_served.communicator
        stats = StatReporter(comm, down, "Demo.CalcServer")
        stats.attach_client(comm)
        stats.attach_server(calc_served.adapter)
        calc = calc_served.proxy(demo.CalcProxy)
        for round_ in range(3):
            assert await calc.add(round_, 1) == (0, round_ + 1)
            await stats.flush()  # returns; the batch is dropped
            assert await calc.add(round_, 2) == (0, round_ + 2)
        await stats.stop()
    # 3 rounds of client and server rows, plus stop's flush (its own failed calls)
    assert stats.sent >= 6 and stats.failed == stats.sent
    warnings = [
        r for r in caplog.records if r.name == "tarsus.rpc.stats" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1 and "dropped" in warnings[0].getMessage()


async def test_reports_are_split_to_the_size_limit(
    stat_service: tuple[RecordingStat, Served],
) -> None:
    stat, stat_served = stat_service
    op = StatF.StatFServant._tars_ops_["reportMicMsg"]
    async with Communicator() as comm:
        stats = StatReporter(comm, stat_served.proxy_string, "Demo.Caller", max_report_size=500)
        assert stats.max_report_size == 500
        funcs = [f"function_with_a_long_name_{i:03d}" for i in range(60)]
        for func in funcs:
            stats.observe_call(record(0.003, func=func))
        await stats.flush()
    assert len(stat.reports) > 1
    for msg, from_client in stat.reports:
        assert from_client is True
        assert len(op.encode_args((msg, from_client))) <= 500
    assert sorted(h.interfaceName for h in stat.rows(from_client=True)) == funcs


def test_split_by_size_keeps_oversized_entries_whole() -> None:
    big = StatF.StatMicMsgHead(masterName="m" * 600, slaveName="s", interfaceName="f")
    small = StatF.StatMicMsgHead(masterName="m", slaveName="s", interfaceName="g")
    body = StatF.StatMicMsgBody(intervalCount={5: 1})
    batches = split_by_size([(small, body), (big, body), (small, body)], 500)
    assert batches == [{small: body}, {big: body}, {small: body}]
    assert split_by_size([], 500) == []


async def test_settings_take_upstream_limits() -> None:
    async with Communicator() as comm:
        name = "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 1"
        stats = StatReporter(
            comm,
            name,
            "\tDemo.Caller\r",
            report_interval_ms=1000,
            report_timeout_ms=10,
            max_report_size=100,
        )
        assert stats.report_interval_ms == 10_000  # floor 10 s
        assert stats.report_timeout_ms == 5_000  # floor 5 s
        assert stats.max_report_size == 1400  # out of [500, 1400]: the default, as C++
        assert stats.module_name == "Demo.Caller"  # trimmed of \r and \t, as C++
        assert StatReporter(comm, name, "M" * 300).module_name == "M" * 127
        with pytest.raises(NoEndpointError):
            StatReporter(comm, "tars.tarsstat.StatObj", "Demo.Caller")  # no locator
        with pytest.raises(ValueError, match="module_name"):
            StatReporter(comm, name, "")


async def test_an_adapter_reports_to_one_reporter() -> None:
    adapter = Adapter(RecordingStat(), "tars.tarsstat.StatObj", "tcp -h 127.0.0.1 -p 0")
    name = "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 1"
    async with Communicator() as comm:
        first = StatReporter(comm, name, "Demo.A")
        second = StatReporter(comm, name, "Demo.B")
        first.attach_server(adapter)
        first.attach_server(adapter)  # again: no change
        with pytest.raises(ValueError, match="already reports"):
            second.attach_server(adapter)
        first.detach()
        assert adapter.stats_hook is None
        second.attach_server(adapter)
        assert adapter.stats_hook == second.observe_request


async def test_background_reports_then_stop_sends_the_rest(
    demo: Any, calc_impl: Any, stat_service: tuple[RecordingStat, Served]
) -> None:
    stat, stat_served = stat_service
    async with (
        serve(calc_impl(), "Demo.CalcServer.CalcObj") as calc_served,
        Communicator() as comm,
    ):
        stats = StatReporter(
            comm,
            stat_served.proxy_string,
            "Demo.Caller",
            report_interval_ms=50,
            min_report_interval_ms=0,
        )
        stats.attach_client(comm)
        calc = comm.string_to_proxy(demo.CalcProxy, calc_served.proxy_string)
        await stats.start()
        assert stats.running
        await calc.add(1, 1)
        await eventually(lambda: stat.reports, "a report to the stat service")
        await calc.add(2, 2)
        await stats.stop()
        assert not stats.running and stats.observe_call not in comm.observers
        await calc.add(3, 3)  # after stop: not counted
        await stats.flush()

    adds = [
        body.count
        for msg, _ in stat.reports
        for head, body in msg.items()
        if head.slaveName == "Demo.CalcServer" and head.interfaceName == "add"
    ]
    assert sum(adds) == 2


# -- properties (PropertyF.reportPropMsg) ------------------------------------------------------


class RecordingProperty(PropertyF.PropertyFServant):  # type: ignore[misc]
    """tarsproperty's interface, keeping every report it gets."""

    def __init__(self) -> None:
        self.reports: list[dict[Any, Any]] = []

    async def reportPropMsg(self, statmsg: dict[Any, Any]) -> int:
        self.reports.append(dict(statmsg))
        return 0

    def values(self) -> dict[tuple[str, str], dict[str, str]]:
        """(moduleName, propertyName) → {policy: value} over every report so far."""
        out: dict[tuple[str, str], dict[str, str]] = {}
        for msg in self.reports:
            for head, body in msg.items():
                out[head.moduleName, head.propertyName] = {i.policy: i.value for i in body.vInfo}
        return out


@pytest.fixture
async def property_service() -> AsyncIterator[tuple[RecordingProperty, Served]]:
    servant = RecordingProperty()
    async with serve(servant, "tars.tarsproperty.PropertyObj") as served:
        yield servant, served


async def test_properties_reach_tarsproperty_in_upstream_formats(
    property_service: tuple[RecordingProperty, Served],
) -> None:
    prop_service, served = property_service
    async with Communicator() as comm:
        props = PropertyReporter(comm, served.proxy_string, "Demo.CalcServer")
        queue = props.create("queue", Sum(), Avg(), Max(), Min(), Count())
        assert props.create("queue", Sum()) is queue  # made once, as C++
        latency = props.create("latency", Distr([50, 5, 10, 5]), Count())
        other = props.create("memsize", Max(), master_name="Demo.Other")
        for value in (3, 0, 4):
            queue.report(value)
        for value in (1, 5, 9, 50, 100):
            latency.report(value)
        other.report(-5)
        await props.flush()
        first = prop_service.values()
        prop_service.reports.clear()
        await props.flush()  # a quiet interval is still reported
        quiet = prop_service.values()

    assert first == {
        ("Demo.CalcServer", "queue"): {
            "Sum": "7",
            "Avg": "2.333333",
            "Max": "4",
            "Min": "3",
            "Count": "3",
        },
        ("Demo.CalcServer", "latency"): {"Distr": "5|1,10|2,50|0,max|2", "Count": "5"},
        ("Demo.Other", "memsize"): {"Max": "-5"},
    }
    assert quiet == {
        ("Demo.CalcServer", "queue"): {"Sum": "0", "Avg": "0", "Max": "0", "Count": "0"},
        ("Demo.CalcServer", "latency"): {"Distr": "5|0,10|0,50|0,max|0", "Count": "0"},
        ("Demo.Other", "memsize"): {"Max": "0"},
    }
    head = next(iter(prop_service.reports[0]))
    assert (head.ip, head.setName, head.iPropertyVer) == ("", "", 2)


async def test_property_heads_in_a_set_and_split_reports(
    property_service: tuple[RecordingProperty, Served],
) -> None:
    prop_service, served = property_service
    op = PropertyF.PropertyFServant._tars_ops_["reportPropMsg"]
    async with Communicator() as comm:
        props = PropertyReporter(
            comm,
            served.proxy_string,
            "Demo.CalcServer",
            set_division="app.sz.1",
            max_report_size=500,
        )
        names = [f"a_rather_long_property_name_{i:02d}" for i in range(40)]
        for name in names:
            props.create(name, Sum(), Distr([5, 10, 50, 100, 200])).report(7)
        await props.flush()
    assert len(prop_service.reports) > 1
    for msg in prop_service.reports:
        assert len(op.encode_args((msg,))) <= 500
    heads = [h for msg in prop_service.reports for h in msg]
    assert sorted(h.propertyName for h in heads) == names
    assert {(h.moduleName, h.setName, h.setArea, h.setID) for h in heads} == {
        ("Demo.CalcServer.appsz1", "app", "sz", "1")
    }


async def test_property_service_down_drops_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    down = f"tars.tarsproperty.PropertyObj@tcp -h 127.0.0.1 -p {free_port()}"
    async with Communicator() as comm:
        props = PropertyReporter(comm, down, "Demo.CalcServer")
        props.create("queue", Sum()).report(1)
        await props.flush()
        await props.flush()
    assert props.sent == props.failed == 2
    warnings = [
        r
        for r in caplog.records
        if r.name == "tarsus.rpc.property" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1 and "dropped" in warnings[0].getMessage()


def test_policy_edge_cases() -> None:
    assert [format_decimal(v) for v in (2.5, 3.0, 1 / 3, 100.0, 0.0, -1.5)] == [
        "2.5",
        "3",
        "0.333333",
        "100",
        "0",
        "-1.5",
    ]
    with pytest.raises(ValueError, match="twice"):
        Property("p", [Sum(), Sum()])
    with pytest.raises(ValueError, match="at least one"):
        Property("p", [])
    with pytest.raises(ValueError, match="bound"):
        Distr([])
    low = Min()
    for value in (0, 9, 0, 4, 6):
        low.add(value)
    assert (low.take(), low.take()) == ("4", None)  # zeros ignored; none → not sent


async def test_a_stopping_server_does_not_wait_for_a_stat_service_that_never_answers(
    demo: Any, calc_impl: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A framework host cut off (connections taken, nothing answered): the server's last
    report is dropped within the stop's time, not waited for until the node kills it."""
    held: list[asyncio.StreamWriter] = []

    async def take(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # the connection stays open, and nothing ever answers

    silent = await asyncio.start_server(take, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    app = tarsus.rpc.application.Application()
    adapter = app.add_servant(calc_impl(), "Demo.CalcServer.CalcObj", "tcp -h 127.0.0.1 -p 0")
    await app.start()
    try:
        stats = StatReporter(
            app.communicator,
            f"tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p {port} -t 60000",
            "Demo.CalcServer",
        )
        stats.attach_server(adapter)
        app.stats = stats
        async with Communicator() as comm:
            calc = comm.string_to_proxy(
                demo.CalcProxy, f"Demo.CalcServer.CalcObj@{adapter.bound_endpoint}"
            )
            assert await calc.add(1, 2) == (0, 3)
        with caplog.at_level(logging.WARNING, logger="tarsus.rpc.application"):
            await app.stop(drain_timeout=0.5)
        assert "last reports to the framework not sent" in caplog.text
        assert not app.started
    finally:
        silent.close()
        for writer in held:
            writer.close()
