"""``tarsus up`` as a user runs it: one command, then a call by name answers; Ctrl-C leaves no
process behind; a second ``up`` on the same data directory comes back the same way.

Uses upstream's fixed ports (17890, 17891, 12000, 19386, 18601): it fails clearly if another
Tars framework already listens on this machine.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from up_support import ROOT, call_hello, tarsus

from tarsus.testing import (
    FRAMEWORK_PORTS,
    TarsusUp,
    eventually_sync,
    port_is_free,
    services_of,
)


def _start_up(data_dir: Path, log: Path) -> TarsusUp:
    # As a user runs it: no --data-dir, so ./.tarsus under the working directory (a relative
    # path the node must not hand to its services as is).
    assert data_dir.name == ".tarsus"
    return TarsusUp(log=log, cwd=data_dir.parent)


def _stop(up: TarsusUp) -> None:
    assert up.stop() == 0, up.log_text()


@pytest.mark.slow
def test_up_answers_by_name_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / ".tarsus"
    log = tmp_path / "up.log"
    up = _start_up(data_dir, log)
    try:
        done = call_hello()
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"return": 0, "greeting": "hello x, from Python"}
        assert services_of(data_dir), "the Hello service should run as its own process"
    finally:
        _stop(up)
    assert services_of(data_dir) == []
    assert all(port_is_free(p) for p in FRAMEWORK_PORTS)

    # Again on the same data directory: the deployment is kept and comes back.
    up = _start_up(data_dir, log)
    try:
        done = call_hello()
        assert done.returncode == 0, done.stderr + log.read_text(errors="replace")
        assert len(services_of(data_dir)) == 1, "no duplicate service after a restart"
    finally:
        _stop(up)
    assert services_of(data_dir) == []


HELLO = ("Test.HelloServer", "--node", "127.0.0.1")


def _tarsus(*args: str) -> subprocess.CompletedProcess[str]:
    done = tarsus(*args)
    assert done.returncode == 0, f"tarsus {' '.join(args)}: {done.stderr}"
    return done


def _status() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_tarsus("server", "status", *HELLO, "--json").stdout)
    return doc


def _keep_alive(pid: int) -> None:
    """What anyone who reaches port 19386 can send: a heartbeat naming any pid."""
    info = {"serverInfo": {"application": "Test", "serverName": "HelloServer", "pid": pid}}
    _tarsus(
        "call",
        "--idl",
        str(ROOT / "tarsus/protocol/NodeF.tars"),
        "tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 19386",
        "keepAlive",
        json.dumps(info),
    )


def _until(check: Callable[[], bool], what: str, log: Path) -> None:
    eventually_sync(check, what, timeout=120, describe=lambda: log.read_text(errors="replace"))


def test_up_node_obeys_the_operator_and_no_one_else(tmp_path: Path) -> None:
    """A restart is clean; a stopped server stays stopped and a heartbeat naming another
    process makes the node neither adopt nor kill it; a crash loop is held back, `server
    status` says until when, and `server start` starts it at once."""
    data_dir = tmp_path / ".tarsus"
    log = tmp_path / "up.log"
    up = _start_up(data_dir, log)
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        assert call_hello().returncode == 0
        # a restart stops, then starts: the node does not start it by itself in between
        restarted = _tarsus("server", "restart", *HELLO)
        assert "please check: pid " in restarted.stdout, restarted.stdout
        assert "already Activ" not in restarted.stdout + log.read_text(errors="replace")

        _tarsus("server", "stop", *HELLO)
        for pid in (bystander.pid, up.proc.pid, 1):  # anyone's, the platform's own, init's
            _keep_alive(pid)
            status = _status()
            assert status["pid"] == 0 and status["present_state_in_node"] == "Inactive"
        assert "stopped by an operator" in " ".join(status["notes"])
        assert "stopped" in _tarsus("server", "stop", *HELLO).stdout
        assert bystander.poll() is None and up.proc.poll() is None
        assert f"heartbeat naming pid {bystander.pid} ignored" in log.read_text(errors="replace")
        assert services_of(data_dir) == []

        # a crash loop (every process killed at once) is held back ...
        _tarsus("server", "start", *HELLO)
        killed: set[int] = set()

        def held_back() -> bool:
            for service in services_of(data_dir):
                if service.pid not in killed:
                    killed.add(service.pid)
                    service.kill()
            limited = "activating is limited" in log.read_text(errors="replace")
            return limited and not [p for p in services_of(data_dir) if p.pid not in killed]

        _until(held_back, "the activation limiter to hold Hello back", log)
        shown = _tarsus("server", "status", *HELLO).stdout
        assert "held back by the activation limiter until" in " ".join(shown.split())
        assert services_of(data_dir) == []
        # ... until an operator starts it
        started = _tarsus("server", "start", *HELLO)
        assert "please check: pid " in started.stdout, started.stdout
        _until(lambda: call_hello().returncode == 0, "Hello to answer again", log)
        assert _status()["notes"] == []
    finally:
        bystander.kill()
        bystander.wait()
        _stop(up)
    assert services_of(data_dir) == []
