"""``SyncCommunicator``: blocking calls from plain threads to a real server over real sockets.

The server is ``tarsus.testing.serve`` on an asyncio loop in a background thread; the callers
are ordinary threads with no event loop of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
from tarsus.rpc import current
from tarsus.rpc.errors import InvokeTimeout, ServerError, TarsError
from tarsus.rpc.sync import SyncCommunicator
from tarsus.testing import ServerThread

IDL = """
module Demo {
    struct Point { 0 require int x; 1 optional int y; };
    interface Calc {
        int add(int a, int b, out int sum);
        Point mirror(Point p);
        map<string, string> echoContext();
        int fail(int code);
        int slow(int ms);
        void hold();
        int holding();
        void release();
    };
};
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("demo") / "Demo.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Demo


@pytest.fixture(scope="module")
def calc(demo: Any) -> Iterator[str]:
    """The proxy string of a running Demo.CalcServer.CalcObj."""
    gate: dict[str, Any] = {"holding": 0}

    class CalcImpl(demo.CalcServant):  # type: ignore[misc]
        async def add(self, a: int, b: int) -> tuple[int, int]:
            return 0, a + b

        async def mirror(self, p: Any) -> Any:
            return demo.Point(x=p.y, y=p.x)

        async def echoContext(self) -> dict[str, str]:
            return dict(current().context)

        async def fail(self, code: int) -> int:
            raise TarsError(code, "as asked")

        async def slow(self, ms: int) -> int:
            await asyncio.sleep(ms / 1000)
            return ms

        async def hold(self) -> None:
            gate["holding"] += 1
            await gate.setdefault("open", asyncio.Event()).wait()

        async def holding(self) -> int:
            return int(gate["holding"])

        async def release(self) -> None:
            gate.setdefault("open", asyncio.Event()).set()

    server = ServerThread(CalcImpl(), "Demo.CalcServer.CalcObj")
    try:
        yield server.served.proxy_string
    finally:
        server.stop()


def test_blocking_calls_return_results(demo: Any, calc: str) -> None:
    with SyncCommunicator() as comm:
        proxy = comm.string_to_proxy(demo.CalcProxy, calc)
        assert proxy.add(2, 3) == (0, 5)
        assert proxy.mirror(demo.Point(x=1, y=2)) == demo.Point(x=2, y=1)
        assert proxy.with_options(context={"k": "v"}).echoContext() == {"k": "v"}
        assert proxy.echoContext() == {}  # with_options made a new proxy
        with pytest.raises(ServerError) as e:
            proxy.fail(4321)
        assert e.value.code == 4321 and e.value.message == "as asked"
        with pytest.raises(InvokeTimeout):
            proxy.tars_set_timeout(50).slow(2000)
        assert proxy.add(1, 1) == (0, 2)  # still usable after the failures
        with pytest.raises(AttributeError):
            proxy.nosuchmethod()


@pytest.mark.parametrize("loop", ["default", "asyncio"])
def test_many_threads_share_one_communicator(demo: Any, calc: str, loop: str) -> None:
    """On the default loop (uvloop when installed) and on asyncio's."""
    options = {"loop_factory": asyncio.new_event_loop} if loop == "asyncio" else {}
    with SyncCommunicator(**options) as comm:
        if loop == "asyncio":
            assert isinstance(comm.loop, asyncio.BaseEventLoop)
        proxy = comm.string_to_proxy(demo.CalcProxy, calc)

        def work(n: int) -> list[Any]:
            # each thread also makes its own proxy: string_to_proxy is thread-safe too
            own = comm.string_to_proxy(demo.CalcProxy, calc)
            return [(proxy if i % 2 else own).add(n, i) for i in range(50)]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(16)))
        assert results == [[(0, n + i) for i in range(50)] for n in range(16)]


def test_a_waiting_call_does_not_block_other_threads(demo: Any, calc: str) -> None:
    # hold() answers only after release(): if calls were serialised, release() could not get
    # through while hold() waits, and hold() would time out.
    with SyncCommunicator(timeout_ms=10_000) as comm:
        proxy = comm.string_to_proxy(demo.CalcProxy, calc)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(proxy.hold)
            while proxy.holding() == 0:  # hold() has reached the servant
                time.sleep(0.01)
            assert not held.done()
            proxy.release()
            assert held.result() is None


def test_calling_from_the_loop_thread_is_an_error(demo: Any, calc: str) -> None:
    with SyncCommunicator() as comm:
        proxy = comm.string_to_proxy(demo.CalcProxy, calc)
        outcome: concurrent.futures.Future[BaseException | None] = concurrent.futures.Future()

        def on_loop() -> None:
            try:
                proxy.add(1, 2)
            except BaseException as e:
                outcome.set_result(e)
            else:
                outcome.set_result(None)

        comm.loop.call_soon_threadsafe(on_loop)
        error = outcome.result(timeout=10)
        assert isinstance(error, RuntimeError)
        assert "own loop thread" in str(error)
        # the async proxy underneath is what to use there
        fut = asyncio.run_coroutine_threadsafe(proxy.async_proxy.add(1, 2), comm.loop)
        assert fut.result(timeout=10) == (0, 3)


def test_close_stops_the_thread_and_refuses_calls(demo: Any, calc: str) -> None:
    comm = SyncCommunicator()
    proxy = comm.string_to_proxy(demo.CalcProxy, calc)
    assert proxy.add(1, 1) == (0, 2)
    thread = comm._thread
    comm.close()
    comm.close()  # idempotent
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        proxy.add(1, 1)
    with pytest.raises(RuntimeError, match="closed"):
        comm.string_to_proxy(demo.CalcProxy, calc)
