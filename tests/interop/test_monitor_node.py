"""Upstream's Node monitor, ``@tars/monitor``, reports into our StatObj and PropertyObj: its
rows land in ``tars_stat_*`` / ``tars_property_*`` and both MonitorQuery servants answer them
(and our ``MonitorExt.queryLatency`` has the latency buckets it sent)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from peer import run_script

from tarsus.codec.constants import PROPERTY_OBJ, QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ, STAT_OBJ
from tarsus.framework.monitor.query_service import QueryPropertyService, QueryStatService
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.property import PropertyService
from tarsus.framework.service import host
from tarsus.framework.stat import StatService
from tarsus.protocol.gen import MonitorQuery, TarsusMonitor
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import open_store
from tarsus.testing import eventually

ANY = "tcp -h 127.0.0.1 -p 0 -t 60000"
OP = MonitorQuery.OP


def request(
    dataid: str, field: str, value: str, indexs: list[str], groupby: list[str]
) -> MonitorQuery.MonitorQueryReq:
    return MonitorQuery.MonitorQueryReq(
        dataid=dataid,
        date=time.strftime("%Y%m%d"),
        conditions=[MonitorQuery.Condition(field, OP.EQ, value)],
        indexs=indexs,
        groupby=groupby,
    )


async def test_tars_monitor_reports_into_stat_and_property(node: str, tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'tarsus.db'}")
    ingest = IngestSettings(window_s=1, flush_interval=0.1, source_id="127.0.0.1")
    app = Application()
    stat = host(app, StatService(store, ingest), {STAT_OBJ: ANY})
    prop = host(app, PropertyService(store, ingest), {PROPERTY_OBJ: ANY})
    qstat = host(app, QueryStatService(store), {QUERY_STAT_OBJ: ANY})
    qprop = host(app, QueryPropertyService(store), {QUERY_PROPERTY_OBJ: ANY})
    await app.start()
    try:
        conf = tmp_path / "Test.NodeHello.config.conf"
        conf.write_text(
            f"""<tars>
  <application>
    enableset=n
    <server>
      app=Test
      server=NodeHello
      localip=127.0.0.1
    </server>
    <client>
      modulename=Test.NodeHello
      report-interval=300
      stat={STAT_OBJ}@{stat.adapters[0].bound_endpoint}
      property={PROPERTY_OBJ}@{prop.adapters[0].bound_endpoint}
    </client>
  </application>
</tars>
"""
        )
        run = await run_script(node, "monitor_client.js", str(conf))
        assert run.status == 0, run.out.decode() + run.stderr_tail()
        assert json.loads(run.out) == {"ok": True}

        async with Communicator() as comm:
            qs = f"{QUERY_STAT_OBJ}@{qstat.adapters[0].bound_endpoint}"
            query_stat = comm.string_to_proxy(MonitorQuery.MonitorQueryProxy, qs)
            ext = comm.string_to_proxy(TarsusMonitor.MonitorExtProxy, qs)
            query_prop = comm.string_to_proxy(
                MonitorQuery.MonitorQueryProxy,
                f"{QUERY_PROPERTY_OBJ}@{qprop.adapters[0].bound_endpoint}",
            )
            calls = request(
                "tars_stat",
                "slave_name",
                "Test.NodeHello",
                ["succ_count", "timeout_count", "exce_count", "total_time"],
                ["slave_name", "interface_name", "master_name"],
            )

            async def stat_rows() -> dict[str, list[float]] | None:
                _, rsp = await query_stat.query(calls)
                result = dict(rsp.result or {})
                # the three successes, the error and the timeout: all written
                sums = result.get("Test.NodeHello,sayHello,Test.NodeCaller")
                return result if sums and sums[0] == 3 and sums[1] + sums[2] == 2 else None

            got = await eventually(stat_rows, "the stat rows of @tars/monitor's report")
            assert got == {"Test.NodeHello,sayHello,Test.NodeCaller": [3.0, 1.0, 1.0, 80.0]}
            ret, buckets, msg = await ext.queryLatency(calls)
            assert (ret, msg) == (0, "")
            # @tars/monitor counts a call under the first bound >= its time
            latency = buckets["Test.NodeHello,sayHello,Test.NodeCaller"]
            assert {b: n for b, n in latency.items() if n} == {5: 1, 10: 1, 100: 1}

            props = request(
                "tars_property",
                "master_name",
                "Test.NodeHello",
                ["value"],
                ["property_name", "policy", "master_ip"],
            )

            async def property_rows() -> dict[str, list[float]] | None:
                _, rsp = await query_prop.query(props)
                result = dict(rsp.result or {})
                return result if len(result) >= 3 else None

            got = await eventually(property_rows, "the property rows of @tars/monitor")
            assert got == {
                "orders,Max,127.0.0.1": [9.0],
                "orders,Sum,127.0.0.1": [13.0],
                "queue,Avg,127.0.0.1": [4.0],
            }
    finally:
        await app.stop(drain_timeout=1.0)
        await store.close()
