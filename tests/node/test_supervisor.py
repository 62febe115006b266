"""The supervisor with real processes: start, stop, crash, hang, limits, node restarts.

The servers are examples/hello (a real Tars server: it sends keepAlive to the node's
ServerObj over TCP and answers sayHello) and the small scripts in scripts/ for what hello
does not do (ignore SIGTERM, crash, never report). Nothing here asserts a duration: waits
poll for the outcome with generous bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from node_support import (
    HELLO_ADAPTER,
    HELLO_SERVER,
    ROOT,
    NodeHarness,
    hello_descriptor,
    processes_under,
    script_descriptor,
)

from tarsus.framework.node import ActivationLimits, InternalState, NodeError
from tarsus.testing import eventually, free_port

ACTIVE = 2
INACTIVE = 0


async def test_start_reaches_active_on_keepalive_and_serves(harness_factory: Any) -> None:
    node = await harness_factory()
    port = free_port()
    sp = await node.supervisor.load(hello_descriptor(port))
    assert sp.state is InternalState.INACTIVE
    message = await node.supervisor.start_server("Test", "HelloServer")
    assert message.startswith("pid ")
    await node.wait_state("Test", "HelloServer", "Active")
    assert await node.say_hello(port) == "hello node, from Python"
    # the registry heard Activating (with the pid) and then Active
    await eventually(lambda: ACTIVE in node.states("Test", "HelloServer"), "Active reported")
    states = node.states("Test", "HelloServer")
    assert states.index(1) < states.index(ACTIVE)
    assert node.pids("Test", "HelloServer") == [sp.pid]
    # the heartbeat went to our ServerObj: the admin adapter and the servant's adapter beat
    assert set(sp.adapter_heartbeats) == {HELLO_ADAPTER, "AdminAdapter"}
    # the process runs in its own session, in the server's log dir, logging there
    proc = psutil.Process(sp.pid)
    assert os.getsid(sp.pid) == sp.pid
    assert Path(proc.cwd()) == sp.layout.log_dir
    await eventually(lambda: sp.layout.log_file.exists(), "log file")
    # a second start is a no-op
    assert await node.supervisor.start_server("Test", "HelloServer") == "server is already Active"


async def test_graceful_stop_through_adminobj(harness_factory: Any) -> None:
    node = await harness_factory()
    port = free_port()
    sp = await node.supervisor.load(hello_descriptor(port))
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    handle = sp.handle
    assert await node.supervisor.stop_server("Test", "HelloServer") == "server is stopped"
    assert sp.state is InternalState.INACTIVE and sp.pid == 0
    # AdminF.shutdown made it exit by itself (status 0), nobody killed it
    assert handle is not None and handle.returncode == 0
    assert "stopped" in sp.layout.log_file.read_text()
    await eventually(lambda: node.states("Test", "HelloServer")[-1] == INACTIVE, "reported")
    # a manual stop disables the server: the monitor does not bring it back
    assert not sp.enabled and not sp.can_auto_start()
    assert await node.supervisor.stop_server("Test", "HelloServer") == "server state is Inactive. "


async def test_sigkill_for_a_process_that_ignores_sigterm(harness_factory: Any) -> None:
    node = await harness_factory()
    sp = await node.supervisor.load(
        script_descriptor("Stubborn", "ignore_term.py", server_lines="deactivating-timeout=500")
    )
    await node.supervisor.start_server("Demo", "Stubborn")
    assert sp.state is InternalState.ACTIVE  # not_tars: running is Active
    await eventually(lambda: "ignoring SIGTERM" in sp.layout.log_file.read_text(), "script up")
    handle = sp.handle
    await node.supervisor.stop_server("Demo", "Stubborn")
    assert handle is not None and handle.returncode == -signal.SIGKILL
    assert sp.state is InternalState.INACTIVE


async def test_not_tars_env_and_graceful_sigterm(harness_factory: Any) -> None:
    node = await harness_factory()
    sp = await node.supervisor.load(
        script_descriptor("Sleeper", "sleeper.py", server_lines="env=MARK=42;OTHER=x")
    )
    await node.supervisor.start_server("Demo", "Sleeper")
    await eventually(lambda: "MARK=42" in sp.layout.log_file.read_text(), "env passed")
    handle = sp.handle
    await node.supervisor.stop_server("Demo", "Sleeper")
    assert handle is not None and handle.returncode == 0


async def test_crash_is_restarted_with_a_new_process(harness_factory: Any) -> None:
    node = await harness_factory()
    node.fail_reports = True  # a failing registry callback never breaks supervision
    port = free_port()
    sp = await node.supervisor.load(hello_descriptor(port))
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    first = sp.pid
    os.kill(first, signal.SIGKILL)
    await eventually(lambda: sp.pid not in (0, first), "a new process")
    await node.wait_state("Test", "HelloServer", "Active")
    assert await eventually(lambda: node.hello_answers(port), "the new process answers")
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    pids = node.pids("Test", "HelloServer")
    assert pids[:2] == [first, sp.pid]


async def test_a_state_the_registry_did_not_take_is_sent_again(harness_factory: Any) -> None:
    """A server that came up while the registry was not answering (the framework's own
    services, started by the node before the registry) is routed once the registry answers,
    without waiting for a state change or the 60 s keepAlive round."""
    node = await harness_factory(report_retry=0.2, report_retry_max=1.0)
    node.fail_reports = True  # the registry is down
    port = free_port()
    await node.supervisor.load(hello_descriptor(port))
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    await eventually(lambda: ACTIVE in node.states("Test", "HelloServer"), "Active tried")
    node.fail_reports = False  # the registry is back
    heard = len(node.reports)
    await eventually(lambda: len(node.reports) > heard, "the state sent again")
    assert node.states("Test", "HelloServer")[-1] == ACTIVE
    # once taken, it is not sent again and again
    settled = len(node.reports)
    await asyncio.sleep(2.5)
    assert len(node.reports) == settled


@pytest.mark.slow
async def test_hung_server_is_replaced(harness_factory: Any) -> None:
    node = await harness_factory()
    port = free_port()
    desc = hello_descriptor(port, server_lines="hearttimeout=2000\nmainloopticker=300")
    sp = await node.supervisor.load(desc)
    assert sp.heart_timeout() == 2.0  # hearttimeout is milliseconds
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    hung = sp.pid
    os.kill(hung, signal.SIGSTOP)  # alive, but silent
    try:
        await eventually(lambda: sp.pid not in (0, hung), "a replacement process")
        await node.wait_state("Test", "HelloServer", "Active")
        assert await eventually(lambda: node.hello_answers(port), "the replacement answers")
        await eventually(lambda: not psutil.pid_exists(hung), "the hung process is gone")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)


async def test_activating_timeout_kills_and_restarts(harness_factory: Any) -> None:
    node = await harness_factory()
    sp = await node.supervisor.load(
        script_descriptor(
            "Silent", "silent.py", server_type="tars_python", server_lines="activating-timeout=800"
        )
    )
    await node.supervisor.start_server("Demo", "Silent")
    first = sp.pid
    assert sp.state is InternalState.ACTIVATING
    await eventually(lambda: sp.pid not in (0, first), "killed and started again")
    assert sp.state is InternalState.ACTIVATING


async def test_activation_limiter_stops_a_crash_loop(
    harness_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tarsus.framework.node")
    node = await harness_factory(limits=ActivationLimits(max_count=2, punish_interval=600))
    sp = await node.supervisor.load(script_descriptor("Crasher", "crash.py"))
    await node.supervisor.start_server("Demo", "Crasher")
    # starts 1..4 count 0,1,2,3: the fourth makes it exceed max_count=2
    await eventually(lambda: sp.limiter.is_limited(), "limited")
    await eventually(lambda: sp.state is InternalState.INACTIVE and sp.handle is None, "down")
    starts = len(node.pids("Demo", "Crasher"))
    assert starts == 4
    # the operator sees why it died: the end of its output, in the node's log
    assert any("crashing" in r.getMessage() for r in caplog.records)
    for _ in range(10):  # monitor passes go by; nobody starts it
        node.supervisor.check_now()
        await eventually(lambda: not sp.busy, "monitor idle")
    assert len(node.pids("Demo", "Crasher")) == starts
    assert not sp.can_auto_start()
    # the operator is told that it is held back, and until when (about 600 s from now)
    until = int(sp.state_info().exState["LIMITED_UNTIL"])
    assert time.time() + 300 < until < time.time() + 900
    [note] = sp.notes()
    assert "held back by the activation limiter until" in note
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(until)) in note
    # an admin start is not limited, and resets the limiter: the server gets its allowance
    await node.supervisor.start_server("Demo", "Crasher")
    await eventually(lambda: len(node.pids("Demo", "Crasher")) > starts + 1, "started again")
    await eventually(lambda: sp.limiter.is_limited(), "limited again")
    await eventually(lambda: sp.state is InternalState.INACTIVE and sp.handle is None, "down")
    await eventually(lambda: len(node.pids("Demo", "Crasher")) == 2 * starts, "as many starts")


async def test_node_restart_adopts_running_and_restarts_dead(
    harness_factory: Any, tmp_path: Path
) -> None:
    node_port = free_port()
    node = await harness_factory(node_port=node_port)
    hello_port = free_port()
    await node.supervisor.load(hello_descriptor(hello_port, server_lines="mainloopticker=500"))
    sleeper = await node.supervisor.load(script_descriptor("Sleeper", "sleeper.py"))
    await node.supervisor.start_server("Test", "HelloServer")
    await node.supervisor.start_server("Demo", "Sleeper")
    await node.wait_state("Test", "HelloServer", "Active")
    hello_pid = node.supervisor.get("Test", "HelloServer").pid
    sleeper_pid = sleeper.pid
    await node.stop(stop_services=False)  # the node goes away; its services do not
    assert psutil.pid_exists(hello_pid) and psutil.pid_exists(sleeper_pid)
    os.kill(sleeper_pid, signal.SIGKILL)  # one dies while nobody watches
    await eventually(lambda: not _running(sleeper_pid), "sleeper dead")

    node2 = await harness_factory(node_port=node_port)  # same data dir: same cache
    restored = await node2.supervisor.restore()
    assert {sp.server_id for sp in restored} == {"Test.HelloServer", "Demo.Sleeper"}
    hello = node2.supervisor.get("Test", "HelloServer")
    assert hello.pid == hello_pid and hello.state is InternalState.ACTIVE  # adopted
    assert hello.handle is not None and hello.handle.adopted
    sleeper2 = node2.supervisor.get("Demo", "Sleeper")
    await eventually(lambda: sleeper2.pid not in (0, sleeper_pid), "the dead one restarted")
    # no duplicates: one hello process for this node
    hellos = [p for p in processes_under(tmp_path) if "HelloServer" in " ".join(p.cmdline())]
    assert [p.pid for p in hellos] == [hello_pid]
    # the adopted process still answers, and its keepAlive reaches the new node
    assert await node2.say_hello(hello_port)
    beat = hello.last_heartbeat
    await eventually(lambda: hello.last_heartbeat > beat, "keepAlive to the new node", timeout=30)
    # an adopted process that crashes is noticed and restarted too
    os.kill(hello_pid, signal.SIGKILL)
    await eventually(lambda: hello.pid not in (0, hello_pid), "adopted crash restarted")
    await node2.wait_state("Test", "HelloServer", "Active")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def test_notify_and_destroy(harness_factory: Any) -> None:
    node = await harness_factory()
    port = free_port()
    sp = await node.supervisor.load(hello_descriptor(port))
    with pytest.raises(NodeError) as refused:
        await node.supervisor.notify("Test", "HelloServer", "hello.ping x")
    assert refused.value.code == 1004
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    assert await node.supervisor.notify("Test", "HelloServer", "hello.ping x") == "pong x"
    with pytest.raises(NodeError, match="not Inactive"):
        await node.supervisor.destroy("Test", "HelloServer")
    await node.supervisor.stop_server("Test", "HelloServer")
    server_dir, log_dir = sp.layout.server_dir, sp.layout.log_dir
    assert server_dir.exists() and log_dir.exists()
    await node.supervisor.destroy("Test", "HelloServer")
    assert not server_dir.exists() and not log_dir.exists()
    assert node.supervisor.get("Test", "HelloServer") is None
    assert "Test.HelloServer" not in node.supervisor.cache


async def test_shutdown_can_stop_every_service(harness_factory: Any, tmp_path: Path) -> None:
    node = await harness_factory()
    await node.supervisor.load(script_descriptor("Sleeper", "sleeper.py"))
    await node.supervisor.start_server("Demo", "Sleeper")
    # (a child just forked may not have exec'd its command line yet)
    await eventually(lambda: processes_under(tmp_path), "the service to run")
    await node.stop(stop_services=True)
    assert not processes_under(tmp_path)
    entry = node.supervisor.cache.get("Demo.Sleeper")
    assert entry is not None and entry.pid == 0 and entry.enabled


async def test_without_a_cache_a_running_server_is_adopted_from_its_keepalive(
    harness_factory: Any, tmp_path: Path
) -> None:
    node_port = free_port()
    node = await harness_factory(node_port=node_port)
    port = free_port()
    desc = hello_descriptor(port, server_lines="mainloopticker=300")
    sp = await node.supervisor.load(desc)
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    running = sp.pid
    await node.stop(stop_services=False)
    node.settings.cache_file.unlink()  # the node lost its memory of what runs

    # a node that waits for heartbeats before starting anything it knows nothing about
    node2 = await harness_factory(node_port=node_port, startup_grace=600.0)
    sp2 = await node2.supervisor.load(desc)
    assert sp2.state is InternalState.INACTIVE and sp2.handle is None
    await node2.wait_state("Test", "HelloServer", "Active")  # the keepAlive told it
    assert sp2.pid == running and sp2.handle is not None and sp2.handle.adopted
    hellos = [p for p in processes_under(tmp_path) if "HelloServer" in " ".join(p.cmdline())]
    assert [p.pid for p in hellos] == [running]
    # and it is supervised like any other: a crash brings a new one
    os.kill(running, signal.SIGKILL)
    await eventually(lambda: sp2.pid not in (0, running), "restarted")


NODEF = ROOT / "tarsus" / "protocol" / "NodeF.tars"


async def _keep_alive(node: NodeHarness, app: str, server: str, pid: int) -> int:
    """A ``keepAlive`` naming ``pid``, sent as anyone can: ``tarsus call`` in its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tarsus",
        "call",
        "--idl",
        str(NODEF),
        f"tars.tarsnode.ServerObj@{node.settings.node_endpoint}",
        "keepAlive",
        json.dumps({"serverInfo": {"application": app, "serverName": server, "pid": pid}}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return int(json.loads(out)["return"])


async def test_a_keepalive_naming_another_process_never_makes_the_node_kill_it(
    harness_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tarsus.framework.node")
    node = await harness_factory()
    port = free_port()
    sp = await node.supervisor.load(hello_descriptor(port, server_lines="mainloopticker=300"))
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    await node.supervisor.stop_server("Test", "HelloServer")
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        # a stopped server: nobody's pid is taken for it, not even the node's own or init's
        for pid in (bystander.pid, os.getpid(), 1):
            assert await _keep_alive(node, "Test", "HelloServer", pid) == 0
            assert sp.handle is None and sp.state is InternalState.INACTIVE
        assert node.pids("Test", "HelloServer")[-1] != bystander.pid
        assert await node.supervisor.stop_server("Test", "HelloServer") == (
            "server state is Inactive. "
        )
        assert bystander.poll() is None
        assert any(f"pid {bystander.pid} ignored" in r.getMessage() for r in caplog.records)

        # a running server: the heartbeat neither replaces its process nor counts for it
        await node.supervisor.start_server("Test", "HelloServer")
        await node.wait_state("Test", "HelloServer", "Active")
        server_pid = sp.pid
        assert await _keep_alive(node, "Test", "HelloServer", bystander.pid) == 0
        assert sp.pid == server_pid
        await node.supervisor.stop_server("Test", "HelloServer")
        assert bystander.poll() is None and sp.pid == 0
    finally:
        bystander.kill()
        bystander.wait()


async def test_a_cached_pid_that_now_runs_another_command_is_not_adopted(
    harness_factory: Any,
) -> None:
    node_port = free_port()
    node = await harness_factory(node_port=node_port)
    sp = await node.supervisor.load(script_descriptor("Sleeper", "sleeper.py"))
    await node.supervisor.start_server("Demo", "Sleeper")
    await eventually(lambda: node.supervisor.cache.get("Demo.Sleeper").cmdline, "cached")
    await node.stop(stop_services=True)
    # the cache now names a process that runs something else (a recycled pid, an edit)
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        entry = node.supervisor.cache.get("Demo.Sleeper")
        create_time = psutil.Process(bystander.pid).create_time()
        data = json.loads(node.settings.cache_file.read_text())
        data["servers"]["Demo.Sleeper"].update(pid=bystander.pid, create_time=create_time)
        node.settings.cache_file.write_text(json.dumps(data))
        assert entry is not None and entry.enabled

        node2 = await harness_factory(node_port=node_port)
        await node2.supervisor.restore()
        sp = node2.supervisor.get("Demo", "Sleeper")
        await eventually(lambda: sp.pid not in (0, bystander.pid), "started its own process")
        await node2.supervisor.stop_server("Demo", "Sleeper")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


async def test_heartbeats_from_the_child_of_a_start_script_count(harness_factory: Any) -> None:
    """A start script that runs the server as its child (no ``exec``): the node supervises
    the script's process, and the server's heartbeats (another pid: a descendant) count."""
    node = await harness_factory()
    port = free_port()
    desc = hello_descriptor(
        port,
        exe_path="",
        start_script="start.sh",
        server_lines="hearttimeout=2000\nmainloopticker=300",
    )
    sp = await node.supervisor.load(desc)
    sp.layout.bin_dir.mkdir(parents=True, exist_ok=True)
    script = sp.layout.bin_dir / "start.sh"
    script.write_text(
        f'#!/bin/sh\n"{sys.executable}" "{HELLO_SERVER}" "--config={sp.layout.conf_file}"\n'
    )
    script.chmod(0o755)
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")  # the child's keepAlive did it
    script_pid = sp.pid
    [server] = psutil.Process(script_pid).children()
    assert "--config=" in " ".join(server.cmdline())
    # heartbeats keep coming for longer than the heart timeout: the server is kept
    first = sp.last_heartbeat
    await eventually(lambda: sp.last_heartbeat > first + 2 * sp.heart_timeout(), "heartbeats")
    assert sp.pid == script_pid and sp.state is InternalState.ACTIVE
    assert await node.say_hello(port) == "hello node, from Python"
    await node.supervisor.stop_server("Test", "HelloServer")
    assert not _running(server.pid) and not _running(script_pid)
