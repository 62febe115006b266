"""Bare object names resolved through a registry: a real QueryF servant over real sockets.

The registry here is a small in-test ``QueryFServant`` whose answers each test sets; the
business servants are real servers. Nothing is faked below the QueryF interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
import tarsus.protocol
from tarsus.rpc import current
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import NoEndpointError
from tarsus.rpc.locator import RefreshSchedule, RegistryObjectProxy, check_set_division
from tarsus.testing import Served, eventually, free_port, serve

QUERYF: Any = tarsus.idl.load(tarsus.protocol.path("QueryF.tars")).tars
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


class Registry(QUERYF.QueryFServant):  # type: ignore[misc,name-defined]
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
    return QUERYF.EndpointF(
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
