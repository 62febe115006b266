"""``/metrics`` against the real stat, property and query services: a server's and a client's
reports go through StatObj/PropertyObj into the hourly tables, and the web app's scrape reads
them back through the two MonitorQuery servants (no stand-ins)."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from monitor_support import served
from prometheus_client.parser import text_string_to_metric_families

import tarsus.idl
from tarsus.framework.monitor.query_service import QueryPropertyService, QueryStatService
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.property import PropertyService
from tarsus.framework.stat import StatService
from tarsus.protocol.gen import AdminReg
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import ServerError
from tarsus.rpc.property import Avg, Distr, Max, PropertyReporter, Sum
from tarsus.rpc.stats import StatReporter
from tarsus.store import Store
from tarsus.testing import serve
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

IDL = """
module Demo { interface Echo { int echo(string s, out string r); }; };
"""

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("metricsidl") / "Demo.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Demo


class Admin(AdminReg.AdminRegServant):  # type: ignore[misc]
    async def getAllServerIds(self) -> tuple[list[list[str]], str]:
        return [["Demo.EchoServer_127.0.0.1", "active", "active", "tars_python"]], ""


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as rsp:
        text = rsp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def labelled(samples: Samples, name: str, **labels: str) -> dict[Labels, float]:
    """The samples of ``name`` whose labels include ``labels``."""
    return {
        key[1]: value
        for key, value in samples.items()
        if key[0] == name and labels.items() <= dict(key[1]).items()
    }


async def test_metrics_reads_what_servers_reported(store: Store, demo: Any, tmp_path: Path) -> None:
    ingest = IngestSettings(window_s=3600, flush_interval=0.1, source_id="127.0.0.1")

    class Echo(demo.EchoServant):  # type: ignore[misc,name-defined]
        async def echo(self, s: str) -> tuple[int, str]:
            if s == "bad":
                raise RuntimeError("refused")
            return 0, s

    async with (
        served(StatService(store, ingest)) as (stat, stat_objs),
        served(PropertyService(store, ingest)) as (prop, prop_objs),
        served(QueryStatService(store)) as (_, qstat_objs),
        served(QueryPropertyService(store)) as (_, qprop_objs),
        serve(Admin(), "tars.tarsAdminRegistry.AdminRegObj") as admin,
        serve(Echo(), "Demo.EchoServer.EchoObj") as echo,
        Communicator() as comm,
    ):
        server_stats = StatReporter(comm, stat_objs["tars.tarsstat.StatObj"], "Demo.EchoServer")
        server_stats.attach_server(echo.adapter)
        props = PropertyReporter(
            comm, prop_objs["tars.tarsproperty.PropertyObj"], "Demo.EchoServer"
        )
        orders = props.create("orders", Sum(), Max())
        queue = props.create("queue", Avg())
        latency = props.create("latency", Distr([10, 100]))
        proxy = comm.string_to_proxy(demo.EchoProxy, echo.proxy_string)
        for _ in range(6):
            assert await proxy.echo("x") == (0, "x")
        for _ in range(2):
            with pytest.raises(ServerError):
                await proxy.echo("bad")
        for v in (3, 4):
            orders.report(v)
        queue.report(6)
        latency.report(50)
        await server_stats.flush()
        await props.flush()
        await stat.flush(everything=True)
        await prop.flush(everything=True)

        settings = WebSettings(
            data_dir=tmp_path / "web",
            port=0,
            admin=admin.proxy_string,
            query_stat=qstat_objs["tars.tarsquerystat.QueryObj"],
            query_property=qprop_objs["tars.tarsqueryproperty.QueryObj"],
        )
        async with WebServer(settings) as web:
            got = await asyncio.to_thread(scrape, f"{web.url}/metrics")

    assert labelled(got, "tarsus_scrape_source_up") == {
        (("source", "admin"),): 1.0,
        (("source", "latency"),): 1.0,
        (("source", "property"),): 1.0,
        (("source", "stat"),): 1.0,
    }
    where = {"server": "Demo.EchoServer", "interface": "echo", "node": "127.0.0.1"}
    calls = labelled(got, "tarsus_calls_total", **where)
    assert {dict(k)["result"]: v for k, v in calls.items()} == {
        "success": 6.0,
        "timeout": 0.0,
        "error": 2.0,
    }
    assert len(labelled(got, "tarsus_call_time_milliseconds_total", **where)) == 1
    # the six quick successes in tarsstat's latency buckets, summed by MonitorExt
    buckets = {
        dict(k)["le"]: v
        for k, v in labelled(got, "tarsus_call_duration_milliseconds_bucket", **where).items()
    }
    assert buckets["+Inf"] == 6.0 and buckets["3000.0"] == 6.0
    assert labelled(got, "tarsus_call_duration_milliseconds_count", **where) == {
        tuple(sorted(where.items())): 6.0
    }
    properties = {
        (dict(k)["property"], dict(k)["policy"]): v
        for k, v in labelled(
            got, "tarsus_property", server="Demo.EchoServer", node="127.0.0.1"
        ).items()
    }
    assert properties == {("orders", "Sum"): 7.0, ("orders", "Max"): 4.0, ("queue", "Avg"): 6.0}
    assert labelled(got, "tarsus_server_up", server="Demo.EchoServer") == {
        (
            ("node", "127.0.0.1"),
            ("present_state", "active"),
            ("server", "Demo.EchoServer"),
            ("setting_state", "active"),
        ): 1.0
    }
