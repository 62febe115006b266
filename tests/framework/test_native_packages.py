"""A server built with upstream TarsCpp, in upstream's own package layout (``make tar``:
``CppServer.tgz`` holding ``CppServer/CppServer``, no ``tarsus.toml``), published to our node
through the admin registry: it runs as ``CppServer --config=<conf>``, answers by name, comes
back after a kill -9, and a new build replaces it. Bad packages are refused before anything
changes, and the running version keeps running.

The binary is the TarsCpp peer laid beside the clone (``shared/peers/tarscpp/CppServer``) or
named by ``$TARSUS_TARSCPP_SERVER``; without it the tests skip.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from package_support import ROOT, Platform, pack, platform

import tarsus.idl
from tarsus.framework.node.package import VERSION_FILE
from tarsus.rpc.errors import TarsError
from tarsus.testing import eventually, free_port

APP, SERVER = "Test", "CppServer"
Test = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test
SERVER_ENV = "TARSUS_TARSCPP_SERVER"


def _cpp_server() -> Path:
    named = os.environ.get(SERVER_ENV)
    path = Path(named) if named else ROOT.parent / "shared" / "peers" / "tarscpp" / "CppServer"
    if not path.is_file():
        pytest.skip(
            f"the TarsCpp-built server is absent (set ${SERVER_ENV} or lay "
            "shared/peers/tarscpp/CppServer beside the clone)"
        )
    return path


@pytest.fixture
def cpp_server() -> Path:
    return _cpp_server()


def make_tar(tmp: Path, binary: Path, *, extra: dict[str, bytes] | None = None) -> Path:
    """What upstream's ``make tar`` gives: ``CppServer.tgz`` holding ``CppServer/CppServer``."""
    files: dict[str, bytes | Path] = {f"{SERVER}/{SERVER}": binary}
    for name, data in (extra or {}).items():
        files[f"{SERVER}/{name}"] = data
    tmp.mkdir(parents=True, exist_ok=True)
    return pack(tmp / f"{SERVER}.tgz", files)


async def say_hello(p: Platform) -> str:
    """Called by name: the registry routes Test.CppServer.HelloObj to the node's instance
    (once it has heard from the node that the server is Active)."""
    proxy = p.comm.string_to_proxy(Test.HelloProxy, f"{APP}.{SERVER}.HelloObj")

    async def call() -> str:
        ret, greeting = await proxy.sayHello("tars")
        assert ret == 0
        return str(greeting)

    return await eventually(call, "sayHello answered by name", ignoring=TarsError)


@pytest.fixture
async def running(tmp_path: Path, cpp_server: Path) -> AsyncIterator[Platform]:
    """CppServer deployed, its upstream-layout package published, started, Active."""
    async with platform(tmp_path) as p:
        port = free_port()
        await p.deploy(APP, SERVER, "tars_cpp", {"HelloObj": port})
        ok, why = await p.publish(APP, SERVER, make_tar(tmp_path / "v1", cpp_server))
        assert ok, why
        await p.start(APP, SERVER)
        await p.active_pid(APP, SERVER)
        yield p


@pytest.mark.slow
async def test_upstream_layout_runs_answers_by_name_restarts_and_updates(
    running: Platform, tmp_path: Path, cpp_server: Path
) -> None:
    p = running
    assert await say_hello(p) == "hello tars, from C++"
    bin_dir = p.node_data / f"{APP}.{SERVER}" / "bin"
    # no venv, no tarsus.toml: the binary, and the node's record of the installed version
    assert sorted(os.listdir(bin_dir)) == [VERSION_FILE, SERVER]
    assert not (p.node_data / f"{APP}.{SERVER}" / "venv").exists()

    # kill -9: the node notices and starts it again
    pid = await p.active_pid(APP, SERVER)
    p.kill(pid)
    new_pid = await p.active_pid(APP, SERVER, other_than=pid)
    assert await say_hello(p) == "hello tars, from C++"

    # stop, publish a new build, start: the new version runs
    await p.stop(APP, SERVER)
    assert (await p.state(APP, SERVER))[0] == "inactive"
    v2 = make_tar(tmp_path / "v2", cpp_server, extra={"VERSION": b"2\n"})
    ok, why = await p.publish(APP, SERVER, v2)
    assert ok, why
    assert (bin_dir / "VERSION").read_text() == "2\n"
    backup = p.node_data / "tmp" / f"{APP}.{SERVER}" / "bin_bak1"
    assert sorted(os.listdir(backup)) == [VERSION_FILE, SERVER]  # the previous build, kept
    await p.start(APP, SERVER)
    assert await p.active_pid(APP, SERVER, other_than=new_pid)
    assert await say_hello(p) == "hello tars, from C++"


def _bad_packages(tmp: Path, binary: Path) -> dict[str, tuple[Path, str]]:
    """name -> (package, what the refusal says)."""
    tmp.mkdir(parents=True, exist_ok=True)
    good = make_tar(tmp / "good", binary).read_bytes()
    corrupt = tmp / "corrupt.tgz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
    truncated = tmp / "truncated.tgz"
    truncated.write_bytes(good[: len(good) // 2])
    traversal = tmp / "traversal.tgz"
    with tarfile.open(traversal, "w:gz") as tar:
        tar.add(binary, arcname=f"{SERVER}/{SERVER}")
        info = tarfile.TarInfo(f"{SERVER}/../../../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    wrong = pack(tmp / "OtherServer.tgz", {"OtherServer/OtherServer": binary})
    return {
        "corrupt": (corrupt, "not a readable tar archive"),
        "truncated": (truncated, "not a readable tar archive"),
        "path-traversing": (traversal, "contains '..'"),
        "wrong-name": (wrong, "the package is 'OtherServer''s"),
    }


async def test_bad_packages_are_refused_and_the_running_version_keeps_running(
    running: Platform, tmp_path: Path, cpp_server: Path
) -> None:
    p = running
    pid = await p.active_pid(APP, SERVER)
    bin_dir = p.node_data / f"{APP}.{SERVER}" / "bin"
    backups = p.node_data / "tmp" / f"{APP}.{SERVER}"
    before = sorted(os.listdir(bin_dir))
    kept = sorted(os.listdir(backups))
    for name, (package, says) in _bad_packages(tmp_path / "bad", cpp_server).items():
        ok, why = await p.publish(APP, SERVER, package)
        assert not ok, name
        assert says in why, (name, why)
        assert sorted(os.listdir(bin_dir)) == before, name
    assert not (tmp_path / "escaped").exists()
    assert sorted(os.listdir(backups)) == kept  # no backup rotated: nothing was swapped
    assert await p.state(APP, SERVER) == ("active", pid)
    assert await say_hello(p) == "hello tars, from C++"
