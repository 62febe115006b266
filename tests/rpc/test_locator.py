"""Bare object names resolved through a registry: a real QueryF servant over real sockets.

The registry here is a small in-test ``QueryFServant`` whose answers each test sets; the
business servants are real servers. Nothing is faked below the QueryF interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
from tarsus.protocol.gen import EndpointF, QueryF
from tarsus.rpc import current
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import ConnectError, NoEndpointError
from tarsus.rpc.locator import RefreshSchedule, RegistryObjectProxy, check_set_division
from tarsus.testing import Served, eventually, free_port, serve

OBJ = "Demo.WhoServer.WhoObj"

IDL = """
module Demo {
    interface Who {
        string whoami();
        string slow(int ms);
    };
};
"""

#: Sub-second schedule so refreshes happen within a test (the real floor is 5 s).
FAST = RefreshSchedule(
    refresh_interval=0.05,
    active_empty_interval=0.05,
    fail_interval=0.05,
    many_fail_interval=0.05,
    query_timeout=1.0,
)


class Registry(QueryF.QueryFServant):  # type: ignore[misc,name-defined]
    """A registry answering from ``routes``; records every lookup in ``calls``."""

    def __init__(self) -> None:
        #: object name -> (active, inactive)
        self.routes: dict[str, tuple[list[Endpoint], list[Endpoint]]] = {}
        #: (object, setId) -> (active, inactive), for findObjectByIdInSameSet
        self.set_routes: dict[tuple[str, str], tuple[list[Endpoint], list[Endpoint]]] = {}
        self.calls: list[tuple[str, ...]] = []
        #: the context of each lookup
        self.contexts: list[dict[str, str]] = []
        self.ret = 0
        self.delay = 0.0

    async def _answer(
        self, routes: tuple[list[Endpoint], list[Endpoint]] | None
    ) -> tuple[int, list[Any], list[Any]]:
        if self.delay:
            await asyncio.sleep(self.delay)
        active, inactive = routes or ([], [])
        return self.ret, [_endpointf(ep) for ep in active], [_endpointf(ep) for ep in inactive]

    async def findObjectByIdInSameGroup(self, id: str) -> tuple[int, list[Any], list[Any]]:
        self.calls.append(("findObjectByIdInSameGroup", id))
        self.contexts.append(dict(current().context))
        return await self._answer(self.routes.get(id))

    async def findObjectById4Any(self, id: str) -> tuple[int, list[Any], list[Any]]:
        self.calls.append(("findObjectById4Any", id))
        return await self._answer(self.routes.get(id))

    async def findObjectByIdInSameSet(
        self, id: str, setId: str
    ) -> tuple[int, list[Any], list[Any]]:
        self.calls.append(("findObjectByIdInSameSet", id, setId))
        return await self._answer(self.set_routes.get((id, setId)))

    def lookups(self, obj: str = OBJ) -> int:
        return sum(1 for call in self.calls if call[1] == obj)


def _endpointf(ep: Endpoint) -> Any:
    return EndpointF.EndpointF(
        host=ep.host,
        port=ep.port,
        timeout=ep.timeout,
        istcp=ep.istcp,
        grid=ep.grid,
        setId=ep.set_id,
        weight=ep.weight,
        weightType=ep.weight_type,
        nodeName=ep.host,
    )


def _ep(served: Served) -> Endpoint:
    return Endpoint.parse(served.endpoint)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("who") / "Who.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Demo


@pytest.fixture
def who(demo: Any) -> Callable[[str], Any]:
    class WhoImpl(demo.WhoServant):  # type: ignore[misc,name-defined]
        def __init__(self, label: str) -> None:
            self.label = label

        async def whoami(self) -> str:
            return self.label

        async def slow(self, ms: int) -> str:
            await asyncio.sleep(ms / 1000)
            return self.label

    return WhoImpl


@contextlib.asynccontextmanager
async def _servers(who: Callable[[str], Any], *labels: str) -> AsyncIterator[list[Served]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(serve(who(label), OBJ)) for label in labels]


async def test_bare_name_is_resolved_and_balanced(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with (
        serve(registry, "tars.tarsregistry.QueryObj") as reg,
        _servers(who, "a", "b") as (a, b),
    ):
        registry.routes[OBJ] = ([_ep(a), _ep(b)], [])
        async with Communicator(reg.proxy_string, cache_dir=tmp_path) as comm:
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            answers = [await prx.whoami() for _ in range(10)]
        assert sorted(set(answers)) == ["a", "b"]
        assert answers.count("a") == answers.count("b") == 5  # round-robin
        # upstream clients' default call, with the bare name as the id
        assert registry.calls[0] == ("findObjectByIdInSameGroup", OBJ)


async def test_node_name_travels_with_lookups(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    """As TarsCpp servers do: the registry groups callers (IDC) by this context entry."""
    registry = Registry()
    async with (
        serve(registry, "tars.tarsregistry.QueryObj") as reg,
        _servers(who, "a") as (a,),
    ):
        registry.routes[OBJ] = ([_ep(a)], [])
        async with Communicator(reg.proxy_string, node_name="10.9.8.7", cache_dir=None) as comm:
            assert await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
        async with Communicator(reg.proxy_string, cache_dir=None) as comm:
            assert await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
    assert registry.contexts[0].get("node_name") == "10.9.8.7"
    assert "node_name" not in registry.contexts[-1]


async def test_query_method_option(demo: Any, who: Callable[[str], Any], tmp_path: Path) -> None:
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        registry.routes[OBJ] = ([_ep(a)], [])
        comm = Communicator(reg.proxy_string, cache_dir=None, query_method="findObjectById4Any")
        async with comm:
            assert await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
        assert registry.calls[0] == ("findObjectById4Any", OBJ)


async def test_calls_keep_working_when_the_registry_stops(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with _servers(who, "a", "b") as (a, b):
        async with contextlib.AsyncExitStack() as registry_up:
            reg = await registry_up.enter_async_context(
                serve(registry, "tars.tarsregistry.QueryObj")
            )
            registry.routes[OBJ] = ([_ep(a), _ep(b)], [])
            comm = Communicator(reg.proxy_string, refresh_schedule=FAST, cache_dir=tmp_path)
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            assert await prx.whoami() in ("a", "b")
        # the registry is gone: lookups fail, calls go on to the known endpoints
        obj = comm.object_proxy(OBJ)
        assert isinstance(obj, RegistryObjectProxy)

        async def lookups_failing() -> bool:
            return obj.manager.failures >= 3

        await eventually(lookups_failing, "refreshes against the stopped registry failed")
        answers = {await prx.whoami() for _ in range(6)}
        assert answers == {"a", "b"}
        await comm.close()


async def test_restart_with_the_registry_down_uses_the_disk_cache(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with _servers(who, "a", "b") as (a, b):
        async with serve(registry, "tars.tarsregistry.QueryObj") as reg:
            locator = reg.proxy_string
            registry.routes[OBJ] = ([_ep(a), _ep(b)], [])
            async with Communicator(locator, cache_dir=tmp_path) as first:
                assert await first.string_to_proxy(demo.WhoProxy, OBJ).whoami() in ("a", "b")
        # the answer is on disk, readable
        doc = json.loads((tmp_path / "endpoints.json").read_text())
        (entry,) = doc["entries"]
        assert entry["object"] == OBJ and entry["set"] == ""
        assert sorted(entry["active"]) == sorted(str(_ep(s)) for s in (a, b))

        # a new client while the registry is down: served from the cache
        async with Communicator(locator, cache_dir=tmp_path) as second:
            prx = second.string_to_proxy(demo.WhoProxy, OBJ)
            assert {await prx.whoami() for _ in range(4)} == {"a", "b"}

        # without a cache the same client has nowhere to go, and says why
        async with Communicator(locator, cache_dir=None) as third:
            with pytest.raises(NoEndpointError) as e:
                await third.string_to_proxy(demo.WhoProxy, OBJ).whoami()
        assert OBJ in e.value.message and "tars.tarsregistry.QueryObj@tcp" in e.value.message
        assert "cannot connect" in e.value.message


async def test_clients_follow_a_changed_list(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with (
        serve(registry, "tars.tarsregistry.QueryObj") as reg,
        _servers(who, "a", "b") as (a, b),
    ):
        registry.routes[OBJ] = ([_ep(a)], [])
        async with Communicator(
            reg.proxy_string, refresh_schedule=FAST, cache_dir=tmp_path
        ) as comm:
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            assert await prx.whoami() == "a"
            registry.routes[OBJ] = ([_ep(b)], [_ep(a)])

            async def moved() -> bool:
                return await prx.whoami() == "b"

            await eventually(moved, "the client moved to the new endpoint")
            assert {await prx.whoami() for _ in range(5)} == {"b"}
        doc = json.loads((tmp_path / "endpoints.json").read_text())
        assert doc["entries"][0]["active"] == [str(_ep(b))]
        assert doc["entries"][0]["inactive"] == [str(_ep(a))]


async def test_calls_in_flight_survive_a_changed_list(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with (
        serve(registry, "tars.tarsregistry.QueryObj") as reg,
        _servers(who, "a", "b") as (a, b),
    ):
        registry.routes[OBJ] = ([_ep(a)], [])
        async with Communicator(reg.proxy_string, refresh_schedule=FAST, cache_dir=None) as comm:
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            assert await prx.whoami() == "a"
            in_flight = asyncio.ensure_future(prx.slow(300))
            await asyncio.sleep(0)
            registry.routes[OBJ] = ([_ep(b)], [])

            async def moved() -> bool:
                return await prx.whoami() == "b"

            await eventually(moved, "the client moved to the new endpoint")
            assert await in_flight == "a"  # the dropped endpoint's call was not cut


async def test_a_dead_registry_endpoint_is_skipped(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    dead_port = free_port()  # nobody listens there
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        registry.routes[OBJ] = ([_ep(a)], [])
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {dead_port}:{reg.endpoint}"
        async with Communicator(locator, cache_dir=None) as comm:
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            assert [await prx.whoami() for _ in range(3)] == ["a", "a", "a"]


@contextlib.asynccontextmanager
async def _silent_listener() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a registry host gone silent."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_lookups_are_answered_by_another_registry_when_one_goes_silent(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    """Two registries in the locator, one accepting connections but never answering (a host
    cut off mid-connection looks like that): every client's first call still resolves its
    name well within the call timeout, because the lookup is hedged to the other registry;
    with both answering, lookups are spread over both."""
    registry = Registry()
    other = Registry()
    async with (
        serve(registry, "tars.tarsregistry.QueryObj") as reg,
        serve(other, "tars.tarsregistry.QueryObj") as reg2,
        _servers(who, "a") as (a,),
        _silent_listener() as silent_port,
    ):
        registry.routes[OBJ] = other.routes[OBJ] = ([_ep(a)], [])
        silent = f"tcp -h 127.0.0.1 -p {silent_port} -t 60000"
        for _ in range(4):  # the silent one comes first in turn for some of them
            async with Communicator(
                f"tars.tarsregistry.QueryObj@{silent}:{reg.endpoint}",
                cache_dir=None,
                timeout_ms=2000,
            ) as comm:
                assert await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
        assert registry.lookups() == 4
        comm = Communicator(f"tars.tarsregistry.QueryObj@{reg.endpoint}:{reg2.endpoint}")
        async with comm:
            locator = comm._get_locator()
            for _ in range(6):
                assert (await locator.find(OBJ))[0] == 0
        assert registry.lookups() == 4 + 3 and other.lookups() == 3


async def test_an_empty_active_list_keeps_the_old_list(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        registry.routes[OBJ] = ([_ep(a)], [])
        async with Communicator(
            reg.proxy_string, refresh_schedule=FAST, cache_dir=tmp_path
        ) as comm:
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            assert await prx.whoami() == "a"
            registry.routes[OBJ] = ([], [_ep(a)])
            seen = registry.lookups()

            async def asked_again() -> bool:
                return registry.lookups() >= seen + 3

            await eventually(asked_again, "the registry was asked again")
            assert await prx.whoami() == "a"
        # the cache still has the last useful answer
        doc = json.loads((tmp_path / "endpoints.json").read_text())
        assert doc["entries"][0]["active"] == [str(_ep(a))]


async def test_set_mode_asks_for_the_same_set(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with (
        serve(registry, "tars.tarsregistry.QueryObj") as reg,
        _servers(who, "idc", "set1") as (idc, set1),
    ):
        registry.routes[OBJ] = ([_ep(idc)], [])
        registry.set_routes[(OBJ, "app.sz.1")] = ([_ep(set1)], [])
        comm = Communicator(
            reg.proxy_string, enableset=True, setdivision="app.sz.1", cache_dir=tmp_path
        )
        async with comm:
            prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
            assert {await prx.whoami() for _ in range(3)} == {"set1"}
        assert registry.calls[0] == ("findObjectByIdInSameSet", OBJ, "app.sz.1")
        doc = json.loads((tmp_path / "endpoints.json").read_text())
        assert doc["entries"][0]["set"] == "app.sz.1"

        # the set's cache entry is not used outside set mode, and the other way round
        async with Communicator(reg.proxy_string, cache_dir=tmp_path) as plain:
            assert await plain.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "idc"
        # both answers are kept in the one file
        doc = json.loads((tmp_path / "endpoints.json").read_text())
        assert sorted(e["set"] for e in doc["entries"]) == ["", "app.sz.1"]


async def test_first_call_errors_name_the_object_and_the_locator(demo: Any, tmp_path: Path) -> None:
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg:
        async with Communicator(reg.proxy_string, cache_dir=None) as comm:
            # the registry knows no such object
            with pytest.raises(NoEndpointError) as e:
                await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami()
            assert OBJ in e.value.message and reg.proxy_string.split("@")[0] in e.value.message
            assert "no active endpoint" in e.value.message

        # the registry does not answer within the call's timeout
        registry.delay = 5.0
        async with Communicator(reg.proxy_string, cache_dir=None, timeout_ms=200) as comm:
            with pytest.raises(NoEndpointError) as e:
                await comm.string_to_proxy(demo.WhoProxy, "Demo.Other.Obj").whoami()
            assert "Demo.Other.Obj" in e.value.message
            assert "no answer within 200 ms" in e.value.message
        registry.delay = 0.0

        # the registry answers with an error code
        registry.ret = -1
        async with Communicator(reg.proxy_string, cache_dir=None) as comm:
            with pytest.raises(NoEndpointError) as e:
                await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami()
            assert "returned -1" in e.value.message


async def test_a_service_routed_after_its_callers_gave_up_is_reached_at_once(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    """The registry failed the caller's lookups until the caller's schedule waits long (C++:
    30 s after repeated failures); once the object is routed, the next call asks again and
    reaches it instead of failing on the old answer until the next scheduled lookup."""
    schedule = RefreshSchedule(
        refresh_interval=600,
        active_empty_interval=600,
        fail_interval=0.2,
        many_fail_interval=600,
        fail_times_limit=1,
    )
    registry = Registry()
    registry.ret = -1  # the registry is not ready to answer yet
    async with contextlib.AsyncExitStack() as stack:
        reg = await stack.enter_async_context(serve(registry, "tars.tarsregistry.QueryObj"))
        (a,) = await stack.enter_async_context(_servers(who, "a"))
        comm = await stack.enter_async_context(
            Communicator(reg.proxy_string, refresh_schedule=schedule, cache_dir=None)
        )
        prx = comm.string_to_proxy(demo.WhoProxy, OBJ)
        for _ in range(3):
            with pytest.raises(NoEndpointError, match="returned -1"):
                await prx.whoami()
            await asyncio.sleep(0.25)
        registry.ret = 0
        registry.routes[OBJ] = ([_ep(a)], [])
        await asyncio.sleep(0.25)
        assert await prx.whoami() == "a"


async def test_a_corrupt_cache_file_is_ignored(
    demo: Any, who: Callable[[str], Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "endpoints.json").write_text('{"version": 1, "entries": [tru')
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        a_endpoint = _ep(a)
        registry.routes[OBJ] = ([a_endpoint], [])
        with caplog.at_level(logging.WARNING, logger="tarsus.rpc.locator"):
            async with Communicator(reg.proxy_string, cache_dir=tmp_path) as comm:
                assert await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
        assert any("corrupt endpoint cache" in r.getMessage() for r in caplog.records)
    # replaced by a good file at the next answer
    doc = json.loads((tmp_path / "endpoints.json").read_text())
    assert doc["entries"][0]["active"] == [str(a_endpoint)]


async def test_an_unwritable_cache_does_not_stop_calls(
    demo: Any, who: Callable[[str], Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        registry.routes[OBJ] = ([_ep(a)], [])
        with caplog.at_level(logging.WARNING, logger="tarsus.rpc.locator"):
            async with Communicator(reg.proxy_string, cache_dir=blocker / "cache") as comm:
                assert await comm.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
        assert any("cannot write endpoint cache" in r.getMessage() for r in caplog.records)


def test_settings_are_checked() -> None:
    assert RefreshSchedule.from_interval_ms(1000).refresh_interval == 5.0  # C++ floor
    assert RefreshSchedule.from_interval_ms(60_000).refresh_interval == 60.0
    assert Communicator("tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1").refresh_schedule == (
        RefreshSchedule()
    )
    with pytest.raises(ValueError, match="seconds > 0"):
        RefreshSchedule(refresh_interval=0)
    assert check_set_division("app.sz.*") == "app.sz.*"
    for bad in ("app.sz", "app.*.1", "*.sz.1", "a.b.c.d", "app. sz.1", ""):
        with pytest.raises(ValueError, match=r"name\.area\.group"):
            check_set_division(bad)
    with pytest.raises(ValueError, match="setdivision"):
        Communicator("tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1", enableset=True)
    with pytest.raises(ValueError, match="must name the registry's endpoints"):
        Communicator("tars.tarsregistry.QueryObj")
    with pytest.raises(NoEndpointError, match="no locator"):
        Communicator().object_proxy(OBJ)


async def test_refresh_schedule_follows_cpp(who: Callable[[str], Any], tmp_path: Path) -> None:
    """Each lookup's outcome picks the delay before the next one (QueryEpBase rules)."""
    schedule = RefreshSchedule(
        refresh_interval=60,
        active_empty_interval=10,
        fail_interval=2,
        many_fail_interval=30,
        fail_times_limit=3,
    )
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        comm = Communicator(reg.proxy_string, refresh_schedule=schedule, cache_dir=None)
        obj = comm.object_proxy(OBJ)  # no call yet: the background task is not running
        assert isinstance(obj, RegistryObjectProxy)
        manager = obj.manager
        registry.routes[OBJ] = ([_ep(a)], [])
        assert await manager.refresh() == 60
        assert [ad.endpoint for ad in obj.selector.candidates] == [_ep(a)]
        registry.routes[OBJ] = ([], [_ep(a)])
        assert await manager.refresh() == 10  # empty: old list kept
        assert [ad.endpoint for ad in obj.selector.candidates] == [_ep(a)]
        registry.ret = -1
        assert [await manager.refresh() for _ in range(5)] == [2, 2, 2, 30, 30]
        assert manager.failures == 5
        assert [ad.endpoint for ad in obj.selector.candidates] == [_ep(a)]
        registry.ret = 0
        registry.routes[OBJ] = ([_ep(a)], [])
        assert await manager.refresh() == 60 and manager.failures == 0
        await comm.close()


# -- a live registry beats the disk cache (issue 8 §1) ----------------------------------------


async def test_a_stale_cache_gives_way_to_a_live_registry(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    """The server moved to another port: the cached endpoint refuses, the registry's first
    answer is waited for, and the first call reaches the new port."""
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg:
        async with _servers(who, "old") as (old,):
            registry.routes[OBJ] = ([_ep(old)], [])
            async with Communicator(reg.proxy_string, cache_dir=tmp_path) as first:
                assert await first.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "old"
            old_endpoint = _ep(old)
        async with _servers(who, "new") as (new,):
            new_endpoint = _ep(new)
            assert new_endpoint != old_endpoint
            registry.routes[OBJ] = ([new_endpoint], [])
            async with Communicator(reg.proxy_string, cache_dir=tmp_path) as second:
                assert await second.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "new"
    doc = json.loads((tmp_path / "endpoints.json").read_text())
    assert doc["entries"][0]["active"] == [str(new_endpoint)]


async def test_an_answer_without_active_endpoints_drops_cached_ones(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg, _servers(who, "a") as (a,):
        registry.routes[OBJ] = ([_ep(a)], [])
        async with Communicator(reg.proxy_string, cache_dir=tmp_path) as first:
            assert await first.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
        # a still runs, but the registry now lists it as inactive (stopped by an operator)
        registry.routes[OBJ] = ([], [_ep(a)])
        async with Communicator(reg.proxy_string, cache_dir=tmp_path) as second:
            prx = second.string_to_proxy(demo.WhoProxy, OBJ)
            obj = second.object_proxy(OBJ)
            assert isinstance(obj, RegistryObjectProxy)
            # the very first call may still go to the cached endpoint: nobody has answered yet
            with contextlib.suppress(NoEndpointError):
                await prx.whoami()

            async def answered() -> bool:
                return obj.manager.problem != ""

            await eventually(answered, "the registry answered", timeout=30.0)
            with pytest.raises(NoEndpointError) as e:
                await prx.whoami()
            assert "lists no active endpoint" in e.value.message


async def test_with_the_registry_down_a_stale_cache_fails_naming_the_endpoint(
    demo: Any, who: Callable[[str], Any], tmp_path: Path
) -> None:
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg:
        locator = reg.proxy_string
        async with _servers(who, "a") as (a,):
            registry.routes[OBJ] = ([_ep(a)], [])
            async with Communicator(locator, cache_dir=tmp_path) as first:
                assert await first.string_to_proxy(demo.WhoProxy, OBJ).whoami() == "a"
            a_endpoint = _ep(a)
    # neither the registry nor the server runs: the cache is all there is, and it is wrong
    async with Communicator(locator, cache_dir=tmp_path) as second:
        with pytest.raises(ConnectError) as e:
            await second.string_to_proxy(demo.WhoProxy, OBJ).whoami()
    assert f"cannot connect to {a_endpoint}" in e.value.message


# -- real processes: a server that moves to another port --------------------------------------

ROOT = Path(__file__).resolve().parents[2]
HELLO_OBJ = "Test.HelloServer.HelloObj"


@contextlib.asynccontextmanager
async def _hello_process() -> AsyncIterator[Endpoint]:
    """examples/hello/server.py as its own process on a free port; yields its endpoint."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "hello" / "server.py"),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"listening" in line, line
        yield Endpoint.parse(f"tcp -h 127.0.0.1 -p {port} -t 60000")
    finally:
        proc.terminate()
        await proc.wait()


async def _tarsus_call(locator: str, cache_dir: Path) -> tuple[int, str, str]:
    """``tarsus call`` by name, as its own short-lived process; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tarsus",
        "call",
        "--locator",
        locator,
        "--idl",
        str(ROOT / "examples" / "hello" / "Hello.tars"),
        HELLO_OBJ,
        "sayHello",
        '{"name": "x"}',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TARSUS_CACHE_DIR": str(cache_dir)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_tarsus_call_follows_a_redeploy_on_another_port(tmp_path: Path) -> None:
    """Short-lived ``tarsus call`` processes sharing one cache directory: after the server
    comes back on another port, the first call by name reaches it."""
    registry = Registry()
    greeting = {"return": 0, "greeting": "hello x, from Python"}
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg:
        locator = reg.proxy_string
        async with _hello_process() as old:
            registry.routes[HELLO_OBJ] = ([old], [])
            code, out, err = await _tarsus_call(locator, tmp_path)
            assert code == 0 and json.loads(out) == greeting, err
        async with _hello_process() as new:
            assert new != old
            registry.routes[HELLO_OBJ] = ([new], [])
            for _ in range(2):  # the first call, and the next process (the cache now says new)
                code, out, err = await _tarsus_call(locator, tmp_path)
                assert code == 0 and json.loads(out) == greeting, err
            doc = json.loads((tmp_path / "endpoints.json").read_text())
            assert doc["entries"][0]["active"] == [str(new)]

    # the registry is gone: the cache still bridges
    async with _hello_process() as again:
        # hand the cache the endpoint the registry would list (the server keeps one port)
        (entry,) = doc["entries"]
        entry["active"] = [str(again)]
        (tmp_path / "endpoints.json").write_text(json.dumps(doc))
        code, out, err = await _tarsus_call(locator, tmp_path)
        assert code == 0 and json.loads(out) == greeting, err


async def test_a_long_lived_communicator_follows_a_server_to_another_port(
    tmp_path: Path,
) -> None:
    """Refreshes are an hour apart: only a refused connection can make the client ask."""
    hello: Any = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test
    schedule = RefreshSchedule(refresh_interval=3600.0, fail_interval=0.01)
    registry = Registry()
    async with serve(registry, "tars.tarsregistry.QueryObj") as reg:
        comm = Communicator(reg.proxy_string, refresh_schedule=schedule, cache_dir=tmp_path)
        async with comm:
            prx = comm.string_to_proxy(hello.HelloProxy, HELLO_OBJ)
            async with _hello_process() as old:
                registry.routes[HELLO_OBJ] = ([old], [])
                assert await prx.sayHello("x") == (0, "hello x, from Python")
            async with _hello_process() as new:
                assert new != old
                registry.routes[HELLO_OBJ] = ([new], [])
                assert await prx.sayHello("y") == (0, "hello y, from Python")
