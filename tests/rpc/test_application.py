"""The server application as a Tars node runs it: config file, heartbeats, logs, shutdown.

Everything is real: the servers listen on real sockets, the "node" is a ServerF servant served
in-process over TCP, tarsconfig is a Config servant likewise, and the server under test runs as
a subprocess started the way tarsnode starts one (``--config=FILE``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tarsus
import tarsus.idl
from tarsus.conf import expand
from tarsus.protocol.gen import AdminF, ConfigF, NodeF, PropertyF, StatF
from tarsus.rpc import logs
from tarsus.rpc.application import Application, ServerConfig, ServerConfigError
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import ConnectError
from tarsus.rpc.property import Count, Max, Sum
from tarsus.testing import Served, eventually, free_port, serve

HERE = Path(__file__).parent
FIXTURES = HERE / "conf_fixtures"
ROOT = HERE.parent.parent
Demo = tarsus.idl.load(FIXTURES / "Demo.tars").Demo

SERVANT = "Demo.DemoServer.DemoObj"
ADAPTER = "Demo.DemoServer.DemoObjAdapter"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\|\d+\|(ERROR|WARN|INFO|DEBUG|TARS)\|")


@dataclass
class Beat:
    kind: str
    app: str
    server: str
    pid: int
    detail: str


@dataclass
class Node:
    """What the fake-free node saw: every ServerF call, in order."""

    beats: list[Beat] = field(default_factory=list)

    def adapters_alive(self, pid: int) -> set[str]:
        return {b.detail for b in self.beats if b.kind == "keepAlive" and b.pid == pid}


def node_servant(node: Node) -> Any:
    class ServerFImpl(NodeF.ServerFServant):  # type: ignore[misc,name-defined]
        async def keepAlive(self, si: Any) -> int:
            node.beats.append(Beat("keepAlive", si.application, si.serverName, si.pid, si.adapter))
            return 0

        async def keepActiving(self, si: Any) -> int:
            node.beats.append(Beat("keepActiving", si.application, si.serverName, si.pid, ""))
            return 0

        async def reportVersion(self, app: str, server: str, version: str) -> int:
            node.beats.append(Beat("reportVersion", app, server, 0, version))
            return 0

        async def getLatestKeepAliveTime(self) -> int:
            return 0

    return ServerFImpl()


def config_servant(files: dict[str, str], asked: list[tuple[str, str, str]]) -> Any:
    class ConfigImpl(ConfigF.ConfigServant):  # type: ignore[misc,name-defined]
        async def loadConfig(self, app: str, server: str, filename: str) -> tuple[int, str]:
            asked.append((app, server, filename))
            if filename not in files:
                return -1, ""
            return 0, files[filename]

    return ConfigImpl()


def node_config(tmp: Path, **values: str) -> Path:
    """The fixture config with free ports and this test's directories filled in, written where
    tarsnode writes it (``<serverDir>/conf/App.Server.config.conf``)."""
    macros = {
        "node_port": str(free_port()),
        "admin_port": str(free_port()),
        "obj_port": str(free_port()),
        "config_port": str(free_port()),
        "basepath": f"{tmp}/bin/",
        "datapath": f"{tmp}/data/",
        "logpath": f"{tmp}/app_log",
        "deactivating_timeout": "10000",
        "heartbeat_ms": "100",
        **values,
    }
    text = expand((FIXTURES / "Demo.DemoServer.config.conf").read_text(), macros)
    path = tmp / "conf" / "Demo.DemoServer.config.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    for sub in ("bin", "data"):
        (tmp / sub).mkdir(exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    active = logs.active()
    if active is not None:
        active.close()
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
async def node() -> AsyncIterator[tuple[Node, Served]]:
    seen = Node()
    async with serve(node_servant(seen), "tars.tarsnode.ServerObj") as served:
        yield seen, served


class DemoImpl(Demo.DemoServant):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def sayHello(self, name: str) -> tuple[int, str]:
        return 0, f"hello {name}"

    async def slow(self, ms: int) -> int:
        await self.release.wait()
        return ms

    async def logLine(self, level: str, text: str) -> None:
        logging.getLogger("demo").info("%s", text)


# ------------------------------------------------------------------------------ the config


def test_config_is_read_as_the_node_writes_it(tmp_path: Path) -> None:
    path = node_config(tmp_path, admin_port="31457", obj_port="20001", node_port="19386")
    config = ServerConfig.load(path)
    assert (config.app, config.server) == ("Demo", "DemoServer")
    assert config.full_name == "Demo.DemoServer"
    assert config.source == str(path)
    assert str(config.local) == "tcp -h 127.0.0.1 -p 31457 -t 10000"
    assert config.node == "tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 19386 -t 60000"
    assert (config.logsize, config.lognum, config.log_level) == (10 * 1024 * 1024, 10, "INFO")
    assert config.deactivating_timeout_ms == 10000
    assert config.heartbeat_interval_ms == 100
    (adapter,) = config.adapters
    assert (adapter.name, adapter.servant) == (ADAPTER, SERVANT)
    assert str(adapter.endpoint) == "tcp -h 127.0.0.1 -p 20001 -t 60000"
    assert (adapter.max_conns, adapter.queue_cap) == (200000, 10000)
    assert adapter.queue_timeout_ms == 60000
    assert (adapter.protocol, adapter.threads) == ("tars", 5)
    assert config.client.sync_invoke_timeout == 3000
    assert config.client.modulename == "Demo.DemoServer"
    assert config.client.params["keep-alive-interval"] == "10000"
    assert not config.enableset and config.setdivision == ""


def test_upstream_defaults_fill_what_the_config_leaves_out() -> None:
    config = ServerConfig.load(
        "\n".join(
            [
                "<tars>",
                "<application>",
                "<server>",
                "app=A",
                "server=S",
                "localip=10.1.2.3",
                "<A.S.XAdapter>",
                "endpoint=tcp -h localip -p 0",
                "servant=A.S.X",
                "queuetimeout=100",
                "</A.S.XAdapter>",
                "</server>",
                "</application>",
                "</tars>",
            ]
        )
    )
    (adapter,) = config.adapters
    assert adapter.endpoint.host == "10.1.2.3"  # "localip" stands for the node's address
    assert (adapter.max_conns, adapter.queue_cap) == (128, 1024)  # TarsCpp's defaults
    assert adapter.queue_timeout_ms == 3000  # raised to TarsCpp's minimum
    assert config.local is None and config.node == ""
    assert (config.logsize, config.lognum, config.log_level) == (52428800, 10, "DEBUG")
    assert config.deactivating_timeout_ms == 3000
    assert config.client.modulename == "A.S"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("app=Demo", ""), "/tars/application/server<app> is missing"),
        (("server=DemoServer", ""), "/tars/application/server<server> is missing"),
        (("servant=Demo.DemoServer.DemoObj", ""), f"/tars/application/server/{ADAPTER}<servant>"),
        (
            ("servant=Demo.DemoServer.DemoObj", "servant=Other.X.Obj"),
            "must start with 'Demo.DemoServer.'",
        ),
        (("maxconns=200000", "maxconns=lots"), "<maxconns> = 'lots' is not a whole number"),
        (("logsize=10M", "logsize=big"), "/tars/application/server<logsize>"),
        (("logLevel=INFO", "logLevel=LOUD"), "unknown log level 'LOUD'"),
        (("local=tcp -h", "local=tcpx -h"), "/tars/application/server<local>"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key_and_the_file(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = node_config(tmp_path)
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ServerConfigError) as e:
        ServerConfig.load(path)
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_a_missing_endpoint_is_named(tmp_path: Path) -> None:
    path = node_config(tmp_path)
    path.write_text(re.sub(r"\n\s*endpoint=tcp -h 127.0.0.1 -p \d+ -t 60000", "", path.read_text()))
    with pytest.raises(ServerConfigError, match=rf"server/{ADAPTER}<endpoint> is missing"):
        ServerConfig.load(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServerConfigError, match="cannot read the config"):
        ServerConfig.load(tmp_path / "nope.conf")


async def test_every_servant_in_the_config_needs_an_implementation(tmp_path: Path) -> None:
    app = Application.from_config(node_config(tmp_path))
    with pytest.raises(ServerConfigError) as e:
        await app.start()
    assert f"no implementation for {SERVANT} (adapter {ADAPTER})" in str(e.value)
    with pytest.raises(ServerConfigError) as e:
        app.add_servant_impl("Demo.DemoServer.OtherObj", DemoImpl())
    assert "servants in the config: Demo.DemoServer.DemoObj" in str(e.value)
    await app.communicator.close()


# ---------------------------------------------------------------------- in-process lifecycle


async def test_from_config_serves_the_servant_and_the_admin_object(tmp_path: Path) -> None:
    path = node_config(tmp_path)
    path.write_text(re.sub(r"\n\s*node=.*", "", path.read_text()))  # not under a node here
    app = Application.from_config(path, {SERVANT: DemoImpl()})
    await app.start()
    config = app.config
    assert config is not None and config.local is not None
    async with Communicator() as comm:
        (adapter,) = config.adapters
        demo = comm.string_to_proxy(Demo.DemoProxy, f"{SERVANT}@{adapter.endpoint}")
        assert await demo.sayHello("bob") == (0, "hello bob")
        admin = comm.string_to_proxy(AdminF.AdminFProxy, f"AdminObj@{config.local}")
        assert await admin.getPid() == os.getpid()
        assert await admin.notify("tars.viewversion") == tarsus.__version__
        status = await admin.notify("tars.viewstatus")
        assert ADAPTER in status and "AdminAdapter" in status
    await app.stop()
    assert not app.started


async def test_the_node_gets_version_activing_and_a_beat_per_adapter(
    tmp_path: Path, node: tuple[Node, Served]
) -> None:
    seen, served = node
    path = node_config(tmp_path, node_port=str(served.adapter.port), heartbeat_ms="50")
    app = Application.from_config(path, {SERVANT: DemoImpl()})

    async def initialize(app: Application) -> None:
        # The node hears keepActiving while the application initialises.
        await eventually(lambda: any(b.kind == "keepActiving" for b in seen.beats), "keepActiving")

    app.on_initialize(initialize)
    await app.start()
    pid = os.getpid()
    await eventually(
        lambda: {"", ADAPTER, "AdminAdapter"} <= seen.adapters_alive(pid), "a beat per adapter"
    )
    version = [b for b in seen.beats if b.kind == "reportVersion"]
    assert [(b.app, b.server, b.detail) for b in version] == [
        ("Demo", "DemoServer", tarsus.__version__)
    ]
    activing = next(b for b in seen.beats if b.kind == "keepActiving")
    assert (activing.app, activing.server, activing.pid) == ("Demo", "DemoServer", pid)
    # keepActiving comes before the first keepAlive, which is the empty-adapter one
    kinds = [b.kind for b in seen.beats]
    assert kinds.index("keepActiving") < kinds.index("keepAlive")
    assert next(b for b in seen.beats if b.kind == "keepAlive").detail == ""
    await app.stop()
    # after the stop the server no longer claims to be alive
    assert app.keepalive is not None and not app.keepalive.running


async def test_a_node_that_is_down_never_hurts_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = node_config(tmp_path, heartbeat_ms="10")  # nothing listens on node_port
    app = Application.from_config(path, {SERVANT: DemoImpl()})
    with caplog.at_level(logging.DEBUG, logger="tarsus.rpc.keepalive"):
        await app.start()
        keepalive = app.keepalive
        assert keepalive is not None
        await eventually(lambda: keepalive.failed >= 10, "ten failed heartbeats")
        config = app.config
        assert config is not None
        async with Communicator() as comm:
            demo = comm.string_to_proxy(Demo.DemoProxy, f"{SERVANT}@{config.adapters[0].endpoint}")
            assert await demo.sayHello("still here") == (0, "hello still here")
        await app.stop()
    records = caplog.records
    warnings = [r for r in records if r.name == "tarsus.rpc.keepalive" and r.levelno >= 30]
    assert len(warnings) == 1  # at most one a minute
    assert "further failures not logged" in warnings[0].getMessage()


async def test_stop_lets_calls_in_flight_finish_and_refuses_new_connections(
    tmp_path: Path,
) -> None:
    path = node_config(tmp_path)
    path.write_text(re.sub(r"\n\s*node=.*", "", path.read_text()))
    impl = DemoImpl()
    app = Application.from_config(path, {SERVANT: impl})
    serving = asyncio.ensure_future(app.serve_forever())
    await eventually(lambda: app.started, "started")
    config = app.config
    assert config is not None
    endpoint = config.adapters[0].endpoint
    async with Communicator() as comm:
        demo = comm.string_to_proxy(Demo.DemoProxy, f"{SERVANT}@{endpoint}")
        slow = asyncio.ensure_future(demo.slow(42))
        await eventually(lambda: app.adapters[0].inflight == 1, "the slow call in flight")
        app.request_stop()
        await eventually(lambda: not app.adapters[0].accepting, "not accepting")
        async with Communicator() as other:
            late = other.string_to_proxy(Demo.DemoProxy, f"{SERVANT}@{endpoint}")
            with pytest.raises(ConnectError):
                await late.sayHello("too late")
        impl.release.set()
        assert await slow == 42  # answered before the connection closed
    await serving  # serve_forever returns once the stop is over
    assert not app.started


# --------------------------------------------------------------------------------- the logs


def test_rolling_log_layout_format_and_levels(tmp_path: Path, restore_logging: None) -> None:
    server_log = logs.setup("Demo", "DemoServer", tmp_path, max_bytes=2000, log_num=3, level="INFO")
    log = logging.getLogger("demo.test")
    log.debug("hidden at INFO")
    log.info("shown at INFO")
    logs.set_level("DEBUG")
    log.debug("shown at DEBUG")
    logs.set_level("NONE")
    log.error("hidden at NONE")
    logs.set_level("TARS")
    log.log(logs.TARS, "framework chatter")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("with a traceback")
    server_log.flush()
    path = tmp_path / "Demo" / "DemoServer" / "Demo.DemoServer.log"
    assert server_log.roll_path == path
    lines = path.read_text().splitlines()
    assert all(LOG_LINE.match(line) for line in lines[:4])
    messages = [line.split("|", 3)[2:] for line in lines[:4]]
    assert messages == [
        ["INFO", "shown at INFO"],
        ["DEBUG", "shown at DEBUG"],
        ["TARS", "framework chatter"],
        ["ERROR", "with a traceback"],
    ]
    assert "ValueError: boom" in path.read_text()
    assert lines[0].split("|")[1] == str(threading.get_ident())
    # rolled by size, named as TarsCpp names them, lognum files in all
    for i in range(200):
        log.info("filler line %d %s", i, "x" * 50)
    server_log.flush()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["Demo.DemoServer.log", "Demo.DemoServer1.log", "Demo.DemoServer2.log"]
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        logs.set_level("LOUD")


def test_day_logs(tmp_path: Path, restore_logging: None) -> None:
    server_log = logs.setup("Demo", "DemoServer", tmp_path, level="ERROR")
    audit = logs.day_logger("audit")
    audit.info("first")  # day logs ignore the rolling log's level
    logs.enable_day_log("audit", False)
    audit.info("while off")
    logs.enable_day_log("audit", True)
    audit.info("second")
    logs.day_logger().info("default day log")
    server_log.flush()
    path = server_log.day_path("audit")
    assert path is not None and re.fullmatch(r"Demo\.DemoServer_audit_\d{8}\.log", path.name)
    lines = path.read_text().splitlines()
    assert [line.split("|", 1)[1] for line in lines] == ["first", "second"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[0].split("|")[0])
    default = server_log.day_path("")
    assert default is not None and re.fullmatch(r"Demo\.DemoServer_\d{8}\.log", default.name)
    assert default.read_text().endswith("|default day log\n")
    # day-log lines stay out of the rolling log
    roll = server_log.roll_path
    assert roll is not None and not (roll.exists() and "first" in roll.read_text())


def test_sizes_and_levels_parse_as_upstream() -> None:
    assert logs.parse_size("52428800") == 52428800
    assert logs.parse_size("50M") == 50 * 1024 * 1024
    assert logs.parse_size("1.5K") == 1536
    assert logs.parse_size("1G") == 1024**3
    with pytest.raises(ValueError):
        logs.parse_size("M")
    assert logs.parse_level("warn") == logging.WARNING
    assert logs.level_name(logging.CRITICAL) == "ERROR"


# ------------------------------------------------------------------ as tarsnode starts it


async def start_server(script: Path, config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        f"--config={config}",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_exit(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


async def test_a_server_started_like_tarsnode_starts_it(
    tmp_path: Path, node: tuple[Node, Served]
) -> None:
    """Heartbeats, calls, admin commands (log level, config pull, user command), then
    AdminF.shutdown with a slow call in flight: the call is answered and the process exits 0."""
    seen, served = node
    files = {"demo.conf": "<demo>\n  greeting = hi\n</demo>\n"}
    asked: list[tuple[str, str, str]] = []
    async with serve(config_servant(files, asked), "tars.tarsconfig.ConfigObj") as configobj:
        path = node_config(
            tmp_path, node_port=str(served.adapter.port), config_port=str(configobj.adapter.port)
        )
        config = ServerConfig.load(path)
        assert config.local is not None
        proc = await start_server(FIXTURES / "demo_server.py", path)
        try:
            async with Communicator() as comm:
                admin = comm.string_to_proxy(AdminF.AdminFProxy, f"AdminObj@{config.local}")
                demo = comm.string_to_proxy(
                    Demo.DemoProxy, f"{SERVANT}@{config.adapters[0].endpoint}"
                )
                await eventually(
                    lambda: {ADAPTER, "AdminAdapter"} <= seen.adapters_alive(proc.pid),
                    "keepAlive for both adapters",
                )
                assert await demo.sayHello("node") == (0, "hello node")
                assert await admin.getPid() == proc.pid
                await check_admin_commands(admin, demo, tmp_path, asked)
                slow = asyncio.ensure_future(demo.with_options(timeout_ms=20000).slow(3000))
                await eventually(
                    lambda: _inflight(admin), "the slow call shows as in flight", timeout=4
                )
                assert await admin.shutdown() is None
                assert await slow == 3000
        finally:
            code, err = await wait_exit(proc)
    assert code == 0, err
    log_text = (tmp_path / "app_log" / "Demo" / "DemoServer" / "Demo.DemoServer.log").read_text()
    assert "AdminF.shutdown: stopping" in log_text
    assert "|INFO|demo destroyed" in log_text  # the on_destroy hook ran
    # main runs the server on uvloop when it is installed (docs/rpc-server.md)
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert f", {loop} loop): " in log_text


async def _inflight(admin: Any) -> bool:
    status: str = await admin.notify("tars.viewstatus")
    block = status.split(f"name{' ' * 46}{ADAPTER}", 1)[1]
    return bool(re.search(r"\ninflight\s+1\n", block))


async def check_admin_commands(
    admin: Any, demo: Any, tmp: Path, asked: list[tuple[str, str, str]]
) -> None:
    roll = tmp / "app_log" / "Demo" / "DemoServer" / "Demo.DemoServer.log"
    # logLevel=INFO in the config: a DEBUG line is dropped ...
    await demo.logLine("DEBUG", "debug before")
    await demo.logLine("WARN", "marker one")
    await eventually(lambda: roll.exists() and "marker one" in roll.read_text(), "marker one")
    assert "debug before" not in roll.read_text()
    # ... until tars.setloglevel DEBUG
    assert await admin.notify("tars.setloglevel DEBUG") == "set log level [DEBUG] ok"
    await demo.logLine("DEBUG", "debug after")
    await eventually(lambda: "|DEBUG|debug after" in roll.read_text(), "the DEBUG line")
    assert await admin.notify("tars.setloglevel LOUD") == "set log level [LOUD] error"
    status = await admin.notify("tars.viewstatus")
    assert re.search(r"LogLevel\(loglevel\)\s+DEBUG\n", status)
    assert all(LOG_LINE.match(line) for line in roll.read_text().splitlines() if "|" in line[:20])
    # the day log of demo_server.py
    day = list(roll.parent.glob("Demo.DemoServer_audit_*.log"))
    assert len(day) == 1 and "|debug after" in day[0].read_text()
    # tars.loadconfig pulls the file from tarsconfig into basepath
    reply = await admin.notify("tars.loadconfig demo.conf")
    assert reply == "[succ] get remote config:demo.conf"
    assert asked == [("Demo", "DemoServer", "demo.conf")]
    assert (tmp / "bin" / "demo.conf").read_text() == "<demo>\n  greeting = hi\n</demo>\n"
    reply = await admin.notify("tars.loadconfig missing.conf")
    assert reply.startswith("[fail] get remote config 'missing.conf' error:")
    # commands the application registered, and what is not a command
    assert await admin.notify("demo.count a b") == "count=1 args='a b'"
    assert await admin.notify("tars.nosuch x") == "tars.nosuch x not support now!"
    assert "demo.count\r\n" in await admin.notify("tars.help")


async def test_sigterm_stops_the_hello_example_gracefully(tmp_path: Path) -> None:
    path = node_config(tmp_path)
    text = path.read_text().replace("Demo.DemoServer.DemoObj", "Test.HelloServer.HelloObj")
    text = text.replace("Demo.DemoServer.", "Test.HelloServer.")
    text = text.replace("app=Demo", "app=Test").replace("server=DemoServer", "server=HelloServer")
    text = re.sub(r"\n\s*node=.*", "", text)
    path.write_text(text)
    config = ServerConfig.load(path)
    Hello = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test
    proc = await start_server(ROOT / "examples" / "hello" / "server.py", path)
    try:
        async with Communicator() as comm:
            hello = comm.string_to_proxy(
                Hello.HelloProxy, f"Test.HelloServer.HelloObj@{config.adapters[0].endpoint}"
            )
            admin = comm.string_to_proxy(AdminF.AdminFProxy, f"AdminObj@{config.local}")

            async def answers() -> Any:
                try:
                    return await hello.sayHello("term")
                except ConnectError:
                    return None

            assert await eventually(answers, "the example answers") == (
                0,
                "hello term, from Python",
            )
            assert await admin.notify("hello.ping 1") == "pong 1"
        proc.send_signal(signal.SIGTERM)
    finally:
        code, err = await wait_exit(proc)
    assert code == 0, err
    log_text = (tmp_path / "app_log" / "Test" / "HelloServer" / "Test.HelloServer.log").read_text()
    assert "|WARN|SIGTERM: stopping" in log_text
    assert log_text.rstrip().endswith("|INFO|stopped")


async def test_a_bad_config_stops_the_process_with_a_reason(tmp_path: Path) -> None:
    path = node_config(tmp_path)
    path.write_text(path.read_text().replace("app=Demo", ""))
    proc = await start_server(FIXTURES / "demo_server.py", path)
    code, err = await wait_exit(proc)
    assert code == 1
    assert "/tars/application/server<app> is missing" in err and str(path) in err


async def test_a_port_in_use_stops_the_process_with_a_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        path = node_config(tmp_path, obj_port=str(taken.getsockname()[1]))
        proc = await start_server(FIXTURES / "demo_server.py", path)
        code, err = await wait_exit(proc)
    assert code == 1
    assert "cannot start" in err and "address already in use" in err


async def test_a_configured_stat_service_gets_the_call_statistics(tmp_path: Path) -> None:
    received: list[tuple[dict[Any, Any], bool]] = []

    class StatImpl(StatF.StatFServant):  # type: ignore[misc,name-defined]
        async def reportMicMsg(self, msg: dict[Any, Any], bFromClient: bool) -> int:
            received.append((msg, bFromClient))
            return 0

    async with serve(StatImpl(), "tars.tarsstat.StatObj") as stat:
        path = node_config(tmp_path)
        text = re.sub(r"\n\s*node=.*", "", path.read_text())
        path.write_text(text.replace("stat=tars.tarsstat.StatObj", f"stat={stat.proxy_string}"))
        app = Application.from_config(path, {SERVANT: DemoImpl()})
        await app.start()
        assert app.stats is not None
        config = app.config
        assert config is not None
        async with Communicator() as comm:
            (adapter,) = config.adapters
            demo = comm.string_to_proxy(Demo.DemoProxy, f"{SERVANT}@{adapter.endpoint}")
            for name in ("a", "b", "c"):
                assert await demo.sayHello(name) == (0, f"hello {name}")
        await app.stop()  # stopping sends the last report
    server_side = [msg for msg, from_client in received if not from_client]
    counts = {
        (head.interfaceName, head.masterName): body.count
        for msg in server_side
        for head, body in msg.items()
    }
    assert counts[("sayHello", "stat_from_server")] == 3


async def test_a_configured_property_service_gets_adapter_and_business_properties(
    tmp_path: Path,
) -> None:
    received: list[dict[Any, Any]] = []

    class PropertyImpl(PropertyF.PropertyFServant):  # type: ignore[misc,name-defined]
        async def reportPropMsg(self, statmsg: dict[Any, Any]) -> int:
            received.append(dict(statmsg))
            return 0

    async with serve(PropertyImpl(), "tars.tarsproperty.PropertyObj") as prop_service:
        path = node_config(tmp_path)
        text = re.sub(r"\n\s*node=.*", "", path.read_text())
        text = text.replace("stat=tars.tarsstat.StatObj", "stat=")
        path.write_text(
            text.replace(
                "property=tars.tarsproperty.PropertyObj", f"property={prop_service.proxy_string}"
            )
        )
        app = Application.from_config(path, {SERVANT: DemoImpl()})
        orders = app.property("orders", Sum(), Count(), Max())  # before start: kept
        await app.start()
        assert app.properties is not None and app.adapter_properties is not None
        assert app.property("orders") is orders  # made once
        orders.report(3)
        orders.report(4)
        app.adapter_properties.sample()  # what the 10 s loop does
        await app.stop()  # stopping sends the last interval
    values: dict[str, dict[str, str]] = {}
    for msg in received:
        for head, body in msg.items():
            assert head.moduleName == "Demo.DemoServer"
            values[head.propertyName] = {info.policy: info.value for info in body.vInfo}
    assert values["orders"] == {"Sum": "7", "Count": "2", "Max": "4"}
    assert values[f"{ADAPTER}.queue"] == {"Avg": "0"}
    assert values[f"{ADAPTER}.connectRate"] == {"Avg": "0"}
    assert values[f"{ADAPTER}.timeoutNum"] == {"Sum": "0"}
