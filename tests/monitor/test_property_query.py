"""PropertyObj and the two MonitorQuery servants on real sockets: a PropertyReporter's policies
stored as upstream stores them, and curves/group-by read back through QueryObj proxies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from monitor_support import served, stored_rows

from tarsus.framework.monitor.query import parse_buckets
from tarsus.framework.monitor.query_service import QueryPropertyService, QueryStatService
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.property import PropertyService
from tarsus.framework.stat import StatService
from tarsus.protocol.gen import MonitorQuery, PropertyF, StatF, TarsusMonitor
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import ServerError
from tarsus.rpc.property import Avg, Count, Distr, Max, Min, PropertyReporter, Sum
from tarsus.store import Store

OP = MonitorQuery.OP


def settings() -> IngestSettings:
    return IngestSettings(window_s=3600, flush_interval=0.1, source_id="10.0.0.9")


async def test_policies_are_merged_as_upstream(store: Store) -> None:
    async with served(PropertyService(store, settings())) as (prop, proxies):
        async with Communicator() as comm:
            reporter = PropertyReporter(comm, proxies["tars.tarsproperty.PropertyObj"], "Demo.Srv")
            queue = reporter.create("queue", Sum(), Avg(), Max(), Min(), Count())
            latency = reporter.create("latency", Distr([10, 100]))
            for v in (4, 2, 9):
                queue.report(v)
            for v in (1, 50, 500):
                latency.report(v)
            await reporter.flush()
            queue.report(1)  # a second report in the same window
            await reporter.flush()
        # a caller sending rubbish: dropped, counted, nothing else hurt
        async with Communicator() as comm:
            raw = comm.string_to_proxy(
                PropertyF.PropertyFProxy, proxies["tars.tarsproperty.PropertyObj"]
            )
            head = PropertyF.StatPropMsgHead(moduleName="Demo.Srv", propertyName="bad")
            bad = [
                PropertyF.StatPropInfo("Sum", "not a number"),
                PropertyF.StatPropInfo("Max", "inf"),
                PropertyF.StatPropInfo("Distr", "5|x"),
                PropertyF.StatPropInfo("Median", "3"),
            ]
            assert await raw.reportPropMsg({head: PropertyF.StatPropMsgBody(bad)}) == 0
        await prop.flush(everything=True)
    assert prop.drops.absurd == 3 and prop.drops.malformed == 1
    rows = {(r["property_name"], r["policy"]): r for r in await stored_rows(prop)}
    values = {k: r["value"] for k, r in rows.items()}
    assert values == {
        ("queue", "Sum"): "16",
        # our client sends each interval's mean (5, then 1): a bare value counts once
        ("queue", "Avg"): "3",
        ("queue", "Max"): "9",
        ("queue", "Min"): "1",
        ("queue", "Count"): "4",
        ("latency", "Distr"): "10|1,100|1,max|1",
    }
    assert all(
        r["master_name"] == "Demo.Srv" and r["master_ip"] == "127.0.0.1" for r in rows.values()
    )


def stat_msg(
    slave: str,
    iface: str,
    count: int,
    total: int,
    ret: int = 0,
    buckets: dict[int, int] | None = None,
) -> dict[Any, Any]:
    head = StatF.StatMicMsgHead(
        masterName="Demo.Caller@1.0",
        slaveName=slave,
        interfaceName=iface,
        slaveIp="10.0.0.2",
        slavePort=9000,
        returnValue=ret,
    )
    body = StatF.StatMicMsgBody(
        count=count if ret == 0 else 0,
        execCount=count if ret else 0,
        totalRspTime=total,
        maxRspTime=total,
        minRspTime=1,
        intervalCount=buckets or {},
    )
    return {head: body}


async def test_query_curves_and_group_by(store: Store) -> None:
    stat = StatService(store, IngestSettings(window_s=60, source_id="10.0.0.9"))
    base = (time.time() // 3600) * 3600 + 600  # 10 minutes into this hour: two windows apart
    for offset, n in ((0, 3), (120, 5)):
        stat.aggregator.add(stat_msg("Demo.A", "f", n, 10 * n), True, "10.0.0.1", base + offset)
        stat.aggregator.add(stat_msg("Demo.A", "g", 1, 7), True, "10.0.0.1", base + offset)
        stat.aggregator.add(stat_msg("Demo.A", "g", 2, 0, ret=-1), True, "10.0.0.1", base + offset)
        stat.aggregator.add(stat_msg("Demo.B", "f", 100, 100), True, "10.0.0.1", base + offset)
    await stat.flush(everything=True)
    day = time.strftime("%Y%m%d", time.localtime(base))
    flag1 = time.strftime("%H%M", time.localtime(base + 60))
    flag2 = time.strftime("%H%M", time.localtime(base + 180))

    async with served(QueryStatService(store)) as (_q, proxies), Communicator() as comm:
        query = comm.string_to_proxy(
            MonitorQuery.MonitorQueryProxy, proxies["tars.tarsquerystat.QueryObj"]
        )
        indexs = ["succ_count", "timeout_count", "exce_count", "total_time"]
        curve = MonitorQuery.MonitorQueryReq(
            dataid="tars_stat",
            date=day,
            tflag1="0000",
            tflag2="2360",
            conditions=[MonitorQuery.Condition("slave_name", OP.LIKE, "Demo.A")],
            indexs=indexs,
            groupby=["f_tflag"],
        )
        ret, rsp = await query.query(curve)
        assert (ret, rsp.ret) == (0, 0), rsp.msg
        assert rsp.result == {flag1: [4.0, 0.0, 2.0, 37.0], flag2: [6.0, 0.0, 2.0, 57.0]}
        assert rsp.lastTime != ""

        by_iface = MonitorQuery.MonitorQueryReq(
            dataid="tars_stat",
            date=day,
            tflag1=flag1,
            tflag2=flag1,
            conditions=[MonitorQuery.Condition("slave_name", OP.LIKE, "Demo.%")],
            indexs=["succ_count", "exce_count"],
            groupby=["slave_name", "interface_name"],
        )
        ret, rsp = await query.query(by_iface)
        assert rsp.result == {
            "Demo.A,f": [3.0, 0.0],
            "Demo.A,g": [1.0, 2.0],
            "Demo.B,f": [100.0, 0.0],
        }

        # hostile requests are refused with a message, not run
        for bad in (
            dict(indexs=["succ_count); DROP TABLE t_ecstatus; --"]),
            dict(groupby=["password"]),
            dict(conditions=[MonitorQuery.Condition("1=1 OR slave_name", OP.EQ, "x")]),
            dict(date="../../etc"),
            dict(dataid="tars_property"),
        ):
            req = MonitorQuery.MonitorQueryReq(
                dataid="tars_stat", date=day, indexs=["succ_count"], groupby=["f_tflag"]
            )
            for k, v in bad.items():
                setattr(req, k, v)
            ret, rsp = await query.query(req)
            assert ret == -1 and rsp.msg, bad


async def test_latency_buckets_summed_per_group_beside_query(store: Store) -> None:
    """Our MonitorExt.queryLatency on tars.tarsquerystat.QueryObj: interv_count added up
    bucket by bucket over windows and callers, with MonitorQuery's conditions and group-by."""
    stat = StatService(store, IngestSettings(window_s=60, source_id="10.0.0.9"))
    base = (time.time() // 3600) * 3600 + 600
    for offset in (0, 120):
        for caller in ("10.0.0.1", "10.0.0.3"):
            msg = stat_msg("Demo.A", "f", 3, 30, buckets={5: 1, 10: 2})
            stat.aggregator.add(msg, True, caller, base + offset)
    slow = stat_msg("Demo.A", "g", 1, 70, buckets={100: 1})
    stat.aggregator.add(slow, True, "10.0.0.1", base)
    await stat.flush(everything=True)
    day = time.strftime("%Y%m%d", time.localtime(base))
    flag1 = time.strftime("%H%M", time.localtime(base + 60))

    async with served(QueryStatService(store)) as (_q, proxies), Communicator() as comm:
        obj = proxies["tars.tarsquerystat.QueryObj"]
        ext = comm.string_to_proxy(TarsusMonitor.MonitorExtProxy, obj)
        req = MonitorQuery.MonitorQueryReq(
            dataid="tars_stat",
            date=day,
            conditions=[MonitorQuery.Condition("slave_name", OP.LIKE, "Demo.A")],
            indexs=[],
            groupby=["slave_name", "interface_name"],
        )
        ret, buckets, msg = await ext.queryLatency(req)
        assert (ret, msg) == (0, "")
        assert buckets == {"Demo.A,f": {5: 4, 10: 8}, "Demo.A,g": {100: 1}}
        req.tflag1 = req.tflag2 = flag1
        req.groupby = ["f_tflag"]
        assert (await ext.queryLatency(req))[1] == {flag1: {5: 2, 10: 4, 100: 1}}
        # upstream's query still answers on the same object
        query = comm.string_to_proxy(MonitorQuery.MonitorQueryProxy, obj)
        req.indexs = ["succ_count"]
        assert (await query.query(req))[1].result == {flag1: [7.0]}
        for bad in (dict(groupby=["x; --"]), dict(dataid="tars_property"), dict(date="..")):
            for k, v in bad.items():
                setattr(req, k, v)
            ret, buckets, msg = await ext.queryLatency(req)
            assert ret == -1 and msg and buckets == {}, bad

    # the property object has no latency buckets to sum
    async with served(QueryPropertyService(store)) as (_q, proxies), Communicator() as comm:
        ext = comm.string_to_proxy(
            TarsusMonitor.MonitorExtProxy, proxies["tars.tarsqueryproperty.QueryObj"]
        )
        with pytest.raises(ServerError):
            await ext.queryLatency(req)


def test_bucket_texts_parse_leniently() -> None:
    assert parse_buckets("5|12,10|3,max|0,x,|,7|-1,50|2") == [(5, 12), (10, 3), (50, 2)]
    assert parse_buckets("") == []


@pytest.mark.parametrize("policy", ["Max"])
async def test_property_query(store: Store, policy: str) -> None:
    prop = PropertyService(store, settings())
    now = time.time()
    for ip, value in (("10.0.0.1", "7"), ("10.0.0.2", "9")):
        head = PropertyF.StatPropMsgHead(moduleName="Demo.Srv", propertyName="mem")
        body = PropertyF.StatPropMsgBody([PropertyF.StatPropInfo(policy, value)])
        prop.aggregator.add({head: body}, ip, now)
    await prop.flush(everything=True)
    async with served(QueryPropertyService(store)) as (_q, proxies), Communicator() as comm:
        query = comm.string_to_proxy(
            MonitorQuery.MonitorQueryProxy, proxies["tars.tarsqueryproperty.QueryObj"]
        )
        req = MonitorQuery.MonitorQueryReq(
            dataid="tars_property",
            date=time.strftime("%Y%m%d"),
            tflag1="0000",
            tflag2="2360",
            conditions=[MonitorQuery.Condition("property_name", OP.EQ, "mem")],
            indexs=["value"],
            groupby=["master_ip", "policy"],
        )
        ret, rsp = await query.query(req)
    assert ret == 0, rsp.msg
    assert rsp.result == {"10.0.0.1,Max": [7.0], "10.0.0.2,Max": [9.0]}
