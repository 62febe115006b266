"""``tarsus up`` with its framework services recorded as servers of application ``tars``.

``--processes``: each framework service is its own process under the node agent; ``tarsus
server list`` shows them as ``tars.<service>`` rows; a registry killed with SIGKILL is started
again by the node and calls by name keep working; Ctrl-C leaves nothing running. The default
one-process layout records the same rows, active while ``tarsus up`` runs.

Uses upstream's fixed ports (17890, 17891, 12000, 19386, 18601): run it in a network namespace
of its own when others may use them (see docs/running.md).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from tarsus.store import open_store

ROOT = Path(__file__).resolve().parents[2]
TARSUS = [sys.executable, "-m", "tarsus"]
LOCATOR = "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"
ADMIN = "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 12000"
PORTS = (17890, 17891, 12000, 19386, 18601)
FRAMEWORK = {"tars.tarsregistry", "tars.tarsAdminRegistry"}

T = TypeVar("T")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _tarsus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARSUS, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def _call_hello() -> subprocess.CompletedProcess[str]:
    return _tarsus(
        "call", "--locator", LOCATOR, "--idl", str(ROOT / "examples/hello/Hello.tars"),
        "Test.HelloServer.HelloObj", "sayHello", '{"name":"x"}',
    )  # fmt: skip


def _servers() -> dict[str, dict[str, str]]:
    done = _tarsus("server", "list", "--json", "--admin", ADMIN)
    assert done.returncode == 0, done.stdout + done.stderr
    return {s["server"]: s for s in json.loads(done.stdout)["servers"]}


def _eventually(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (AssertionError, json.JSONDecodeError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


def _processes(data_dir: Path, marker: str = "") -> list[psutil.Process]:
    """Processes started with a ``--config=`` under ``data_dir`` (and ``marker`` in their
    command line)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.startswith("--config=") and str(data_dir) in part for part in cmdline) and (
            not marker or any(marker in part for part in cmdline)
        ):
            found.append(proc)
    return found


class Up:
    """``tarsus up ARGS`` as a user runs it, once per test; :meth:`stop` is Ctrl-C."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / ".tarsus"
        self.log = tmp_path / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> Path:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*TARSUS, "up", "--data-dir", str(self.data_dir), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 120
        while "is up" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tarsus up did not come up:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)
        return self.data_dir

    def stop(self) -> None:
        """Ctrl-C; then nothing may be left running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=60) == 0, self.log.read_text(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(
                f"tarsus up did not stop on Ctrl-C:\n{self.log.read_text(errors='replace')}"
            )
        assert _processes(self.data_dir) == [], "Ctrl-C must leave no service running"
        assert all(_port_free(p) for p in PORTS)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    busy = [p for p in PORTS if not _port_free(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken: another Tars framework runs here; stop it first")
    running = Up(tmp_path)
    yield running
    running.stop()


def test_processes_layout_lists_restarts_and_stops_the_framework(up: Up) -> None:
    data_dir = up.start("--processes")
    servers = _servers()
    assert set(servers) >= FRAMEWORK, servers
    for name in FRAMEWORK:
        assert (servers[name]["setting_state"], servers[name]["present_state"]) == (
            "active",
            "active",
        )
    assert len(_processes(data_dir, "tarsregistry")) == 1
    assert len(_processes(data_dir, "tarsAdminRegistry")) == 1
    done = _call_hello()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"return": 0, "greeting": "hello x, from Python"}

    # The registry dies: its node starts it again, and calls by name keep working.
    (registry,) = _processes(data_dir, "tarsregistry")
    os.kill(registry.pid, signal.SIGKILL)
    _eventually(
        "the node to start the registry again",
        lambda: [p for p in _processes(data_dir, "tarsregistry") if p.pid != registry.pid],
    )
    _eventually("a call by name to answer", lambda: _call_hello().returncode == 0)
    assert len(_processes(data_dir, "tarsregistry")) == 1, "exactly one registry"
    _eventually(
        "the registry's row to be active again",
        lambda: _servers()["tars.tarsregistry"]["present_state"] == "active",
    )

    # Restarted through the admin registry, as any server.
    (before,) = _processes(data_dir, "tarsregistry")
    done = _tarsus(
        "server", "restart", "tars.tarsregistry", "--node", "127.0.0.1", "--admin", ADMIN
    )
    assert done.returncode == 0, done.stdout + done.stderr
    _eventually(
        "a new registry process",
        lambda: [p for p in _processes(data_dir, "tarsregistry") if p.pid != before.pid],
    )
    _eventually("a call by name to answer after the restart", lambda: _call_hello().returncode == 0)


async def test_one_process_layout_records_the_framework_rows(up: Up) -> None:
    data_dir = up.start("--no-example")
    servers = _servers()
    assert set(servers) >= FRAMEWORK, servers
    for name in FRAMEWORK:
        assert servers[name]["present_state"] == "active"
    # served by tarsus up itself: the node starts no process for them
    assert _processes(data_dir) == []
    up.stop()
    # stopped with it: the rows say so (what a console reading the store shows)
    store = await open_store(None, data_dir=data_dir)
    try:
        for name in FRAMEWORK:
            row = await store.servers.get("tars", name.split(".")[1], "127.0.0.1")
            assert row is not None and (row.present_state, row.process_id) == ("inactive", 0)
    finally:
        await store.close()
