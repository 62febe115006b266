"""The alert service (tars.tarsalarm) end to end: rules stored through its servant, values from
a real MonitorQuery servant, states from the store, and webhooks received by a real HTTP server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
from webhook_receiver import Receiver

from tarsus.framework.alarm import (
    AlarmService,
    AlarmSettings,
    DeliverySettings,
    add_alarm,
    check_rule,
)
from tarsus.framework.alarm.sources import MetricSource
from tarsus.protocol.gen import MonitorQuery, TarsusAlert
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import Store
from tarsus.store.alerts import AlertRuleRow
from tarsus.store.servers import ServerSpec
from tarsus.testing import Served, eventually, free_port, serve


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


class Stats(MonitorQuery.MonitorQueryServant):
    """A query servant answering what the test sets: ``f_tflag -> [succ, timeout, exce, time]``."""

    def __init__(self) -> None:
        self.windows: dict[str, list[float]] = {}
        self.requests: list[MonitorQuery.MonitorQueryReq] = []
        self.ret = 0

    async def query(
        self, req: MonitorQuery.MonitorQueryReq
    ) -> tuple[int, MonitorQuery.MonitorQueryRsp]:
        self.requests.append(req)
        rsp = MonitorQuery.MonitorQueryRsp(ret=self.ret, result=dict(self.windows))
        return 0, rsp


@pytest.fixture
async def stats() -> AsyncIterator[tuple[Stats, Served]]:
    servant = Stats()
    async with serve(servant, "tars.tarsquerystat.QueryObj") as served:
        yield servant, served


def _service(store: Store, served: Served, **delivery: Any) -> AlarmService:
    settings = AlarmSettings(
        window_s=60,
        querystat_obj=served.proxy_string,
        queryproperty_obj=served.proxy_string,
        delivery=DeliverySettings(timeout_s=2, **delivery),
    )
    return AlarmService(store, settings)


def _rule(name: str, kind: str, url: str, **kw: Any) -> TarsusAlert.AlertRule:
    return TarsusAlert.AlertRule(name=name, kind=kind, webhook=url, **kw)


async def test_failure_rate_fires_after_n_windows_and_resolves(
    store: Store, stats: tuple[Stats, Served], receiver: Receiver
) -> None:
    servant, served = stats
    service = _service(store, served)
    try:
        await service.add_rule(
            _rule(
                "shop-failures",
                "failure_rate",
                receiver.url,
                application="Shop",
                serverName="Api",
                threshold=5.0,
                windows=2,
            )
        )
        # one bad window (20 % failures): not yet
        servant.windows = {"1000": [80, 0, 20, 800]}
        await service.evaluate()
        await service.delivery.round()
        assert receiver.bodies == []
        # two bad windows in a row: fires, once
        servant.windows = {"1000": [80, 0, 20, 800], "1001": [90, 0, 10, 900]}
        await service.evaluate()
        await service.evaluate()
        await service.delivery.round()
        assert receiver.states() == [("firing", "Shop.Api")]
        fired = receiver.bodies[0]
        assert fired["rule"] == "shop-failures" and fired["kind"] == "failure_rate"
        assert fired["value"] == pytest.approx(10.0) and fired["threshold"] == 5.0
        # the query asked for the server's calls as callee
        req = servant.requests[-1]
        assert req.dataid == "tars_stat" and req.groupby == ["f_tflag"]
        assert [(c.field, c.val) for c in req.conditions] == [("slave_name", "Shop.Api")]
        # a good window: resolved
        servant.windows["1002"] = [100, 0, 0, 1000]
        await service.evaluate()
        await service.delivery.round()
        assert receiver.states() == [("firing", "Shop.Api"), ("resolved", "Shop.Api")]
        events = await service.list_events("shop-failures", 10)
        assert [(e.state, e.delivery) for e in events] == [("resolved", "sent"), ("firing", "sent")]
    finally:
        await service.stop()


async def test_a_restarted_service_does_not_fire_twice_and_still_resolves(
    store: Store, stats: tuple[Stats, Served], receiver: Receiver
) -> None:
    servant, served = stats
    first = _service(store, served)
    await first.add_rule(
        _rule(
            "slow",
            "avg_latency",
            receiver.url,
            application="Shop",
            serverName="Api",
            threshold=100.0,
        )
    )
    servant.windows = {"1000": [10, 0, 0, 5000]}  # 500 ms average
    await first.evaluate()
    await first.stop()
    again = _service(store, served)
    try:
        await again.evaluate()
        servant.windows = {"1000": [10, 0, 0, 500]}
        await again.evaluate()
        await again.delivery.round()
        assert receiver.states() == [("firing", "Shop.Api"), ("resolved", "Shop.Api")]
    finally:
        await again.stop()


async def test_server_down_fires_and_resolves_when_it_runs_again(
    store: Store, stats: tuple[Stats, Served], receiver: Receiver
) -> None:
    _servant, served = stats
    await store.servers.deploy(ServerSpec("Shop", "Api", "node-1"), [])
    await store.servers.set_setting_state("Shop", "Api", "node-1", "active")
    service = _service(store, served)
    try:
        await service.add_rule(_rule("down", "server_down", receiver.url, application="Shop"))
        await service.evaluate()  # meant to run, not running
        await service.delivery.round()
        assert receiver.states() == [("firing", "Shop.Api@node-1")]
        assert "not running" in receiver.bodies[0]["message"]
        await store.servers.update_present("node-1", "Shop", "Api", "active", 4242)
        await service.evaluate()
        await service.delivery.round()
        assert receiver.states()[-1] == ("resolved", "Shop.Api@node-1")
    finally:
        await service.stop()


async def test_a_webhook_that_is_down_gets_the_event_once_it_is_back(
    store: Store, stats: tuple[Stats, Served], receiver: Receiver, clock: Any
) -> None:
    servant, served = stats
    service = _service(store, served, first_retry_s=10, max_attempts=3)
    try:
        await service.add_rule(
            _rule(
                "fail",
                "timeout_rate",
                receiver.url,
                application="Shop",
                serverName="Api",
                threshold=1.0,
            )
        )
        servant.windows = {"1000": [50, 50, 0, 100]}
        receiver.status = 503
        await service.evaluate()
        await service.delivery.round()
        [event] = await service.list_events("fail", 10)
        assert (event.delivery, event.attempts, event.lastError) == ("pending", 1, "HTTP 503")
        await service.delivery.round()  # not due yet: not sent again
        assert (await service.list_events("fail", 10))[0].attempts == 1
        receiver.status = 200
        clock.advance(11)
        await service.delivery.round()
        assert receiver.states() == [("firing", "Shop.Api")]
        assert (await service.list_events("fail", 10))[0].delivery == "sent"
    finally:
        await service.stop()


async def test_delivery_gives_up_after_the_last_attempt(
    store: Store, stats: tuple[Stats, Served], clock: Any
) -> None:
    servant, served = stats
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    service = _service(store, served, first_retry_s=1, max_retry_s=4, max_attempts=3)
    try:
        await service.add_rule(
            _rule("x", "failure_rate", dead, application="Shop", serverName="Api", threshold=1.0)
        )
        assert await service.test_rule("x")  # a test is tried once, and says why it failed
        servant.windows = {"1000": [1, 0, 9, 10]}
        await service.evaluate()
        for _ in range(6):
            await service.delivery.round()
            clock.advance(10)
        firing, test = await service.list_events("x", 10)
        assert (test.state, test.delivery, test.attempts) == ("test", "failed", 1)
        assert (firing.state, firing.delivery, firing.attempts) == ("firing", "failed", 3)
        assert firing.lastError.startswith("unreachable")
        assert service.delivery.failed == 1
    finally:
        await service.stop()


async def test_the_servant_checks_rules_lists_tests_and_deletes(
    store: Store, stats: tuple[Stats, Served], receiver: Receiver
) -> None:
    _servant, served = stats
    app = Application()
    port = free_port()
    add_alarm(
        app,
        store,
        AlarmSettings(querystat_obj=served.proxy_string, queryproperty_obj=served.proxy_string),
        endpoint=f"tcp -h 127.0.0.1 -p {port} -t 60000",
    )
    await app.start()
    comm = Communicator()
    try:
        alarm = comm.string_to_proxy(
            TarsusAlert.AlertExtProxy, f"tars.tarsalarm.AlarmObj@tcp -h 127.0.0.1 -p {port}"
        )
        bad = [
            _rule("../etc", "failure_rate", receiver.url, application="Shop", serverName="Api"),
            _rule("r", "cpu", receiver.url, application="Shop", serverName="Api"),
            _rule("r", "failure_rate", "file:///etc/passwd", application="Shop", serverName="Api"),
            _rule("r", "failure_rate", "http://u:p@h/x", application="Shop", serverName="Api"),
            _rule("r", "failure_rate", receiver.url, application="Shop", serverName="../x"),
            _rule(
                "r",
                "failure_rate",
                receiver.url,
                application="Shop",
                serverName="Api",
                threshold=150.0,
            ),
            _rule(
                "r", "failure_rate", receiver.url, application="Shop", serverName="Api", windows=0
            ),
            _rule(
                "r",
                "property",
                receiver.url,
                application="Shop",
                serverName="Api",
                propertyName="queue",
                policy="Median",
            ),
            _rule("r", "avg_latency", receiver.url + "x" * 600, application="S", serverName="A"),
        ]
        for rule in bad:
            code, why = await alarm.addRule(rule)
            assert code == -1 and why, rule
        good = _rule(
            "queue",
            "property",
            receiver.url,
            application="Shop",
            serverName="Api",
            propertyName="queue",
            policy="Max",
            threshold=1000.0,
            windows=3,
        )
        code, new_id = await alarm.addRule(good)
        assert code == 0 and int(new_id) > 0
        assert (await alarm.addRule(good))[0] == -4
        code, rules = await alarm.listRules()
        assert [(r.name, r.kind, r.policy, r.windows) for r in rules] == [
            ("queue", "property", "Max", 3)
        ]
        code, text = await alarm.testRule("queue")
        assert code == 0, text
        assert receiver.states() == [("test", "Shop.Api")]
        assert (await alarm.testRule("nope"))[0] == -2
        assert (await alarm.deleteRule("queue"))[0] == 0
        assert (await alarm.deleteRule("queue"))[0] == -2
        assert (await alarm.listRules())[1] == []
        code, events = await alarm.listEvents("queue", 10_000_000)
        assert [(e.state, e.delivery) for e in events] == [("test", "sent")]
    finally:
        await comm.close()
        await app.stop()


async def test_running_service_fires_on_its_own(
    store: Store, stats: tuple[Stats, Served], receiver: Receiver
) -> None:
    servant, served = stats
    servant.windows = {"1000": [1, 0, 9, 10]}
    app = Application()
    settings = AlarmSettings(
        window_s=0.2,
        deliver_every_s=0.2,
        querystat_obj=served.proxy_string,
        queryproperty_obj=served.proxy_string,
    )
    add_alarm(app, store, settings, endpoint=f"tcp -h 127.0.0.1 -p {free_port()} -t 60000")
    await store.alerts.add_rule(
        check_rule(
            _rule(
                "f",
                "failure_rate",
                receiver.url,
                application="Shop",
                serverName="Api",
                threshold=50.0,
            )
        )
    )
    await app.start()
    try:
        await eventually(lambda: receiver.states() == [("firing", "Shop.Api")], "the alert fired")
    finally:
        await app.stop()


async def test_just_after_midnight_the_last_window_of_yesterday_is_read(
    store: Store, stats: tuple[Stats, Served]
) -> None:
    """The window ending at 00:00 is stored as yesterday's ``2360``: it is asked for."""
    servant, served = stats
    async with Communicator() as comm:
        source = MetricSource(
            comm,
            served.proxy_string,
            served.proxy_string,
            window_s=60,
            clock=lambda: datetime(2026, 1, 2, 0, 0, 30),
        )
        rule = AlertRuleRow(
            name="r", kind="failure_rate", webhook="http://x/", application="A", server_name="B"
        )
        servant.windows = {"2360": [50, 0, 50, 0]}
        windows = await source.windows(rule)
    asked = [(r.date, r.tflag1, r.tflag2) for r in servant.requests]
    assert asked == [("20260101", "2357", "2360"), ("20260102", "0000", "0000")]
    assert windows[0].when == "202601012360"
