"""NodeCommands: the pushed commands' answers, exactly as reportResult carries them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node_support import HELLO_DIR, hello_descriptor

import tarsus.idl
from tarsus.codec import decode
from tarsus.framework.node import InternalState, NodeCommands
from tarsus.protocol import PROTOCOL_DIR
from tarsus.protocol.gen import NodeDescriptor, NodeF
from tarsus.testing import eventually, free_port

Answers = tarsus.idl.load(
    Path(__file__).parent / "golden" / "Answers.tars", include_dirs=[PROTOCOL_DIR]
).nodetest


def patch_request(filepath: str, version: str = "42") -> Any:
    return NodeDescriptor.PatchRequest(
        appname="Test",
        servername="HelloServer",
        nodename="127.0.0.1",
        groupname="HelloServer",
        binname="",
        version=version,
        user="admin",
        servertype="tars_python",
        patchobj="tars.tarspatch.PatchObj",
        md5="",
        filepath=filepath,
    )


class Registry:
    """Stands in for Registry.getServers: the descriptors it knows, by server."""

    def __init__(self) -> None:
        self.descriptors: dict[tuple[str, str], Any] = {}
        self.asked: list[tuple[str, str]] = []

    async def load(self, app: str, server: str) -> Any:
        self.asked.append((app, server))
        return self.descriptors.get((app, server))


@dataclass
class Setup:
    node: Any
    commands: NodeCommands
    registry: Registry
    port: int
    shutdowns: list[bool]


async def make(harness_factory: Any) -> Setup:
    node = await harness_factory()
    registry = Registry()
    port = free_port()
    # deployed, not yet started: setting_state inactive (as TarsWeb's ``addServerConf``)
    registry.descriptors[("Test", "HelloServer")] = hello_descriptor(
        port, exe_path="", setting_state="inactive"
    )
    shutdowns: list[bool] = []
    commands = NodeCommands(
        node.supervisor, registry.load, on_shutdown=lambda: shutdowns.append(True)
    )
    return Setup(node, commands, registry, port, shutdowns)


async def test_lifecycle_through_pushed_commands(harness_factory: Any) -> None:
    setup = await make(harness_factory)
    node, commands, registry, port = setup.node, setup.commands, setup.registry, setup.port
    assert await commands.ping() == (0, "ping succ")

    ret, data = await commands.getStateInfo("Test", "HelloServer")
    answer = decode(data, Answers.StateAnswer)
    assert ret == -1 and answer.info.processId == -1 and "server not exist" in answer.result

    assert (await commands.loadServer("Test", "Nope"))[0] == 1003
    assert await commands.loadServer("Test", "HelloServer") == (0, " succ")

    # patchPro answers at once; the installation runs on and getPatchPercent follows it
    assert await commands.patchPro(patch_request(str(HELLO_DIR))) == (0, "")

    async def patched() -> Any:
        ret, data = await commands.getPatchPercent("Test", "HelloServer")
        info = decode(data, NodeDescriptor.PatchInfo)
        return (ret, info) if info.iPercent == 100 else None

    ret, info = await eventually(patched, "installed")
    assert ret == 0 and info.bSucc and not info.bPatching and info.sVersion == "42"

    ret, text = await commands.startServer("Test", "HelloServer")
    assert ret == 0 and text.startswith("server is activating, please check: pid ")
    await node.wait_state("Test", "HelloServer", "Active")
    assert await node.say_hello(port)

    ret, data = await commands.getStateInfo("Test", "HelloServer")
    answer = decode(data, Answers.StateAnswer)
    sp = node.supervisor.get("Test", "HelloServer")
    assert ret == 0 and answer.result == "getStateInfo [Test.HelloServer] succ"
    assert int(answer.info.serverState) == 2 and answer.info.processId == sp.pid
    assert int(answer.info.settingState) == 2 and "RUN_SECONDS" in answer.info.exState

    assert await commands.notifyServer("Test", "HelloServer", "hello.ping x") == (0, "succ:pong x")

    ret, data = await commands.getLogFileList("Test", "HelloServer")
    assert ret == 0 and "Test.HelloServer.log" in decode(data, Answers.FileList).files
    ret, text = await commands.getLogData(
        "Test", "HelloServer", "Test.HelloServer.log", "tail -n 500 __log_file_name__ | grep -c ."
    )
    assert ret == 0 and int(text) > 0
    ret, text = await commands.getLogData(
        "Test", "HelloServer", "Test.HelloServer.log", "cat __log_file_name__; rm -rf /"
    )
    assert ret == -1 and "';' is not allowed" in text
    ret, text = await commands.getLogData("Test", "HelloServer", "../../etc/passwd", "cat")
    assert ret == -1 and "plain file name" in text

    ret, text = await commands.destroyServer("Test", "HelloServer")
    assert ret == 1004 and "not Inactive" in text
    # the admin set setting_state inactive before pushing the stop, as AdminReg does
    registry.descriptors[("Test", "HelloServer")] = registry.descriptors[
        ("Test", "HelloServer")
    ].replace(settingState="inactive")
    ret, text = await commands.stopServer("Test", "HelloServer")
    assert (ret, text) == (0, "succ:server is stopped")
    assert not sp.enabled  # the reload after the stop did not switch it back on
    assert await commands.destroyServer("Test", "HelloServer") == (0, "succ:server is destroyed")
    assert node.supervisor.get("Test", "HelloServer") is None


async def test_a_failed_patch_reports_percent_100_and_no_success(
    harness_factory: Any, tmp_path: Path
) -> None:
    commands = (await make(harness_factory)).commands
    empty = tmp_path / "not-a-package"
    empty.mkdir()
    (empty / "server.py").write_text("")
    assert await commands.patchPro(patch_request(str(empty))) == (0, "")

    async def done() -> Any:
        ret, data = await commands.getPatchPercent("Test", "HelloServer")
        info = decode(data, NodeDescriptor.PatchInfo)
        return (ret, info) if info.iPercent == 100 else None

    ret, info = await eventually(done, "finished")
    assert ret == -1 and not info.bSucc and "tarsus.toml is missing" in info.sResult
    ret, text = await commands.patchPro(patch_request(""))
    assert ret == 1007 and "neither a filepath" in text


class HeldSource:
    """A PackageSource that holds every fetch until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.fetching = asyncio.Event()

    async def fetch(self, location: str, workdir: Path, progress: Any = None) -> Path:
        self.fetching.set()
        await self.release.wait()
        return Path(location)


async def test_duplicate_patch_is_refused(harness_factory: Any) -> None:
    setup = await make(harness_factory)
    node, commands = setup.node, setup.commands
    source = HeldSource()
    node.supervisor.package_source = source
    assert await commands.patchPro(patch_request(str(HELLO_DIR))) == (0, "")
    await source.fetching.wait()
    ret, text = await commands.patchPro(patch_request(str(HELLO_DIR)))
    assert ret == 1005 and "reduplicate" in text
    ret, data = await commands.getPatchPercent("Test", "HelloServer")
    assert ret == 0 and decode(data, NodeDescriptor.PatchInfo).bPatching
    # a stop is refused while patching
    ret, text = await commands.stopServer("Test", "HelloServer")
    assert ret == 1004 and "Patching" in text
    source.release.set()
    await eventually(lambda: not node.supervisor.get("Test", "HelloServer").patch.patching, "done")


async def test_unsupported_and_node_level_commands(harness_factory: Any) -> None:
    setup = await make(harness_factory)
    commands = setup.commands
    ret, text = await commands.delCache("Demo.Cache", "", "")
    assert ret == -1 and "not supported" in text
    ret, data = await commands.forceDockerLogin()
    assert ret == -1 and decode(data, Answers.FileList).files
    ret, text = await commands.getNodeLoad("Test", "HelloServer", 0)
    assert ret == 0 and "load average" in text and "#global-top-end#" in text
    assert await commands.shutdown() == (0, "")
    await eventually(lambda: setup.shutdowns, "shutdown requested")
    assert (await commands.startServer("Test", "Nope"))[0] == 1003
    assert (await commands.notifyServer("Test", "Nope", "x"))[0] == 1003


async def test_a_server_an_operator_stopped_stays_stopped(harness_factory: Any) -> None:
    """A restart task stops, then starts; between the two the node reloads the server (its
    setting in the registry still says active) and must not start it by itself."""
    setup = await make(harness_factory)
    node, commands, registry = setup.node, setup.commands, setup.registry
    registry.descriptors[("Test", "HelloServer")] = hello_descriptor(setup.port)  # active
    ret, text = await commands.startServer("Test", "HelloServer")
    assert ret == 0, text
    sp = await node.wait_state("Test", "HelloServer", "Active")

    # a restart as a task runs it: stop, then start, one after the other
    assert await commands.stopServer("Test", "HelloServer") == (0, "succ:server is stopped")
    ret, text = await commands.startServer("Test", "HelloServer")
    assert ret == 0 and text.startswith("server is activating, please check: pid "), text
    await node.wait_state("Test", "HelloServer", "Active")

    # a stop, then the node's monitor passes by many times: nothing starts it
    assert await commands.stopServer("Test", "HelloServer") == (0, "succ:server is stopped")
    await _monitor_passes(node, 20)
    assert sp.state is InternalState.INACTIVE and sp.handle is None
    ret, data = await commands.getStateInfo("Test", "HelloServer")
    assert "stopped by an operator" in decode(data, Answers.StateAnswer).result

    # nor after a node restart (the cache remembers the operator's stop), with the
    # registry (still active) or without it (the cache alone)
    for from_registry in (True, False):
        await node.stop(stop_services=False)
        node = await harness_factory()
        if from_registry:
            await node.supervisor.load_all([registry.descriptors[("Test", "HelloServer")]])
        else:
            await node.supervisor.restore()
        sp = node.supervisor.get("Test", "HelloServer")
        await _monitor_passes(node, 20)
        assert sp.state is InternalState.INACTIVE and sp.handle is None
        assert all(int(info.serverState) == 0 for info in node.reports)

    # until an operator starts it
    commands = NodeCommands(node.supervisor, registry.load)
    ret, text = await commands.startServer("Test", "HelloServer")
    assert ret == 0 and text.startswith("server is activating, please check: pid "), text
    await node.wait_state("Test", "HelloServer", "Active")


async def _monitor_passes(node: Any, count: int) -> None:
    """Wait until the node's monitor has looked at every server ``count`` more times."""
    target = node.supervisor.passes + count
    await eventually(lambda: node.supervisor.passes >= target, f"{count} monitor passes")


async def test_a_backtracking_log_search_stops_nothing_else(harness_factory: Any) -> None:
    """Issue 9 §3: ``grep -E '(a+)+b'`` over a line of 40 ``a`` (minutes of backtracking)
    answers "timed out", and the node's ServerObj answers every call made meanwhile."""
    node = await harness_factory(log_search_timeout=3.0)
    commands = NodeCommands(node.supervisor, Registry().load)
    log_dir = Path(node.settings.log_dir) / "Test" / "HelloServer"
    log_dir.mkdir(parents=True)
    (log_dir / "Test.HelloServer.log").write_text("start\n" + "a" * 40 + "\n")
    proxy = node.comm.string_to_proxy(
        NodeF.ServerFProxy, f"tars.tarsnode.ServerObj@{node.settings.node_endpoint}"
    ).with_options(timeout_ms=10000)
    search = asyncio.create_task(
        commands.getLogData(
            "Test", "HelloServer", "Test.HelloServer.log", "grep -E '(a+)+b' __log_file_name__"
        )
    )
    answered = 0
    while not search.done():
        await proxy.getLatestKeepAliveTime()  # a frozen node: a timeout error here
        answered += 1
        await asyncio.sleep(0.05)
    ret, text = await search
    assert ret == -1 and "timed out after 3 s" in text
    assert answered > 0
    # and the next search runs as usual
    assert await commands.getLogData(
        "Test", "HelloServer", "Test.HelloServer.log", "grep -c aaaa __log_file_name__"
    ) == (0, "1\n")
