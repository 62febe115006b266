"""Servers and clients over real sockets: results, return codes, protocols, bad input."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
from tarsus.codec import RequestPacket, ResponsePacket, decode, encode
from tarsus.rpc import current
from tarsus.rpc.client import ObjectProxy
from tarsus.rpc.errors import InvokeTimeout, Ret, ServerError, TarsError
from tarsus.rpc.framing import frame
from tarsus.rpc.proxy import CallOptions
from tarsus.testing import eventually, serve

IDL = """
module Demo {
    struct Point { 0 require int x; 1 optional int y = 9; };
    interface Calc {
        int add(int a, int b, out int sum);
        Point mirror(Point p);
        void note(string text);
        string whoami();
        int fail(int how);
        int slow(int ms);
        int later(int v);
        int blocking(int v);
        map<string, string> echoContext();
        int bounded(int s);
        int boundedAtStart(int ms);
        int boundedIndirect(int ms);
    };
};
"""


IN_CALL: contextvars.ContextVar[int | None] = contextvars.ContextVar("in_call", default=None)


async def _within_a_second(ms: int) -> int:
    async with asyncio.timeout(1):  # needs asyncio.current_task() at once
        await asyncio.sleep(ms / 1000)
    return ms


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("demo") / "Demo.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).Demo


@pytest.fixture(scope="module")
def calc_impl(demo: Any) -> Any:
    class CalcImpl(demo.CalcServant):  # type: ignore[misc,name-defined]
        notes: list[str] = []
        indirect_calls = 0

        async def add(self, a: int, b: int) -> tuple[int, int]:
            return 0, a + b

        async def mirror(self, p: Any) -> Any:
            return demo.Point(x=p.y, y=p.x)

        async def note(self, text: str) -> None:
            CalcImpl.notes.append(text)

        async def whoami(self) -> str:
            cur = current()
            return f"{cur.func_name} id={cur.request_id} peer={cur.peer[0] if cur.peer else '?'}"

        async def fail(self, how: int) -> int:
            if how == 1:
                raise ValueError("bad value")
            if how == 2:
                raise TarsError(12345, "chosen by the servant")
            if how == 3:
                return "not an int"  # type: ignore[return-value]
            return 0

        async def slow(self, ms: int) -> int:
            await asyncio.sleep(ms / 1000)
            return ms

        async def later(self, v: int) -> int:
            cur = current()
            cur.defer()
            asyncio.get_running_loop().call_later(0.01, cur.respond, v * 2)
            return -1  # ignored: the deferred answer wins

        def blocking(self, v: int) -> int:  # type: ignore[override]
            assert threading.current_thread() is not threading.main_thread()
            assert current().func_name == "blocking"
            return v + 1

        async def bounded(self, s: int) -> int:
            if IN_CALL.get() is not None:
                return -2  # a value set by an earlier call leaked into this one
            token = IN_CALL.set(s)  # set in the first step, reset in the task: one context
            try:
                await asyncio.sleep(0)  # suspends: from here a task runs the call
                try:
                    # s > 0 times out; s == 0 must not, however late a loaded machine resumes it
                    async with asyncio.timeout(0.01 if s else 60):
                        await asyncio.sleep(s)
                except TimeoutError:  # thrown in through the task, caught here
                    return 1
                return 0
            finally:
                IN_CALL.reset(token)

        async def boundedAtStart(self, ms: int) -> int:
            async with asyncio.timeout(1):  # needs asyncio.current_task() at once
                await asyncio.sleep(ms / 1000)
            return ms

        async def boundedIndirect(self, ms: int) -> int:
            self.indirect_calls += 1
            return await _within_a_second(ms)  # the same, where the method cannot show it

        async def echoContext(self) -> dict[str, str]:
            cur = current()
            cur.response_context["answered"] = "yes"
            return dict(cur.context)

    return CalcImpl


async def test_results_and_out_parameters(demo: Any, calc_impl: Any) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        assert await calc.add(2, 3) == (0, 5)
        assert await calc.mirror(demo.Point(x=1, y=2)) == demo.Point(x=2, y=1)
        assert await calc.note("hi") is None
        assert (await calc.whoami()).startswith("whoami id=")
        assert await calc.echoContext() == {}
        ctx = await calc.with_options(context={"k": "v"}).echoContext()
        assert ctx == {"k": "v"}


async def test_many_concurrent_calls_on_one_connection(demo: Any, calc_impl: Any) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        results = await asyncio.gather(*(calc.add(i, i) for i in range(1000)))
        assert results == [(0, 2 * i) for i in range(1000)]
        # replies arriving out of order still reach the right caller
        slow = await asyncio.gather(calc.slow(50), calc.slow(1), calc.slow(20))
        assert slow == [50, 1, 20]


async def test_servant_errors_become_return_codes(demo: Any, calc_impl: Any) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        with pytest.raises(ServerError) as e:
            await calc.fail(1)
        assert e.value.code == Ret.SERVER_UNKNOWN_ERR
        assert "ValueError: bad value" in e.value.message
        with pytest.raises(ServerError) as e:
            await calc.fail(2)
        assert e.value.code == 12345 and e.value.message == "chosen by the servant"
        with pytest.raises(ServerError) as e:
            await calc.fail(3)
        assert e.value.code == Ret.SERVER_ENCODE_ERR
        assert await calc.fail(0) == 0  # the connection is still good


async def test_timeout_one_way_deferred_and_blocking(demo: Any, calc_impl: Any) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        with pytest.raises(InvokeTimeout):
            await calc.with_options(timeout_ms=50).slow(500)
        assert await calc.slow(1) == 1
        before = len(calc_impl.notes)
        assert await calc.tars_oneway().note("fire and forget") is None
        await eventually(lambda: len(calc_impl.notes) > before, "the one-way note to arrive")
        assert calc_impl.notes[-1] == "fire and forget"
        assert await calc.later(21) == 42
        assert await calc.blocking(1) == 2


async def test_eager_calls_hand_on_to_a_task_only_when_they_suspend(
    demo: Any, calc_impl: Any
) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        assert await calc.bounded(0) == 0
        assert await calc.bounded(5) == 1  # its timeout fired inside the task
        assert await asyncio.gather(*(calc.bounded(i % 2) for i in range(20))) == [0, 1] * 10
        assert s.adapter.inflight == 0 and not s.adapter.tasks
        # The first step runs before any task exists: a method that names asyncio.timeout
        # (or a TaskGroup...) is dispatched in a task (docs/rpc-server.md "Eager dispatch") ...
        assert await calc.boundedAtStart(1) == 1
        # ... and one that turns out to need a task (in code it calls) is run again in one,
        # once, and dispatched in a task from then on
        impl = s.adapter.servant
        assert await calc.boundedIndirect(1) == 1
        assert impl.indirect_calls == 2
        assert await calc.boundedIndirect(2) == 2
        assert impl.indirect_calls == 3
        assert await calc.add(1, 2) == (0, 3)  # and the connection serves on
    # ... and all works on an adapter that runs every call in a task of its own.
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj", eager=False) as s:
        calc = s.proxy(demo.CalcProxy)
        assert await calc.boundedAtStart(1) == 1
        assert await calc.bounded(5) == 1
        assert await calc.later(4) == 8
        assert await calc.blocking(1) == 2


async def test_timeouts_of_calls_sharing_a_connection(demo: Any, calc_impl: Any) -> None:
    """Calls on one connection share one timeout timer: a short timeout sent after a long one
    still fires first, and answered calls are never failed by it."""
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        order: list[str] = []

        async def call(name: str, timeout_ms: int, ms: int) -> Any:
            try:
                result = await calc.with_options(timeout_ms=timeout_ms).slow(ms)
            except InvokeTimeout as e:
                order.append(f"{name} timed out")
                return e
            order.append(f"{name} answered")
            return result

        long_ok, short_late, quick = await asyncio.gather(
            call("long", 5000, 1000),  # arms the timer at its 5 s deadline
            call("short", 250, 10_000),  # must re-arm it earlier
            call("quick", 5000, 1),
        )
        assert order == ["quick answered", "short timed out", "long answered"]
        assert (long_ok, quick) == (1000, 1)
        assert "Demo.CalcServer.CalcObj.slow" in str(short_late)
        assert "within 250 ms" in str(short_late)
        # Many calls timing out together, then the connection still carries calls.
        timeouts = await asyncio.gather(
            *(calc.with_options(timeout_ms=20 + i).slow(10_000) for i in range(50)),
            return_exceptions=True,
        )
        assert all(isinstance(t, InvokeTimeout) for t in timeouts)
        assert await calc.add(2, 2) == (0, 4)


@pytest.mark.parametrize("version", [3, 5])
async def test_tup_and_json_protocols(demo: Any, calc_impl: Any, version: int) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy, version=version)
        assert await calc.add(20, 22) == (0, 42)
        assert await calc.mirror(demo.Point(x=5)) == demo.Point(x=9, y=5)
        with pytest.raises(ServerError) as e:
            await calc.fail(2)
        assert e.value.code == 12345


async def test_framework_return_codes(demo: Any, calc_impl: Any) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        obj: ObjectProxy = s.communicator.object_proxy(s.proxy_string)
        # tars_ping: answered with success by the framework
        rsp = await obj.invoke_raw("tars_ping", b"", CallOptions())
        assert rsp.iRet == 0
        with pytest.raises(ServerError) as e:
            await obj.invoke_raw("nope", b"", CallOptions())
        assert e.value.code == Ret.SERVER_NO_FUNC
        with pytest.raises(ServerError) as e:
            await obj.invoke_raw("add", b"\x10", CallOptions())  # truncated arguments
        assert e.value.code == Ret.SERVER_DECODE_ERR
        other = s.communicator.object_proxy(f"Demo.Other.Obj@{s.endpoint}")
        with pytest.raises(ServerError) as e:
            await other.invoke_raw("add", b"", CallOptions())
        assert e.value.code == Ret.SERVER_NO_SERVANT


def _raw_call(port: int, payload: bytes, *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        data = b""
        while len(data) < 4 or len(data) < struct.unpack(">I", data[:4])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


async def test_bad_input_closes_only_that_connection(demo: Any, calc_impl: Any) -> None:
    async with serve(calc_impl(), "Demo.CalcServer.CalcObj") as s:
        calc = s.proxy(demo.CalcProxy)
        port = s.adapter.port
        loop = asyncio.get_running_loop()
        for garbage in (
            b"\xff" * 64,  # length prefix 4 GiB
            struct.pack(">I", 100 * 1024 * 1024) + b"\x00" * 100,  # 100 MB prefix
            struct.pack(">I", 2),  # shorter than the minimum
            frame(b"\x10\x01\x2c"),  # not a whole RequestPacket
        ):
            got = await loop.run_in_executor(None, _raw_call, port, garbage)
            assert got == b""  # closed without an answer
            assert await calc.add(1, 1) == (0, 2)
        # a valid packet split at every byte still works
        req = RequestPacket(
            iRequestId=9,
            sServantName="Demo.CalcServer.CalcObj",
            sFuncName="add",
            sBuffer=demo.CalcServant._tars_ops_["add"].encode_args((1, 2)),
        )
        data = frame(encode(req))

        def dribble() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                for i in range(len(data)):
                    sock.sendall(data[i : i + 1])
                return sock.recv(65536)

        got = await loop.run_in_executor(None, dribble)
        rsp = decode(got[4:], ResponsePacket)
        assert rsp.iRequestId == 9 and rsp.iRet == 0


ROUTE_IDL = """
module Route {
    interface Shard { string where(routekey long user, string note); };
};
"""


async def test_a_routekey_parameter_pins_calls_to_one_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "Route.tars"
    path.write_text(ROUTE_IDL)
    route = tarsus.idl.load(path).Route

    def shard(label: str) -> Any:
        class ShardImpl(route.ShardServant):  # type: ignore[misc,name-defined]
            async def where(self, user: int, note: str) -> str:
                assert current().status.get("STATUS_GRID_KEY") == str(user)
                return label

        return ShardImpl()

    async with (
        serve(shard("a"), "Route.S.ShardObj") as a,
        serve(shard("b"), "Route.S.ShardObj") as b,
    ):
        proxy = a.communicator.string_to_proxy(
            route.ShardProxy, f"Route.S.ShardObj@{a.endpoint}:{b.endpoint}"
        )
        for user in range(20):
            answers = {await proxy.where(user, "x") for _ in range(5)}
            assert len(answers) == 1, f"user {user} went to {answers}"
        spread = {await proxy.where(user, "x") for user in range(20)}
        assert spread == {"a", "b"}
