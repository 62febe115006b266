"""Issue 9 §2: a descriptor's paths stay inside the node's directories, and ``destroyServer``
deletes only what the node created there. Real node, real processes, real files."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from node_support import ROOT, descriptor, eventually, free_port, hello_descriptor

from tarsus.framework.node import NodeCommands, NodeError


class Registry:
    """Stands in for Registry.getServers."""

    def __init__(self) -> None:
        self.descriptors: dict[tuple[str, str], Any] = {}

    async def load(self, app: str, server: str) -> Any:
        return self.descriptors.get((app, server))


def precious_dir(tmp_path: Path) -> Path:
    """A directory outside the node's, with something in it that must survive."""
    precious = tmp_path / "home" / "someone"
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_text("years of work\n")
    return precious


def shell_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def test_destroy_leaves_a_directory_outside_the_node_alone(
    harness_factory: Any, tmp_path: Path
) -> None:
    """The issue's repro: basePath set to any directory, a start, a destroy."""
    node = await harness_factory()
    registry = Registry()
    commands = NodeCommands(node.supervisor, registry.load)
    precious = precious_dir(tmp_path)
    port = free_port()
    registry.descriptors[("Test", "HelloServer")] = hello_descriptor(port, base_path=str(precious))
    ret, text = await commands.loadServer("Test", "HelloServer")
    assert ret == 1003 and f"basePath {precious} is outside the node's directories" in text
    ret, text = await commands.startServer("Test", "HelloServer")
    assert ret == 1003 and "outside the node's directories" in text
    ret, text = await commands.destroyServer("Test", "HelloServer")
    assert ret != 0
    assert sorted(p.name for p in precious.iterdir()) == ["thesis.tex"]  # no conf/ either
    assert (precious / "thesis.tex").read_text() == "years of work\n"

    # the same server inside the node's data runs, and its destroy removes its directory
    registry.descriptors[("Test", "HelloServer")] = hello_descriptor(port)
    assert (await commands.startServer("Test", "HelloServer"))[0] == 0
    await node.wait_state("Test", "HelloServer", "Active")
    assert await node.say_hello(port)
    sp = node.supervisor.get("Test", "HelloServer")
    server_dir = sp.layout.server_dir
    assert server_dir.is_dir() and server_dir.parent == Path(node.settings.data_dir)
    assert (await commands.stopServer("Test", "HelloServer"))[0] == 0
    assert await commands.destroyServer("Test", "HelloServer") == (0, "succ:server is destroyed")
    assert not server_dir.exists()
    assert (precious / "thesis.tex").exists()


async def test_a_trusted_directory_is_used_but_never_deleted(
    harness_factory: Any, tmp_path: Path
) -> None:
    trusted = tmp_path / "srv"
    node = await harness_factory(trusted_dirs=(ROOT, trusted))
    port = free_port()
    base = trusted / "hello"
    sp = await node.supervisor.load(hello_descriptor(port, base_path=str(base)))
    assert sp.layout.conf_file.is_file() and sp.layout.conf_file.is_relative_to(base)
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    await node.supervisor.stop_server("Test", "HelloServer")
    await node.supervisor.destroy("Test", "HelloServer")
    assert sp.layout.conf_file.is_file()  # outside the data dir: the node deletes nothing
    assert not sp.layout.log_dir.exists()  # its logs are the node's own


@pytest.mark.parametrize("case", ["symlink", "dotdot", "exe symlink", "exe", "lib", "profile"])
async def test_paths_leading_out_are_refused_at_load(
    harness_factory: Any, tmp_path: Path, case: str
) -> None:
    node = await harness_factory()
    data = Path(node.settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    precious = precious_dir(tmp_path)
    fields: dict[str, Any] = {}
    if case == "symlink":  # a link inside the data dir that leads out
        (data / "innocent").symlink_to(precious)
        fields["base_path"], reason = str(data / "innocent"), f"(that is {precious})"
    elif case == "dotdot":
        fields["base_path"], reason = f"{data}/../home/someone", "must not contain '..'"
    elif case == "exe symlink":
        (data / "tools").symlink_to("/bin")
        fields["exe_path"], reason = str(data / "tools" / "sh"), "is outside the node's"
    elif case == "exe":
        fields["exe_path"], reason = "/bin/sh", "exePath /bin/sh (that is"
    elif case == "lib":
        fields["base_path"], reason = str(data / "lib" / "x"), "which the node keeps for itself"
    else:
        fields["server_lines"] = f"logpath={precious}"
        reason = f"the profile's logpath {precious} is outside"
    with pytest.raises(NodeError, match=re.escape(reason)):
        await node.supervisor.load(descriptor("Demo", "Evil", server_type="not_tars", **fields))
    assert node.supervisor.get("Demo", "Evil") is None
    assert sorted(p.name for p in precious.iterdir()) == ["thesis.tex"]


async def test_another_servers_directory_is_refused(harness_factory: Any) -> None:
    node = await harness_factory()
    mine = await node.supervisor.load(descriptor("Demo", "Mine", server_type="not_tars"))
    with pytest.raises(NodeError, match=r"is the directory of Demo\.Mine"):
        await node.supervisor.load(
            descriptor(
                "Demo", "Thief", server_type="not_tars", base_path=str(mine.layout.server_dir)
            )
        )
    full = Path(node.settings.data_dir) / "prepared"
    full.mkdir()
    (full / "data.db").write_text("someone's")
    with pytest.raises(NodeError, match="already holds files the node did not put there"):
        await node.supervisor.load(
            descriptor("Demo", "Thief", server_type="not_tars", base_path=str(full))
        )
    await node.supervisor.destroy("Demo", "Mine")
    assert (full / "data.db").exists() and not mine.layout.server_dir.exists()


async def test_start_scripts_must_lie_inside_the_package(
    harness_factory: Any, tmp_path: Path
) -> None:
    node = await harness_factory()
    outside = shell_script(tmp_path / "evil.sh", f"touch {tmp_path / 'pwned'}\nexec sleep 60")
    with pytest.raises(NodeError, match="must lie inside the installed package"):
        await node.supervisor.load(
            descriptor("Demo", "Scripted", server_type="not_tars", start_script=str(outside))
        )
    with pytest.raises(NodeError, match=re.escape("must not contain '..'")):
        await node.supervisor.load(
            descriptor("Demo", "Scripted", server_type="not_tars", start_script="../../evil.sh")
        )
    # a script in the package runs ...
    sp = await node.supervisor.load(
        descriptor("Demo", "Scripted", server_type="not_tars", start_script="start.sh")
    )
    script = shell_script(sp.layout.bin_dir / "start.sh", "exec sleep 60")
    await node.supervisor.start_server("Demo", "Scripted")
    await node.wait_state("Demo", "Scripted", "Active")
    await node.supervisor.stop_server("Demo", "Scripted")
    await node.wait_state("Demo", "Scripted", "Inactive")
    # ... and once it is a link leading out of the package, it is refused at the start
    script.unlink()
    os.symlink(outside, script)
    with pytest.raises(NodeError, match="must lie inside the installed package"):
        await node.supervisor.start_server("Demo", "Scripted")
    assert not (tmp_path / "pwned").exists()
    await eventually(lambda: sp.state.value == "Inactive", "still Inactive")
