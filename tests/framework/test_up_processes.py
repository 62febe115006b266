"""``tarsus up`` with its framework services recorded as servers of application ``tars``.

``--processes``: each framework service is its own process under the node agent, the web app
(``tars.tarsweb``, port 3000) too; ``tarsus server list`` shows them as ``tars.<service>`` rows;
a registry or web app killed with SIGKILL is started again by the node and calls by name (and
the console, with the same session) keep working; Ctrl-C leaves nothing running. The default
one-process layout records the same rows, active while ``tarsus up`` runs.

Uses upstream's fixed ports (17890, 17891, 12000, 18793, 18593, 19386, 18601, 3000): run it in a
network namespace of its own when others may use them (see docs/running.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from up_support import LOCATOR, ROOT, call_hello, tarsus

from tarsus.protocol.gen import ConfigF, Patch, TarsusConfig
from tarsus.rpc.communicator import Communicator
from tarsus.store import open_store
from tarsus.testing import (
    FRAMEWORK_PORTS,
    TarsusUp,
    eventually_sync,
    port_is_free,
    services_of,
)

ADMIN = "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 12000"
WEB = "http://127.0.0.1:3000"
FRAMEWORK = {
    "tars.tarsregistry",
    "tars.tarsAdminRegistry",
    "tars.tarspatch",
    "tars.tarsconfig",
    "tars.tarslog",
    "tars.tarsnotify",
    "tars.tarsalarm",
    "tars.tarsstat",
    "tars.tarsproperty",
    "tars.tarsquerystat",
    "tars.tarsqueryproperty",
    "tars.tarsweb",
}

T = TypeVar("T")


def _servers() -> dict[str, dict[str, str]]:
    done = tarsus("server", "list", "--json", "--admin", ADMIN)
    assert done.returncode == 0, done.stdout + done.stderr
    return {s["server"]: s for s in json.loads(done.stdout)["servers"]}


async def _upload_by_name(data_dir: Path) -> None:
    """A package uploaded to ``tars.tarspatch.PatchObj`` found by name through the registry,
    as a node finds it, lands under ``<data-dir>/patchs``."""
    content = Patch.FileContent(
        md5=hashlib.md5(b"pkg").hexdigest(),
        name="Test.Hello_cli_1.tgz",
        firstChunk=True,
        lastChunk=True,
        content=b"pkg",
    )
    async with Communicator(LOCATOR, cache_dir=None) as comm:
        patch = comm.string_to_proxy(Patch.PatchProxy, "tars.tarspatch.PatchObj")
        assert await patch.upload("Test", "Hello", content) == 0
    stored = data_dir / "patchs" / "tars.upload" / "Test" / "Hello" / "Test.Hello_cli_1.tgz"
    assert stored.read_bytes() == b"pkg"


async def _config_by_name() -> None:
    """A config file written through ``tars.tarsconfig.ConfigExtObj`` and read back with
    upstream's ``loadConfig`` on ``ConfigObj``, both found by name through the registry."""
    async with Communicator(LOCATOR, cache_dir=None) as comm:
        ext = comm.string_to_proxy(TarsusConfig.ConfigExtProxy, "tars.tarsconfig.ConfigExtObj")
        f = TarsusConfig.ConfigFile(
            level=2, serverName="Test.Up", fileName="up.conf", content="<up>\n  x=1\n</up>"
        )
        code, _id, result = await ext.addConfigFile(f, "", "test")
        assert code in (0, TarsusConfig.ConfigExtCode.CONFIG_EXISTS), result
        config = comm.string_to_proxy(ConfigF.ConfigProxy, "tars.tarsconfig.ConfigObj")
        assert await config.loadConfig("Test", "Up", "up.conf") == (0, "<up>\n  x=1\n</up>")


def _web_instance(web: httpx.Client) -> dict[str, object]:
    """``tars.tarsweb`` as the console's own instance list shows it (the session's view)."""
    answer = web.get("/api/v1/instances", params={"application": "tars", "server_name": "tarsweb"})
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["items"]
    return dict(row)


def _eventually(check: Callable[[], T], what: str) -> T:
    """``check()``'s first truthy answer; a failing ``tarsus`` command or a refused HTTP
    connection counts as "not yet"."""
    return eventually_sync(
        check,
        what,
        interval=0.2,
        ignoring=(AssertionError, json.JSONDecodeError, httpx.TransportError),
    )


class Up:
    """``tarsus up ARGS`` as a user runs it, once per test; :meth:`stop` is Ctrl-C."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / ".tarsus"
        self.log = tmp_path / "up.log"
        self.running: TarsusUp | None = None

    def start(self, *args: str) -> Path:
        self.running = TarsusUp(
            "--data-dir", str(self.data_dir), *args, log=self.log, cwd=ROOT, timeout=120
        )
        return self.data_dir

    def stop(self) -> None:
        """Ctrl-C; then nothing may be left running."""
        running, self.running = self.running, None
        if running is None:
            return
        assert running.stop() == 0, running.log_text()
        assert services_of(self.data_dir) == [], "Ctrl-C must leave no service running"
        assert all(port_is_free(p) for p in FRAMEWORK_PORTS)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
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
    assert len(services_of(data_dir, "tarsregistry")) == 1
    assert len(services_of(data_dir, "tarsAdminRegistry")) == 1
    assert len(services_of(data_dir, "tarspatch")) == 1
    assert len(services_of(data_dir, "tarsconfig")) == 1
    asyncio.run(_config_by_name())
    assert len(services_of(data_dir, "tarslog")) == 1
    assert len(services_of(data_dir, "tarsnotify")) == 1
    asyncio.run(_upload_by_name(data_dir))

    # The web app: its own process under the node, answering on 3000 with the admin password
    # tarsus up printed; the console lists it with that process's pid.
    (web_proc,) = services_of(data_dir, "tarsweb")
    assert up.running is not None
    log = up.running.log_text()
    assert f"web console     {WEB} (log in as admin" in log
    password = log.split("admin password  ", 1)[1].split(" ", 1)[0]
    with httpx.Client(base_url=WEB, timeout=30) as web:
        login = web.post("/api/v1/session", json={"uid": "admin", "password": password})
        assert login.status_code == 201, login.text
        row = _web_instance(web)
        assert (row["setting_state"], row["present_state"], row["pid"]) == (
            "active",
            "active",
            web_proc.pid,
        )
        # It dies: the node starts it again, and the same session works there.
        os.kill(web_proc.pid, signal.SIGKILL)
        (again,) = _eventually(
            lambda: [p for p in services_of(data_dir, "tarsweb") if p.pid != web_proc.pid],
            "the node to start the web app again",
        )
        # the node reports the new pid as activating first, then active
        row = _eventually(
            lambda: (
                (r := _web_instance(web))["pid"] == again.pid
                and r["present_state"] == "active"
                and r
            ),
            "the console again, active with the new pid",
        )
        assert row["setting_state"] == "active"
    assert len(services_of(data_dir, "tarsweb")) == 1, "exactly one web app"

    done = call_hello()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"return": 0, "greeting": "hello x, from Python"}

    # The registry dies: its node starts it again, and calls by name keep working.
    (registry,) = services_of(data_dir, "tarsregistry")
    os.kill(registry.pid, signal.SIGKILL)
    _eventually(
        lambda: [p for p in services_of(data_dir, "tarsregistry") if p.pid != registry.pid],
        "the node to start the registry again",
    )
    _eventually(lambda: call_hello().returncode == 0, "a call by name to answer")
    assert len(services_of(data_dir, "tarsregistry")) == 1, "exactly one registry"
    _eventually(
        lambda: _servers()["tars.tarsregistry"]["present_state"] == "active",
        "the registry's row to be active again",
    )

    # Restarted through the admin registry, as any server.
    (before,) = services_of(data_dir, "tarsregistry")
    done = tarsus("server", "restart", "tars.tarsregistry", "--node", "127.0.0.1", "--admin", ADMIN)
    assert done.returncode == 0, done.stdout + done.stderr
    _eventually(
        lambda: [p for p in services_of(data_dir, "tarsregistry") if p.pid != before.pid],
        "a new registry process",
    )
    _eventually(lambda: call_hello().returncode == 0, "a call by name to answer after the restart")


async def test_one_process_layout_records_the_framework_rows(up: Up) -> None:
    data_dir = up.start("--no-example")
    servers = _servers()
    assert set(servers) >= FRAMEWORK, servers
    for name in FRAMEWORK:
        assert servers[name]["present_state"] == "active"
    # served by tarsus up itself: the node starts no process for them
    assert services_of(data_dir) == []
    await _upload_by_name(data_dir)
    await _config_by_name()
    up.stop()
    # stopped with it: the rows say so (what a console reading the store shows)
    store = await open_store(None, data_dir=data_dir)
    try:
        for name in FRAMEWORK:
            row = await store.servers.get("tars", name.split(".")[1], "127.0.0.1")
            assert row is not None and (row.present_state, row.process_id) == ("inactive", 0)
    finally:
        await store.close()
