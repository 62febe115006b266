"""A Tarsus server under attack keeps serving everyone else, and its memory stays bounded.

The server under attack is the real Hello example (``examples/hello/server.py``) in a
subprocess, so its memory (RSS and open file descriptors, read from ``/proc``) is measured
apart from the test's own. A well-behaved client keeps one connection open through each
attack and must be answered after every hostile input. Where a short idle timeout (``-t``) is
needed, the server runs in-process instead (memory is not measured there).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tarsus.idl
from tarsus.codec import RequestPacket, ResponsePacket, decode, encode
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import ConnectError, InvokeTimeout, Ret
from tarsus.rpc.framing import frame, split_frames
from tarsus.testing import eventually, eventually_sync, free_port, port_is_free

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
OBJ = "Test.HelloServer.HelloObj"
Test: Any = tarsus.idl.load(HELLO / "Hello.tars").Test
SAY_HELLO = Test.HelloServant._tars_ops_["sayHello"]
MB = 1024 * 1024

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


# ---------------------------------------------------------------------------------------------
# the server under attack, and clients


class HelloServer:
    """``examples/hello/server.py`` in a subprocess."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = dict(os.environ)
        if "asan" in env.get("LD_PRELOAD", ""):
            # An AddressSanitizer build of the codec extension: keep ASan's quarantine from
            # holding freed memory, so RSS measures what the server itself keeps.
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(HELLO / "server.py"), "--port", str(self.port)],
                stdout=out,
                stderr=out,
                env=env,
            )

        def listening() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the hello server exited ({self.proc.returncode})")
            return not port_is_free(self.port)

        try:
            eventually_sync(listening, "the hello server to listen", describe=self.log_tail)
        except AssertionError:
            self.stop()
            raise

    @property
    def proxy_string(self) -> str:
        return f"{OBJ}@tcp -h 127.0.0.1 -p {self.port} -t 60000"

    def log_tail(self) -> str:
        return self.log.read_bytes()[-3000:].decode("utf-8", "replace")

    def _status_kb(self, key: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {key} in /proc/{self.proc.pid}/status")

    def rss(self) -> int:
        """Resident memory in bytes."""
        return self._status_kb("VmRSS") * 1024

    def peak_rss(self) -> int:
        """The highest resident memory so far (VmHWM), in bytes."""
        return self._status_kb("VmHWM") * 1024

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"the server died:\n{self.log_tail()}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelloServer]:
    srv = HelloServer(tmp_path_factory.mktemp("hello") / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def request(
    name: str = "x", *, rid: int = 1, version: int = 1, func: str = "sayHello", **fields: Any
) -> bytes:
    """A framed request for ``sayHello(name)`` (fields of RequestPacket may be overridden)."""
    packet = RequestPacket(
        iVersion=version,
        iRequestId=rid,
        sServantName=OBJ,
        sFuncName=func,
        sBuffer=SAY_HELLO.encode_args((name,)),
        iTimeout=3000,
    )
    for k, v in fields.items():
        setattr(packet, k, v)
    return frame(encode(packet))


class GoodClient:
    """A well-behaved client on one raw connection that it keeps for the whole attack."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = bytearray()
        self.ids = itertools.count(1)

    def say_hello(self, name: str) -> tuple[int, str]:
        rid = next(self.ids)
        self.sock.sendall(request(name, rid=rid))
        while not (frames := split_frames(self.buf)):
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed a well-behaved client's connection"
            self.buf += chunk
        (body,) = frames
        rsp = decode(body, ResponsePacket)
        assert (rsp.iRequestId, rsp.iRet) == (rid, 0), rsp
        result: tuple[int, str] = SAY_HELLO.decode_results(rsp.sBuffer)
        return result

    def check(self) -> None:
        assert self.say_hello("good") == (0, "hello good, from Python")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def good(server: HelloServer) -> Iterator[GoodClient]:
    client = GoodClient(server.port)
    client.check()
    try:
        yield client
    finally:
        client.close()


def send_and_read(port: int, payload: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``payload`` on a new connection, then half-close; read until the server closes.

    Returns what the server sent and whether it reset the connection. Fails if the server
    keeps the connection open: after our EOF, nothing more can come.
    """
    data = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pytest.fail(f"the server kept the connection open {timeout} s after EOF")
        except OSError:  # reset, broken pipe, or not connected any more
            return bytes(data), True
    return bytes(data), False


def replies(data: bytes) -> list[Any]:
    """The server's answers in ``data``, each decoded (TUP replies are RequestPackets)."""
    buf = bytearray(data)
    out = []
    for body in split_frames(buf):
        tup = body[:2] in (b"\x10\x02", b"\x10\x03")  # iVersion (tag 1) 2 or 3
        out.append(decode(body, RequestPacket if tup else ResponsePacket))
    assert not buf, f"the server sent a partial frame: {bytes(buf[:64]).hex()}"
    return out


# ---------------------------------------------------------------------------------------------
# hostile bytes


VALID = request("fuzz", rid=77)

garbage = st.binary(max_size=3000)
framed_garbage = st.binary(max_size=3000).map(frame)
mutated = st.lists(
    st.tuples(st.integers(4, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
).map(lambda edits: _mutate(VALID, edits))
bad_arguments = st.builds(
    lambda version, func, body, oneway: request(
        rid=99, version=version, func=func, sBuffer=body, cPacketType=int(oneway)
    ),
    st.sampled_from([1, 2, 3, 5]),
    st.sampled_from(["sayHello", "tars_ping", "nope", ""]),
    st.binary(max_size=200),
    st.booleans(),
)


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos] = value
    return bytes(out)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=st.one_of(garbage, framed_garbage, mutated, bad_arguments))
def test_random_bytes(server: HelloServer, good: GoodClient, payload: bytes) -> None:
    """Garbage, framed garbage, mutated requests and requests with random arguments.

    Each goes on its own connection, which we half-close after sending. As C++ does, the server
    closes a connection on EOF, so answers still being computed are dropped: most examples
    end "closed", and the ones answered at once (-1, -3, -4, ping) show what was sent back.
    """
    data, reset = send_and_read(server.port, payload)
    answers = replies(data)  # whatever the server answers is a well-formed Tars packet
    for rsp in answers:
        code = rsp.iRet if isinstance(rsp, ResponsePacket) else rsp.status["STATUS_RESULT_CODE"]
        assert int(code) >= Ret.SERVER_UNKNOWN_ERR  # C++ clients drop anything below -99
        event(f"answered {code}")
    if not answers:
        event("reset" if reset else "closed")
    server.assert_alive()
    good.check()


@pytest.mark.parametrize("version", [1, 2, 3, 5])
def test_undecodable_arguments_are_answered_with_decode_error(
    server: HelloServer, good: GoodClient, version: int
) -> None:
    data, _ = send_and_read(server.port, request(rid=5, version=version, sBuffer=b"\x1d\x00\xff"))
    (rsp,) = replies(data)
    assert rsp.iRequestId == 5
    if version in (2, 3):
        assert rsp.status["STATUS_RESULT_CODE"] == str(int(Ret.SERVER_DECODE_ERR))
    else:
        assert rsp.iRet == Ret.SERVER_DECODE_ERR
    good.check()


def test_truncated_frames(server: HelloServer, good: GoodClient) -> None:
    body = VALID[4:]
    for cut in range(1, len(VALID)):
        # the stream ends inside a frame: nothing to answer
        data, _ = send_and_read(server.port, VALID[:cut])
        assert data == b"", f"answered a frame cut at byte {cut}"
        # an honest length around a cut RequestPacket: not Tars, the connection is closed
        if cut < len(body):
            data, _ = send_and_read(server.port, frame(body[:cut]))
            assert data == b"", f"answered a RequestPacket cut at byte {cut}"
    # a good frame, then a cut one on the same connection: the first is still answered
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(VALID + VALID[:20])
        data = b""
        while len(data) < 4 or len(data) < struct.unpack(">I", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "closed without answering the complete frame"
            data += chunk
    (rsp,) = replies(data)
    assert (rsp.iRequestId, rsp.iRet) == (77, 0)
    server.assert_alive()
    good.check()


def closed_without_answer(port: int, payload: bytes, timeout: float = 5.0) -> bool:
    """Send ``payload`` and keep our side open: True if the server then closes the connection
    without answering, False if it answers; fails if it keeps waiting for more."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            return sock.recv(65536) == b""
        except TimeoutError:
            pytest.fail(f"the server still waits for more bytes after {timeout} s")
        except OSError:  # reset (possibly while we were still sending)
            return True


def test_huge_lengths_allocate_nothing(server: HelloServer, good: GoodClient) -> None:
    rss, peak = server.rss(), server.peak_rss()
    body = VALID[4:]
    hostile = {
        # a length prefix is checked before anything is buffered: 4 MB of the claimed 100 MB
        # are sent, and the server must not sit waiting for the rest
        "100 MB prefix": struct.pack(">I", 100 * MB) + b"\0" * (4 * MB),
        "4 GB prefix": struct.pack(">I", 0xFFFFFFFF) + b"\0" * MB,
        # inside a well-sized frame: sBuffer (tag 7, a SimpleList) claiming 2 GB
        "2 GB sBuffer": frame(
            body[: body.index(b"\x7d")] + b"\x7d\x00\x02\x7f\xff\xff\xff" + b"\0" * 64
        ),
        # context (tag 9) as a map claiming 2^31 - 1 entries
        "2^31 context entries": frame(
            body[: body.index(b"\x98")] + b"\x98\x02\x7f\xff\xff\xff" + b"\x06\x01k" * 64
        ),
    }
    for _ in range(3):
        for what, payload in hostile.items():
            assert closed_without_answer(server.port, payload), what
            good.check()
    server.assert_alive()
    # Nothing of the claimed sizes was ever allocated, not even for a moment: the peak RSS
    # (VmHWM) rises by less than the 4 MB a client actually sent.
    assert server.peak_rss() < max(peak, rss + 4 * MB)


# ---------------------------------------------------------------------------------------------
# connections


async def _churn(port: int, count: int, batch: int) -> None:
    """Open ``count`` connections, ``batch`` at a time, and drop them in four different ways."""
    valid = request("churn")
    for start in range(0, count, batch):
        conns = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(batch))
        )
        for i, (_, writer) in enumerate(conns, start):
            if i % 4 == 1:
                writer.write(valid[:10])  # half a frame
            elif i % 4 == 2:
                writer.write(valid)  # a call whose answer nobody reads
            elif i % 4 == 3:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await asyncio.sleep(0.01)
        for _, writer in conns:
            writer.close()  # with SO_LINGER 0: a reset instead of a FIN
        await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)


@pytest.mark.slow
async def test_thousands_of_connections_opened_and_dropped(server: HelloServer) -> None:
    async with Communicator() as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, server.proxy_string)
        assert await hello.sayHello("a") == (0, "hello a, from Python")
        await _churn(server.port, 400, 100)  # warm up the allocator and the loop's tables
        fds = server.open_fds()
        rss = server.rss()
        await _churn(server.port, 3000, 100)
        # every dropped connection is closed on the server too: its descriptors come back
        await asyncio.to_thread(
            eventually_sync, lambda: server.open_fds() <= fds, "the server to close 3000 sockets"
        )
        assert await hello.sayHello("b") == (0, "hello b, from Python")
        grown = server.rss() - rss
    server.assert_alive()
    # A connection that the server kept would cost its transport, protocol, socket object and
    # read buffer: well over 2 KB, so 3000 of them over 6 MB. The bound sits under that.
    assert grown < 6 * MB, f"RSS grew by {grown / MB:.1f} MB over 3000 dropped connections"


def test_client_that_never_reads_its_replies(server: HelloServer, good: GoodClient) -> None:
    rss = server.rss()
    flood = request("x" * 200) * 1000  # 1000 pipelined calls, about 270 KB
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            while sent < 64 * MB:
                sock.sendall(flood)
                sent += len(flood)
        # The server stops reading from a peer that does not read its answers (its unsent
        # replies passed the transport's high-water mark), so the peer is pushed back by TCP
        # long before 64 MB; meanwhile everyone else is served.
        assert sent < 64 * MB, "the server kept reading from a client that never reads"
        good.check()
        # What the server holds is one read's worth of calls and their replies (kernel socket
        # buffers hold the rest, outside its RSS): measured at about 4 MB, well under 16.
        assert server.rss() - rss < 16 * MB
    good.check()


# ---------------------------------------------------------------------------------------------
# clients facing dead servers


@contextlib.contextmanager
def stopped(srv: HelloServer) -> Iterator[None]:
    srv.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        srv.proc.send_signal(signal.SIGCONT)


async def test_server_killed_mid_call(tmp_path: Path) -> None:
    srv = HelloServer(tmp_path / "server.log")
    try:
        async with Communicator(timeout_ms=3000) as comm:
            hello = comm.string_to_proxy(Test.HelloProxy, srv.proxy_string)
            assert await hello.sayHello("a") == (0, "hello a, from Python")
            with stopped(srv):
                call = asyncio.ensure_future(hello.sayHello("b"))
                await asyncio.sleep(0.2)  # the request is on its way; nobody answers
                assert not call.done()
                srv.proc.kill()
                await asyncio.to_thread(srv.proc.wait)
            # the kernel resets the dead server's connection: the call fails at once with
            # ConnectError, not after its 3 s timeout (the wait is bounded anyway)
            with pytest.raises(ConnectError):
                await asyncio.wait_for(call, 5)
            with pytest.raises(ConnectError):
                await asyncio.wait_for(hello.sayHello("c"), 5)
    finally:
        srv.stop()


async def test_server_that_stops_answering_times_out(server: HelloServer) -> None:
    async with Communicator() as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, server.proxy_string)
        assert await hello.sayHello("a") == (0, "hello a, from Python")
        with stopped(server), pytest.raises(InvokeTimeout):
            await asyncio.wait_for(hello.with_options(timeout_ms=300).sayHello("b"), 5)
        assert await hello.sayHello("c") == (0, "hello c, from Python")


class HelloImpl(Test.HelloServant):  # type: ignore[misc,name-defined]
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def sayHello(self, name: str) -> tuple[int, str]:
        return 0, f"{self.tag}:{name}"


@contextlib.asynccontextmanager
async def in_process(tag: str, idle_ms: int = 60000) -> AsyncIterator[Any]:
    app = Application()
    adapter = app.add_servant(HelloImpl(tag), OBJ, f"tcp -h 127.0.0.1 -p 0 -t {idle_ms}")
    await app.start()
    try:
        yield adapter
    finally:
        await app.stop(drain_timeout=1.0)


async def test_two_endpoints_one_dead(server: HelloServer) -> None:
    dead = free_port()  # nothing listens there: connections are refused
    both = f"{server.proxy_string}:tcp -h 127.0.0.1 -p {dead} -t 60000"
    async with Communicator() as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, both)
        for i in range(50):
            assert await hello.sayHello(str(i)) == (0, f"hello {i}, from Python")


async def test_one_of_two_servers_dies_between_calls(server: HelloServer) -> None:
    async with in_process("b") as adapter:
        both = f"{server.proxy_string}:tcp -h 127.0.0.1 -p {adapter.port} -t 60000"
        async with Communicator() as comm:
            hello = comm.string_to_proxy(Test.HelloProxy, both)
            answers = {(await hello.sayHello("x"))[1] for _ in range(20)}
            assert answers == {"hello x, from Python", "b:x"}  # both were in use
            await adapter.close()
            await asyncio.sleep(0.1)  # let the client see its connection go
            for i in range(50):
                assert await hello.sayHello(str(i)) == (0, f"hello {i}, from Python")


# ---------------------------------------------------------------------------------------------
# the slow client


async def test_slow_client_is_closed_by_the_idle_timeout() -> None:
    async with in_process("idle", idle_ms=400) as adapter, Communicator() as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, f"{OBJ}@{adapter.bound_endpoint}")
        reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
        partial = request("slow")
        for i in range(10):  # trickle the first bytes, slower than a normal client...
            writer.write(partial[i : i + 1])
            await asyncio.sleep(0.05)
            assert await hello.sayHello(str(i)) == (0, f"idle:{i}")  # others are served
        # ...then never finish the frame: the idle timeout closes the connection
        (good,) = comm.object_proxy(f"{OBJ}@{adapter.bound_endpoint}").adapters.values()
        conn = await good.connection()
        got = await asyncio.wait_for(reader.read(), 10)
        assert got == b""
        writer.close()
        # the good client's connection, idle now too, is closed as well; the next call
        # reconnects
        await eventually(lambda: conn.closed, "the idle connection to be closed")
        assert await hello.sayHello("after") == (0, "idle:after")
