"""Helpers for the node agent's tests: real servers, a real ServerObj, real processes.

``NodeHarness`` runs a :class:`Supervisor` with short intervals and serves its
``tars.tarsnode.ServerObj`` on a real port, so the servers it starts (examples/hello, or the
small scripts in ``scripts/``) send their heartbeats over TCP exactly as under upstream's
tarsnode. Every process a test started is killed at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

import tarsus.idl
from tarsus.conf import builtin_lookup, resolve_server_profile
from tarsus.framework.node import NodeSettings, Supervisor, server_obj_servant
from tarsus.framework.node.servant import SERVER_OBJ
from tarsus.protocol.gen import RegistryDescriptor
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.testing import WAIT, eventually, free_port

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
HELLO_DIR = ROOT / "examples" / "hello"
HELLO_SERVER = HELLO_DIR / "server.py"
SCRIPTS = HERE / "scripts"
Test = tarsus.idl.load(HELLO_DIR / "Hello.tars").Test

HELLO_SERVANT = "Test.HelloServer.HelloObj"
HELLO_ADAPTER = "Test.HelloServer.HelloObjAdapter"


def profile(server_lines: str = "", template: str = "tars.tarspython.default") -> str:
    """The merged profile a registry would send: ``template`` plus a private part that
    turns off stat/property reporting and adds ``server_lines`` to ``<server>``."""
    private = (
        "<tars>\n<application>\n<client>\nstat=\nproperty=\n</client>\n"
        f"<server>\n{server_lines}\n</server>\n</application>\n</tars>\n"
    )
    return resolve_server_profile(template, private, builtin_lookup).tostr()


def adapter(name: str, servant: str, port: int) -> Any:
    return RegistryDescriptor.AdapterDescriptor(
        adapterName=name,
        threadNum="1",
        endpoint=f"tcp -h 127.0.0.1 -p {port} -t 60000",
        maxConnections=1024,
        allowIp="",
        servant=servant,
        queuecap=10000,
        queuetimeout=60000,
        grid=0,
        protocol="tars",
    )


def descriptor(
    app: str,
    server: str,
    *,
    adapters: dict[str, Any] | None = None,
    server_type: str = "tars_python",
    exe_path: str = "",
    base_path: str = "",
    start_script: str = "",
    server_lines: str = "",
    setting_state: str = "active",
    profile_text: str | None = None,
) -> Any:
    return RegistryDescriptor.ServerDescriptor(
        application=app,
        serverName=server,
        nodeName="127.0.0.1",
        basePath=base_path,
        exePath=exe_path,
        settingState=setting_state,
        presentState="inactive",
        profile=profile(server_lines) if profile_text is None else profile_text,
        patchVersion="",
        patchTime="",
        patchUser="",
        adapters=adapters or {},
        serverType=server_type,
        startScript=start_script,
    )


def hello_descriptor(
    port: int, *, exe_path: str | None = None, server_lines: str = "", **kw: Any
) -> Any:
    """examples/hello as Test.HelloServer; by default run straight from the source tree
    (``exe_path``), "" to run the installed package."""
    return descriptor(
        "Test",
        "HelloServer",
        adapters={HELLO_ADAPTER: adapter(HELLO_ADAPTER, HELLO_SERVANT, port)},
        exe_path=str(HELLO_SERVER) if exe_path is None else exe_path,
        server_lines=server_lines,
        **kw,
    )


def script_descriptor(server: str, script: str, *, server_type: str = "not_tars", **kw: Any) -> Any:
    """A small script from tests/node/scripts run as App ``Demo``."""
    return descriptor("Demo", server, exe_path=str(SCRIPTS / script), server_type=server_type, **kw)


def make_settings(tmp: Path, **changes: Any) -> NodeSettings:
    values: dict[str, Any] = {
        "node_name": "127.0.0.1",
        "data_dir": tmp / "data",
        "log_dir": tmp / "log",
        # a registry that is not there: servers start without one, as in an outage
        "locator": f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {free_port()} -t 3000",
        "monitor_interval": 0.1,
        "heart_timeout": 30.0,
        "start_grace": 0.3,
        "startup_grace": 0.0,
        "deactivating_timeout_range": (0.5, 60.0),
        "kill_wait": 5.0,
        "adopt_poll_interval": 0.1,
        "python": sys.executable,
        # servers run straight from examples/ and tests/node/scripts/
        "trusted_dirs": (ROOT,),
    }
    values.update(changes)
    return NodeSettings(**values)


class NodeHarness:
    """A supervisor plus its ServerObj on a real port, recording every state report."""

    def __init__(self, settings: NodeSettings, *, node_port: int | None = None) -> None:
        self.node_port = node_port or free_port()
        self.settings = settings.replace(
            node_endpoint=f"tcp -h 127.0.0.1 -p {self.node_port} -t 60000"
        )
        self.reports: list[Any] = []
        self.fail_reports = False
        self.supervisor = Supervisor(self.settings, on_state=self._on_state)
        self.app = Application()
        self.app.add_servant(
            server_obj_servant(self.supervisor), SERVER_OBJ, self.settings.node_endpoint
        )
        self.comm = Communicator(cache_dir=None)

    async def _on_state(self, info: Any) -> None:
        self.reports.append(info)
        if self.fail_reports:
            raise RuntimeError("the registry is down (test)")

    async def start(self) -> None:
        await self.app.start()
        await self.supervisor.start()

    async def stop(self, *, stop_services: bool) -> None:
        await self.supervisor.shutdown(stop_services=stop_services)
        await self.app.stop(drain_timeout=0.5)
        await self.comm.close()

    def pids(self, app: str, server: str) -> list[int]:
        """Distinct pids reported for the server, in order."""
        seen: list[int] = []
        for info in self.reports:
            mine = (info.application, info.serverName) == (app, server)
            if mine and info.processId > 0 and info.processId not in seen:
                seen.append(info.processId)
        return seen

    def states(self, app: str, server: str) -> list[int]:
        return [
            int(info.serverState)
            for info in self.reports
            if (info.application, info.serverName) == (app, server)
        ]

    async def wait_state(self, app: str, server: str, state: str, timeout: float = WAIT) -> Any:
        def check() -> Any:
            sp = self.supervisor.get(app, server)
            return sp if sp is not None and sp.state.value == state else None

        return await eventually(check, f"{app}.{server} {state}", timeout=timeout)

    async def say_hello(self, port: int, name: str = "node") -> str:
        proxy = self.comm.string_to_proxy(
            Test.HelloProxy, f"{HELLO_SERVANT}@tcp -h 127.0.0.1 -p {port} -t 60000"
        ).with_options(timeout_ms=5000)
        ret, greeting = await proxy.sayHello(name)
        assert ret == 0
        return str(greeting)

    async def hello_answers(self, port: int) -> bool:
        try:
            return (await self.say_hello(port)).startswith("hello node")
        except Exception:
            return False


def processes_under(path: Path) -> list[psutil.Process]:
    """Running processes whose command line mentions ``path`` (every server a test starts
    gets ``--config=<path>/...``)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(path) in arg for arg in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_under(path: Path) -> None:
    for proc in processes_under(path):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()


@pytest.fixture
async def harness_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await make(**settings_changes)`` → a started NodeHarness; all are stopped (and every
    process started under ``tmp_path`` killed) at the end."""
    made: list[NodeHarness] = []

    async def make(*, node_port: int | None = None, **changes: Any) -> NodeHarness:
        harness = NodeHarness(make_settings(tmp_path, **changes), node_port=node_port)
        await harness.start()
        made.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in made:
            with contextlib.suppress(Exception):
                await harness.stop(stop_services=False)
        kill_under(tmp_path)
