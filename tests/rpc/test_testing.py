"""``tarsus.testing``, the kit our users test their servants with: real servers in a thread,
free ports that really are free, and waits that fail naming what never happened."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
import tarsus.testing
from tarsus.rpc.sync import SyncCommunicator
from tarsus.testing import (
    LoopThread,
    ServerThread,
    TarsusUp,
    eventually,
    eventually_sync,
    free_port,
    free_ports,
    port_is_free,
)

ROOT = Path(__file__).resolve().parents[2]
HELLO_IDL = ROOT / "examples" / "hello" / "Hello.tars"
Test: Any = tarsus.idl.load(HELLO_IDL).Test
OBJ = "Test.HelloServer.HelloObj"


class Hello(Test.HelloServant):  # type: ignore[misc]
    def __init__(self) -> None:
        self.names: list[str] = []

    async def sayHello(self, name: str) -> tuple[int, str]:
        self.names.append(name)
        return 0, f"hello {name}"


# ---------------------------------------------------------------------------------------------
# a server in a thread


@pytest.mark.slow
def test_server_thread_serves_blocking_callers_and_other_processes() -> None:
    servant = Hello()
    with ServerThread(servant, OBJ) as server:
        with SyncCommunicator() as comm:
            hello = comm.string_to_proxy(Test.HelloProxy, server.proxy_string)
            assert hello.sayHello("sync") == (0, "hello sync")
        done = subprocess.run(
            [sys.executable, "-m", "tarsus", "call", server.proxy_string, "sayHello",
             '{"name": "cli"}', "--idl", str(HELLO_IDL)],
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if k != "TARSUS_LOCATOR"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "hello cli" in done.stdout

        async def names() -> list[str]:  # on the server's own loop
            return list(servant.names)

        assert server.run(names()) == ["sync", "cli"]
        port = server.served.adapter.port
    assert port_is_free(port)  # stopped: nothing listens any more


def test_loop_thread_runs_coroutines_on_its_thread_and_passes_their_errors_on() -> None:
    async def thread_id() -> int:
        return threading.get_ident()

    async def broken() -> None:
        raise KeyError("from the loop")

    with LoopThread() as loop:
        assert loop.run(thread_id()) != threading.get_ident()
        with pytest.raises(KeyError, match="from the loop"):
            loop.run(broken())
    assert loop.loop.is_closed()
    loop.close()  # twice is harmless


# ---------------------------------------------------------------------------------------------
# free ports


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(p in tarsus.testing.PORT_RANGE for p in ports)
    with contextlib.ExitStack() as stack:
        for port in ports:  # every one can be listened on
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", port))
            sock.listen()


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        monkeypatch.setattr(tarsus.testing, "PORT_RANGE", range(taken, taken + 1))
        with pytest.raises(RuntimeError, match=r"only 0 of 1 ports free"):
            free_port()


def test_port_is_free_tells_a_listened_port_from_a_free_one() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free(port)
    assert port_is_free(port)


# ---------------------------------------------------------------------------------------------
# eventually


class Countdown:
    """Falsy answers (or ``error``) ``n`` times, then ``value``."""

    def __init__(self, n: int, value: Any = "done", error: Exception | None = None) -> None:
        self.left = n
        self.value = value
        self.error = error
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            if self.error is not None:
                raise self.error
            return []
        return self.value

    async def async_call(self) -> Any:
        await asyncio.sleep(0)
        return self()


async def test_eventually_returns_the_first_truthy_answer_of_plain_and_async_checks() -> None:
    plain = Countdown(3, value={"port": 1})
    assert await eventually(plain, "the port", interval=0.001) == {"port": 1}
    assert plain.calls == 4
    coro = Countdown(2, value=7)
    assert await eventually(coro.async_call, "seven", interval=0.001) == 7
    assert coro.calls == 3


async def test_eventually_fails_naming_what_never_happened_and_the_last_answer() -> None:
    never = Countdown(10**9)
    with pytest.raises(AssertionError) as failed:
        await eventually(never, "the node to report Active", timeout=0.05, interval=0.001)
    message = str(failed.value)
    assert "the node to report Active" in message
    assert "never happened within 0.05 s" in message
    assert "last check: []" in message


async def test_eventually_waits_through_ignored_errors_only() -> None:
    flaky = Countdown(2, value="up", error=ConnectionRefusedError("not yet"))
    assert await eventually(flaky, "up", interval=0.001, ignoring=ConnectionRefusedError) == "up"
    assert flaky.calls == 3

    broken = Countdown(2, error=KeyError("a bug"))
    with pytest.raises(KeyError):
        await eventually(broken, "up", interval=0.001, ignoring=ConnectionRefusedError)
    assert broken.calls == 1  # a real error is not retried

    down = Countdown(10**9, error=ConnectionRefusedError("still down"))
    with pytest.raises(AssertionError, match="still down"):
        await eventually(down, "up", timeout=0.05, interval=0.001, ignoring=OSError)


def test_eventually_sync_blocks_until_the_condition_and_fails_the_same_way() -> None:
    plain = Countdown(3, value=42)
    assert eventually_sync(plain, "the answer", interval=0.001) == 42
    assert plain.calls == 4
    flaky = Countdown(1, value="ok", error=OSError("not yet"))
    assert eventually_sync(flaky, "ok", interval=0.001, ignoring=OSError) == "ok"
    with pytest.raises(AssertionError, match=r"never happened within 0.05 s: the log line"):
        eventually_sync(Countdown(10**9), "the log line", timeout=0.05, interval=0.001)


def test_eventually_sync_adds_what_describe_says_to_its_failure() -> None:
    with pytest.raises(AssertionError) as failed:
        eventually_sync(
            Countdown(10**9), "the up line", timeout=0.05, interval=0.001,
            describe=lambda: "--- up.log:\nport 17890 taken",
        )  # fmt: skip
    assert str(failed.value).endswith("(last check: [])\n--- up.log:\nport 17890 taken")


# ---------------------------------------------------------------------------------------------
# tarsus up (started for real in tests/framework/test_up.py and test_up_processes.py)


def test_tarsus_up_refuses_to_start_beside_a_framework_on_its_ports(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(AssertionError, match=rf"ports \[{port}\] are taken"):
            TarsusUp(log=tmp_path / "up.log", cwd=tmp_path, ports=(port,))
    assert not (tmp_path / "up.log").exists()  # nothing was started


def test_a_tarsus_up_that_exits_fails_with_its_output(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    with pytest.raises(AssertionError) as failed:
        TarsusUp("--no-such-option", log=log, cwd=tmp_path, ports=())
    message = str(failed.value)
    assert "tarsus up exited (2)" in message
    assert "No such option: --no-such-option" in message, message
