"""The alert service against the real stat, property and query services: a server's own
reports (StatReporter, PropertyReporter) go through StatObj/PropertyObj into the hourly tables,
the rules read them back through the MonitorQuery servants, and a real HTTP receiver gets the
firing and the resolving."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from webhook_receiver import Receiver

import tarsus.idl
from tarsus.framework.alarm import AlarmService, AlarmSettings, DeliverySettings
from tarsus.framework.monitor.query_service import QueryPropertyService, QueryStatService
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.property import PropertyService
from tarsus.framework.stat import StatService
from tarsus.protocol.gen import TarsusAlert
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import ServerError
from tarsus.rpc.property import PropertyReporter, Sum
from tarsus.rpc.stats import StatReporter
from tarsus.store import Store
from tarsus.testing import serve

IDL = """
module Shop { interface Api { int buy(string item, out string r); }; };
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("alarmidl") / "Shop.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Shop


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


async def test_rules_fire_and_resolve_on_reported_stats_and_properties(
    store: Store, shop: Any, receiver: Receiver
) -> None:
    # 1-second stat windows: the rows of one minute share its f_tflag, which is what the
    # alert service reads as one window (groupby f_tflag), as it would a 60 s window.
    ingest = IngestSettings(window_s=1, flush_interval=0.1, source_id="127.0.0.1")
    stat, prop = StatService(store, ingest), PropertyService(store, ingest)

    class Api(shop.ApiServant):  # type: ignore[misc,name-defined]
        async def buy(self, item: str) -> tuple[int, str]:
            if item == "broken":
                raise RuntimeError("out of stock")
            return 0, item

    async with (
        serve(stat.servants()["tars.tarsstat.StatObj"], "tars.tarsstat.StatObj") as stat_at,
        serve(
            prop.servants()["tars.tarsproperty.PropertyObj"], "tars.tarsproperty.PropertyObj"
        ) as prop_at,
        serve(
            QueryStatService(store).servants()["tars.tarsquerystat.QueryObj"],
            "tars.tarsquerystat.QueryObj",
        ) as qstat,
        serve(
            QueryPropertyService(store).servants()["tars.tarsqueryproperty.QueryObj"],
            "tars.tarsqueryproperty.QueryObj",
        ) as qprop,
        serve(Api(), "Shop.Api.ApiObj") as api,
        Communicator() as comm,
    ):
        alarm = AlarmService(
            store,
            AlarmSettings(
                window_s=60,
                querystat_obj=qstat.proxy_string,
                queryproperty_obj=qprop.proxy_string,
                delivery=DeliverySettings(timeout_s=2),
            ),
        )
        try:
            await alarm.add_rule(
                TarsusAlert.AlertRule(
                    name="api-failures",
                    kind="failure_rate",
                    webhook=receiver.url,
                    application="Shop",
                    serverName="Api",
                    interfaceName="buy",
                    threshold=20.0,
                    windows=1,
                )
            )
            await alarm.add_rule(
                TarsusAlert.AlertRule(
                    name="orders",
                    kind="property",
                    webhook=receiver.url,
                    application="Shop",
                    serverName="Api",
                    propertyName="orders",
                    policy="Sum",
                    threshold=10.0,
                    windows=1,
                )
            )
            stats = StatReporter(comm, stat_at.proxy_string, "Shop.Api")
            stats.attach_server(api.adapter)
            props = PropertyReporter(comm, prop_at.proxy_string, "Shop.Api")
            orders = props.create("orders", Sum())
            proxy = comm.string_to_proxy(shop.ApiProxy, api.proxy_string)

            async def report(good: int, bad: int, ordered: int) -> None:
                # A window is flagged by its end: calls in a minute's last seconds land in the
                # next minute's flag, which the alert service reads once that minute has come.
                while datetime.now().second >= 55:
                    await asyncio.sleep(0.5)
                for _ in range(good):
                    assert await proxy.buy("x") == (0, "x")
                for _ in range(bad):
                    with pytest.raises(ServerError):
                        await proxy.buy("broken")
                orders.report(ordered)
                await stats.flush()
                await props.flush()
                await stat.flush(everything=True)
                await prop.flush(everything=True)
                await alarm.evaluate()
                await alarm.delivery.round()

            await report(good=3, bad=3, ordered=4)  # 50 % failures; 4 orders
            assert receiver.states() == [("firing", "Shop.Api.buy")]
            fired = receiver.bodies[0]
            assert fired["rule"] == "api-failures" and fired["value"] == pytest.approx(50.0)

            # 94 more good calls (in the same minute: 3 %; in the next: 0 %) and 8 orders
            # (the same minute: 12 > 10; the next: 8, which never fires alone)
            await report(good=94, bad=0, ordered=8)
            states = receiver.states()
            assert states[:2] == [("firing", "Shop.Api.buy"), ("resolved", "Shop.Api.buy")]
            events = await alarm.list_events("api-failures", 10)
            assert [(e.state, e.delivery) for e in events] == [
                ("resolved", "sent"),
                ("firing", "sent"),
            ]
            # the property rule judged the stored Sum (4, then 12 when the minute held both)
            assert set(states[2:]) <= {("firing", "Shop.Api.orders")}
            assert alarm.evaluator.query_failures == 0
        finally:
            await alarm.stop()
