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
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from package_support import ROOT, Platform, pack, platform

import tarsus.idl
from tarsus.codec.constants import QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ
from tarsus.framework.node.package import VERSION_FILE
from tarsus.protocol.gen import MonitorQuery
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


#: what the TarsCpp server's generated config gets on top of the template: the shortest report
#: interval TarsCpp takes (StatReport::setReportInfo clamps to 10 s)
CPP_REPORT_PROFILE = """<tars>
  <application>
    <client>
      report-interval = 10000
    </client>
  </application>
</tars>
"""


@pytest.mark.slow
async def test_its_stats_and_properties_reach_our_services(
    tmp_path: Path, cpp_server: Path
) -> None:
    """The TarsCpp server reports to the StatObj and PropertyObj its generated config names;
    the rows are read back through the two query objects (by name, through the locator)."""
    async with platform(tmp_path, stat_window=1) as p:
        port = free_port()
        await p.deploy(APP, SERVER, "tars_cpp", {"HelloObj": port}, profile=CPP_REPORT_PROFILE)
        ok, why = await p.publish(APP, SERVER, make_tar(tmp_path / "v1", cpp_server))
        assert ok, why
        await p.start(APP, SERVER)
        await p.active_pid(APP, SERVER)
        for _ in range(3):
            assert await say_hello(p) == "hello tars, from C++"
        day = time.strftime("%Y%m%d")
        query_stat = p.comm.string_to_proxy(MonitorQuery.MonitorQueryProxy, QUERY_STAT_OBJ)
        calls = MonitorQuery.MonitorQueryReq(
            dataid="tars_stat",
            date=day,
            conditions=[
                MonitorQuery.Condition("slave_name", MonitorQuery.OP.EQ, f"{APP}.{SERVER}")
            ],
            indexs=["succ_count", "exce_count"],
            groupby=["master_name", "interface_name"],
        )

        async def served_calls() -> dict[str, list[float]] | None:
            _, rsp = await query_stat.query(calls)
            result = dict(rsp.result or {})
            # the server's own report of the answered calls (upstream: stat_from_server)
            return result if result.get("stat_from_server,sayHello", [0])[0] >= 3 else None

        got = await eventually(served_calls, "the TarsCpp server's stat report", timeout=45)
        assert got["stat_from_server,sayHello"][1] == 0

        query_prop = p.comm.string_to_proxy(MonitorQuery.MonitorQueryProxy, QUERY_PROPERTY_OBJ)
        props = MonitorQuery.MonitorQueryReq(
            dataid="tars_property",
            date=day,
            conditions=[
                MonitorQuery.Condition("master_name", MonitorQuery.OP.EQ, f"{APP}.{SERVER}")
            ],
            indexs=["value"],
            groupby=["property_name", "policy"],
        )

        async def properties() -> dict[str, list[float]] | None:
            _, rsp = await query_prop.query(props)
            return dict(rsp.result) if rsp.result else None

        names = await eventually(properties, "the TarsCpp server's properties", timeout=45)
        # its adapter's queue, as every TarsCpp server reports it
        assert any(key.startswith(f"{APP}.{SERVER}.HelloObjAdapter.queue") for key in names), names
