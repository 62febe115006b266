"""AdminObj: every admin command through a real AdminF proxy over a real socket.

The application runs in-process (from a node-style config with free ports); tarsconfig is a
Config servant served in-process too. The subprocess tests in test_application.py cover the
same object in a server started the way tarsnode starts one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import tarsus
import tarsus.idl
from tarsus.conf import expand
from tarsus.protocol.gen import AdminF, ConfigF
from tarsus.rpc import logs
from tarsus.rpc.application import Application, ConfigLoadError
from tarsus.rpc.communicator import Communicator
from tarsus.testing import eventually, free_port, serve

HERE = Path(__file__).parent
FIXTURES = HERE / "conf_fixtures"
Demo = tarsus.idl.load(FIXTURES / "Demo.tars").Demo
SERVANT = "Demo.DemoServer.DemoObj"
ADAPTER = "Demo.DemoServer.DemoObjAdapter"


class DemoImpl(Demo.DemoServant):  # type: ignore[misc,name-defined]
    async def sayHello(self, name: str) -> tuple[int, str]:
        return 0, f"hello {name}"

    async def slow(self, ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    async def logLine(self, level: str, text: str) -> None:
        logging.getLogger("demo").info("%s", text)


class ConfigImpl(ConfigF.ConfigServant):  # type: ignore[misc,name-defined]
    """tarsconfig with editable files; ``down`` makes every call fail as a server error."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.calls: list[tuple[str, ...]] = []
        self.down = False

    async def loadConfig(self, app: str, server: str, filename: str) -> tuple[int, str]:
        self.calls.append((app, server, filename))
        if self.down:
            raise RuntimeError("tarsconfig is broken")
        if filename not in self.files:
            return -1, ""
        return 0, self.files[filename]


def write_config(tmp: Path, *, config_port: int | None) -> Path:
    text = expand(
        (FIXTURES / "Demo.DemoServer.config.conf").read_text(),
        {
            "admin_port": "0",
            "obj_port": "0",
            "config_port": str(config_port or free_port()),
            "basepath": f"{tmp}/bin/",
            "datapath": f"{tmp}/data/",
            "logpath": f"{tmp}/app_log",
            "deactivating_timeout": "3000",
            "heartbeat_ms": "10000",
        },
    )
    text = re.sub(r"\n\s*node=.*", "", text)  # no node in these tests
    if config_port is None:
        text = re.sub(r"\n\s*config=.*", "", text)
    path = tmp / "Demo.DemoServer.config.conf"
    path.write_text(text)
    (tmp / "bin").mkdir(exist_ok=True)
    return path


class Running:
    def __init__(self, app: Application, comm: Communicator) -> None:
        self.app = app
        assert app.admin_adapter is not None
        self.admin: Any = comm.string_to_proxy(
            AdminF.AdminFProxy, f"AdminObj@{app.admin_adapter.bound_endpoint}"
        )
        self.demo: Any = comm.string_to_proxy(
            Demo.DemoProxy, f"{SERVANT}@{app.adapters[0].bound_endpoint}"
        )

    async def notify(self, command: str) -> str:
        reply: str = await self.admin.notify(command)
        return reply


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    active = logs.active()
    if active is not None:
        active.close()
    root.setLevel(level)


@pytest.fixture
async def configobj() -> AsyncIterator[tuple[ConfigImpl, int]]:
    impl = ConfigImpl()
    async with serve(impl, "tars.tarsconfig.ConfigObj") as served:
        yield impl, served.adapter.port


async def running(tmp: Path, config_port: int | None) -> tuple[Application, Communicator]:
    app = Application.from_config(write_config(tmp, config_port=config_port), {SERVANT: DemoImpl()})
    await app.start()
    return app, Communicator()


@pytest.fixture
async def server(
    tmp_path: Path, configobj: tuple[ConfigImpl, int], restore_logging: None
) -> AsyncIterator[Running]:
    app, comm = await running(tmp_path, configobj[1])
    try:
        yield Running(app, comm)
    finally:
        await comm.close()
        await app.stop()


async def test_help_lists_builtin_and_registered_commands(server: Running) -> None:
    server.app.register_admin("demo.echo", lambda args: args)
    reply = await server.notify("tars.help")
    names = reply.split("\r\n")
    assert names[-1] == ""  # each name ends with \r\n, as TarsCpp
    assert names[:-1] == sorted(names[:-1])
    assert {
        "tars.help",
        "tars.viewstatus",
        "tars.viewversion",
        "tars.setloglevel",
        "tars.enabledaylog",
        "tars.loadconfig",
        "tars.connection",
        "demo.echo",
    } == set(names[:-1])


async def test_viewstatus_shows_config_adapters_and_client(server: Running) -> None:
    assert await server.demo.sayHello("x") == (0, "hello x")
    reply = await server.notify("tars.viewstatus")
    assert reply.startswith("=" * 100 + "\n[proxy config]:")

    def value(key: str, text: str = reply) -> str:
        match = re.search(rf"^{re.escape(key)} +(.*)$", text, re.MULTILINE)
        assert match, key
        return match.group(1)

    assert value("sync-invoke-timeout") == "3000"
    assert value("modulename") == "Demo.DemoServer"
    assert value("Application(app)") == "Demo"
    assert value("ServerName(server)") == "DemoServer"
    assert value("LogLevel(loglevel)") == "INFO"
    assert value("Pid") == str(os.getpid())
    demo_block = reply.split(f"name{' ' * 46}{ADAPTER}\n", 1)[1].split("-" * 100)[0]
    assert value("servant", demo_block) == SERVANT
    assert value("connections", demo_block) == "1"  # our proxy's connection
    assert value("maxconns", demo_block) == "200000"
    assert value("queuetimeout", demo_block) == "60000ms"
    admin_block = reply.split(f"name{' ' * 46}AdminAdapter\n", 1)[1]
    assert value("servant", admin_block) == "AdminObj"
    assert value("inflight", admin_block) == "1"  # this very notify call


async def test_viewversion(server: Running) -> None:
    assert await server.notify("tars.viewversion") == tarsus.__version__
    assert await server.admin.getPid() == os.getpid()


async def test_setloglevel(server: Running) -> None:
    root = logging.getLogger()
    assert await server.notify("tars.setloglevel WARN") == "set log level [WARN] ok"
    assert root.level == logging.WARNING
    assert await server.notify("tars.setloglevel TARS") == "set log level [TARS] ok"
    assert root.level == logs.TARS
    assert await server.notify("tars.setloglevel NONE") == "set log level [NONE] ok"
    assert not root.isEnabledFor(logging.CRITICAL)
    assert await server.notify("tars.setloglevel LOUD") == "set log level [LOUD] error"
    assert not root.isEnabledFor(logging.CRITICAL)  # unchanged by the bad one
    assert server.app.log_level == "NONE"


async def test_enabledaylog(server: Running) -> None:
    usage = "usage: tars.enabledaylog {remote|local}|[logname]|{true|false}"
    assert await server.notify("tars.enabledaylog") == usage
    assert await server.notify("tars.enabledaylog local|audit|maybe") == usage
    assert await server.notify("tars.enabledaylog disk|true") == usage
    assert await server.notify("tars.enabledaylog local|audit|false") == "set local audit false ok"
    assert logs.day_logger("audit").disabled
    assert await server.notify("tars.enabledaylog local|audit|true") == "set local audit true ok"
    assert not logs.day_logger("audit").disabled
    assert await server.notify("tars.enabledaylog local|false") == "set local false ok"
    assert logs.day_logger("").disabled
    logs.enable_day_log("", True)
    assert (await server.notify("tars.enabledaylog remote|true")).startswith("[fail]")


async def test_connection_lists_connections_per_adapter(server: Running) -> None:
    assert await server.demo.sayHello("x") == (0, "hello x")
    reply = await server.notify("tars.connection")
    assert f"[adapter:{ADAPTER}] [connections:1]" in reply
    assert "[adapter:AdminAdapter] [connections:1]" in reply
    assert reply.count("127.0.0.1:") == 2


async def test_loadconfig_pulls_into_basepath_and_keeps_backups(
    server: Running, configobj: tuple[ConfigImpl, int], tmp_path: Path
) -> None:
    impl, _ = configobj
    target = tmp_path / "bin" / "demo.conf"
    impl.files["demo.conf"] = "version 1\n"
    assert await server.notify("tars.loadconfig demo.conf") == "[succ] get remote config:demo.conf"
    assert impl.calls == [("Demo", "DemoServer", "demo.conf")]
    assert target.read_text() == "version 1\n"
    # the same content again: no backup
    assert await server.notify("tars.loadconfig demo.conf") == "[succ] get remote config:demo.conf"
    assert not target.with_name("demo.conf.1.bak").exists()
    # a change pushes the old file to .1.bak, .1.bak to .2.bak ...
    for version in (2, 3):
        impl.files["demo.conf"] = f"version {version}\n"
        assert (await server.notify("tars.loadconfig demo.conf")).startswith("[succ]")
    assert target.read_text() == "version 3\n"
    assert target.with_name("demo.conf.1.bak").read_text() == "version 2\n"
    assert target.with_name("demo.conf.2.bak").read_text() == "version 1\n"
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "demo.conf",
        "demo.conf.1.bak",
        "demo.conf.2.bak",
    ]
    # tarsconfig failing: the local copy is kept, the reply says so (C++ wording)
    impl.down = True
    reply = await server.notify("tars.loadconfig demo.conf")
    # (sic: no space before "fail", as TarsCpp writes it)
    assert reply == f"[fail] get remote config:demo.conffail,use the local config: {target}"
    assert len(impl.calls) == 4 + 2  # two tries, as TarsCpp
    assert target.read_text() == "version 3\n"
    # nothing remote and nothing local
    impl.down = False
    reply = await server.notify("tars.loadconfig other.conf")
    assert reply.startswith("[fail] get remote config 'other.conf' error:remote config file")
    assert await server.notify("tars.loadconfig ../escape.conf") == (
        "[fail] get remote config '../escape.conf' error:a config file name cannot contain a "
        "directory"
    )
    assert await server.notify("tars.loadconfig") == "usage: tars.loadconfig <filename>"
    # the same through the Python API
    impl.files["api.conf"] = "from the api\n"
    assert await server.app.add_config("api.conf") == "[succ] get remote config:api.conf"
    with pytest.raises(ConfigLoadError):
        await server.app.add_config("nowhere.conf")


async def test_loadconfig_without_a_config_service(tmp_path: Path, restore_logging: None) -> None:
    app, comm = await running(tmp_path, None)
    try:
        reply = await Running(app, comm).notify("tars.loadconfig demo.conf")
        assert reply.startswith("[fail] get remote config 'demo.conf' error:no config service:")
        assert "/tars/application/server<config> is not set in" in reply
    finally:
        await comm.close()
        await app.stop()


async def test_registered_commands_and_unknown_ones(server: Running) -> None:
    seen: list[str] = []

    def sync_cmd(args: str) -> str:
        seen.append(args)
        return f"sync got {args!r}"

    async def async_cmd(args: str) -> str:
        await asyncio.sleep(0)
        return f"async got {args!r}"

    def broken(args: str) -> str:
        raise RuntimeError("handler bug")

    server.app.register_admin("demo.sync", sync_cmd)
    server.app.register_admin("demo.async", async_cmd)
    server.app.register_admin("demo.broken", broken)
    # the name is what precedes the first space; the rest is the argument text
    assert await server.notify("  demo.sync a  b ") == "sync got 'a  b'"
    assert await server.notify("demo.async") == "async got ''"
    assert await server.notify("demo.broken x") == "demo.broken failed: RuntimeError: handler bug"
    # TarsGo's reply to what no one handles
    assert await server.notify("tars.bid") == "tars.bid not support now!"
    assert await server.notify("demo.sync2 x") == "demo.sync2 x not support now!"
    assert seen == ["a  b"]
    with pytest.raises(ValueError):
        server.app.register_admin("two words", sync_cmd)


async def test_shutdown_stops_the_application(tmp_path: Path, restore_logging: None) -> None:
    app, comm = await running(tmp_path, None)
    serving = asyncio.ensure_future(app.serve_forever())
    try:
        running_app = Running(app, comm)
        slow = asyncio.ensure_future(running_app.demo.slow(300))
        await eventually(lambda: app.adapters[0].inflight, "the slow call in flight")
        assert await running_app.admin.shutdown() is None
        assert await slow == 300  # drained, not cut
        await asyncio.wait_for(serving, 30)
        assert not app.started and app.stopping
    finally:
        await comm.close()
        await app.stop()


async def test_admin_answers_while_initialising_and_shutdown_stops_the_start(
    tmp_path: Path, restore_logging: None
) -> None:
    """As TarsCpp: the AdminObj is bound before initialize runs, so the node can stop a server
    whose initialisation hangs; the start is abandoned and the servants never bound."""
    app = Application.from_config(write_config(tmp_path, config_port=None), {SERVANT: DemoImpl()})
    initialising = asyncio.Event()
    never = asyncio.Event()

    async def initialize(app: Application) -> None:
        initialising.set()
        await asyncio.wait_for(never.wait(), 30)

    app.on_initialize(initialize)
    serving = asyncio.ensure_future(app.serve_forever())
    await asyncio.wait_for(initialising.wait(), 30)
    assert app.admin_adapter is not None
    async with Communicator() as comm:
        admin = comm.string_to_proxy(
            AdminF.AdminFProxy, f"AdminObj@{app.admin_adapter.bound_endpoint}"
        )
        assert await admin.notify("tars.viewversion") == tarsus.__version__
        assert not app.adapters[0].accepting  # the servant is not bound yet
        await admin.shutdown()
    await asyncio.wait_for(serving, 30)  # the hung initialize is cancelled
    assert not never.is_set()
    assert not app.adapters[0].accepting and not app.started
