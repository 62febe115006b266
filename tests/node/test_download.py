"""Nodes install what they download from the package store (``tars.tarspatch.PatchObj``):
patchPro without a filepath, md5 and disk checked, a download resumed after the store
restarted, the local copy reused, the installed versions recorded."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from node_support import HELLO_DIR, hello_descriptor

from tarsus.codec import decode
from tarsus.framework.node import NodeCommands
from tarsus.framework.node.download import PatchObjSource, batch_path
from tarsus.framework.node.package import recorded_version
from tarsus.framework.patch import PatchService, PatchSettings
from tarsus.framework.service import host
from tarsus.package import PackageError, pack_directory
from tarsus.protocol.gen import NodeDescriptor, Patch
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.testing import eventually, free_port, patch_store_process, serve

OBJ = "tars.tarspatch.PatchObj"


async def upload(patch: Patch.PatchProxy, app: str, server: str, name: str, data: bytes) -> str:
    """``data`` uploaded and staged for ``app``.``server``; its md5."""
    md5 = hashlib.md5(data).hexdigest()
    size = 1 << 20
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    for i, chunk in enumerate(chunks):
        content = Patch.FileContent(
            md5=md5, name=name, firstChunk=i == 0, lastChunk=i == len(chunks) - 1, content=chunk
        )
        assert await patch.upload(app, server, content) == 0
    code, staged = await patch.preparePatchFile(app, server, name)
    assert (code, staged) == (0, batch_path(app, server))
    return md5


@dataclass
class Store:
    obj: str  # the proxy string a PatchRequest carries
    patch: Patch.PatchProxy
    root: Path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    app = Application()
    settings = PatchSettings.under(tmp_path / "patchs", disk_reserve=0)
    service = host(app, PatchService(settings), {OBJ: "tcp -h 127.0.0.1 -p 0 -t 60000"})
    await app.start()
    obj = f"{OBJ}@{service.adapters[0].bound_endpoint}"
    try:
        async with Communicator(cache_dir=None) as comm:
            yield Store(obj, comm.string_to_proxy(Patch.PatchProxy, obj), tmp_path / "patchs")
    finally:
        await app.stop(drain_timeout=1.0)


def request(obj: str, md5: str, version: str) -> Any:
    return NodeDescriptor.PatchRequest(
        appname="Test",
        servername="HelloServer",
        nodename="127.0.0.1",
        version=version,
        user="admin",
        servertype="tars_python",
        patchobj=obj,
        md5=md5,
    )


async def finished(commands: NodeCommands) -> tuple[int, Any]:
    async def done() -> Any:
        ret, data = await commands.getPatchPercent("Test", "HelloServer")
        info = decode(data, NodeDescriptor.PatchInfo)
        return (ret, info) if info.iPercent == 100 else None

    result: tuple[int, Any] = await eventually(done, "the install to finish")
    return result


async def node_with_hello(harness_factory: Any, **settings: Any) -> tuple[Any, NodeCommands, int]:
    node = await harness_factory(**settings)
    port = free_port()
    desc = hello_descriptor(port, exe_path="")

    async def load(app: str, server: str) -> Any:
        return desc if (app, server) == ("Test", "HelloServer") else None

    return node, NodeCommands(node.supervisor, load), port


async def test_a_node_installs_what_it_downloads_and_keeps_the_versions(
    harness_factory: Any, store: Store, tmp_path: Path
) -> None:
    node, commands, port = await node_with_hello(harness_factory)
    package = pack_directory(HELLO_DIR, tmp_path / "pkg", "hello").read_bytes()
    md5 = await upload(store.patch, "Test", "HelloServer", "Test.HelloServer_cli_1.tgz", package)

    assert await commands.patchPro(request(store.obj, md5, "7")) == (0, "")
    ret, info = await finished(commands)
    assert (ret, info.bSucc, info.sVersion) == (0, True, "7"), info.sResult
    ret, text = await commands.startServer("Test", "HelloServer")
    assert ret == 0, text
    await node.wait_state("Test", "HelloServer", "Active")
    assert (await node.say_hello(port)).startswith("hello node")

    sp = node.supervisor.get("Test", "HelloServer")
    bin_dir = sp.layout.bin_dir
    assert recorded_version(bin_dir)["version"] == "7"
    assert recorded_version(bin_dir)["md5"] == md5
    local = node.settings.download_dir / "BatchPatchingLoad" / "Test.HelloServer"
    assert (local / "Test.HelloServer.tgz").read_bytes() == package

    # the same package again: the local copy is used, even with the store's copy gone
    os.remove(store.root / "tars" / batch_path("Test", "HelloServer").lstrip("/"))
    assert await commands.patchPro(request(store.obj, md5, "8")) == (0, "")
    ret, info = await finished(commands)
    assert (ret, info.bSucc) == (0, True), info.sResult
    assert recorded_version(bin_dir)["version"] == "8"
    assert recorded_version(sp.layout.backup_dir / "bin_bak1")["version"] == "7"


async def test_a_wrong_md5_or_a_full_disk_installs_nothing(
    harness_factory: Any, store: Store, tmp_path: Path
) -> None:
    _node, commands, _port = await node_with_hello(harness_factory)
    package = pack_directory(HELLO_DIR, tmp_path / "pkg", "hello").read_bytes()
    md5 = await upload(store.patch, "Test", "HelloServer", "a.tgz", package)

    assert await commands.patchPro(request(store.obj, "0" * 32, "9")) == (0, "")
    ret, info = await finished(commands)
    assert ret == -1 and not info.bSucc and "md5" in info.sResult

    full_node, full, _ = await node_with_hello(
        harness_factory, data_dir=tmp_path / "full", disk_reserve=2**62
    )
    assert await full.patchPro(request(store.obj, md5, "9")) == (0, "")
    ret, info = await finished(full)
    assert ret == -1 and not info.bSucc and "not enough disk space" in info.sResult
    assert not (full_node.settings.download_dir / "BatchPatchingLoad").exists() or not list(
        (full_node.settings.download_dir / "BatchPatchingLoad").rglob("*.tgz")
    )

    # no package store named: refused at once
    ret, text = await commands.patchPro(request("", md5, "9"))
    assert ret == 1007 and "neither a filepath" in text


def _store_process(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    return patch_store_process(tmp_path, port, chunk_size="64K", disk_reserve="0")


@pytest.mark.slow
async def test_a_download_resumes_after_the_store_restarted(tmp_path: Path) -> None:
    port = free_port()
    obj = f"{OBJ}@tcp -h 127.0.0.1 -p {port}"
    procs = [_store_process(tmp_path, port)]
    data = os.urandom(8 * 1024 * 1024)
    try:
        async with Communicator(cache_dir=None) as comm:
            patch = comm.string_to_proxy(Patch.PatchProxy, obj).with_options(timeout_ms=2000)

            async def answers() -> bool:
                try:
                    return (await patch.listFileInfo("/"))[0] == 0
                except Exception:
                    return False

            await eventually(answers, "the package store to answer")
            md5 = await upload(patch, "Test", "Big", "big.tgz", data)
            source = PatchObjSource(
                comm, obj, md5=md5, download_dir=tmp_path / "download", disk_reserve=0
            )
            seen: list[int] = []

            def progress(percent: int) -> None:
                seen.append(percent)
                if percent >= 30 and len(procs) == 1:  # the store dies mid-download...
                    procs[0].kill()
                    procs[0].wait()
                    procs.append(_store_process(tmp_path, port))  # ...and comes back

            got = await source.fetch(batch_path("Test", "Big"), tmp_path / "work", progress)
            assert got.read_bytes() == data
            assert len(procs) == 2 and seen[-1] == 100
            assert not [p for p in got.parent.iterdir() if p.name.startswith(".")]

            # the store down for good: the fetch fails, what it got stays for the next try
            got.unlink()
            quick = PatchObjSource(
                comm, obj, md5=md5, download_dir=tmp_path / "download", disk_reserve=0,
                retry_for=1.0,
            )  # fmt: skip

            def die_at_half(percent: int) -> None:
                if percent >= 50 and procs[-1].poll() is None:
                    procs[-1].kill()
                    procs[-1].wait()

            with pytest.raises(PackageError, match="did not answer"):
                await quick.fetch(batch_path("Test", "Big"), tmp_path / "work", die_at_half)
            part = got.with_name(f".{got.name}.part")
            kept = part.stat().st_size
            assert kept >= len(data) // 2
            procs.append(_store_process(tmp_path, port))
            resumed: list[int] = []
            got = await source.fetch(batch_path("Test", "Big"), tmp_path / "work", resumed.append)
            assert got.read_bytes() == data
            assert resumed[0] >= 50  # it went on from what it had, not from 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


class _Irregular(Patch.PatchServant):
    """A store answering ``data`` in chunks of lengths that change (any store may: upstream's
    ``size=``), slowly enough that requests pile up; it notes how many were in flight."""

    def __init__(self, data: bytes, lengths: list[int], *, end_at: int | None = None) -> None:
        self.data = data
        self.lengths = lengths
        self.end_at = len(data) if end_at is None else end_at
        self.asked: list[int] = []
        self.inflight = 0
        self.most_inflight = 0

    async def listFileInfo(self, path: str) -> tuple[int, list[Patch.FileInfo]]:
        md5 = hashlib.md5(self.data).hexdigest()
        return 1, [Patch.FileInfo(path="Test.Big.tgz", size=len(self.data), md5=md5)]

    async def download(self, file: str, pos: int) -> tuple[int, bytes]:
        self.asked.append(pos)
        self.inflight += 1
        self.most_inflight = max(self.most_inflight, self.inflight)
        try:
            await asyncio.sleep(0.005)
        finally:
            self.inflight -= 1
        if pos >= self.end_at:
            return 1, b""
        length = self.lengths[len(self.asked) % len(self.lengths)]
        return 0, self.data[pos : pos + length]


async def _fetch_from(servant: Patch.PatchServant, tmp_path: Path, md5: str, window: int) -> Path:
    async with serve(servant, OBJ) as served:
        source = PatchObjSource(
            served.communicator,
            served.proxy_string,
            md5=md5,
            download_dir=tmp_path / "download",
            disk_reserve=0,
            retry_for=1.0,
            window=window,
        )
        return await source.fetch(batch_path("Test", "Big"), tmp_path / "work")


async def test_chunks_of_any_length_land_where_they_belong_with_requests_in_flight(
    tmp_path: Path,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    md5 = hashlib.md5(data).hexdigest()
    steady = _Irregular(data, [256 * 1024])
    assert (await _fetch_from(steady, tmp_path / "a", md5, window=4)).read_bytes() == data
    assert steady.most_inflight > 1  # asked ahead, at positions that follow
    assert sorted(set(steady.asked)) == list(range(0, len(data), 256 * 1024))

    odd = _Irregular(data, [100_000, 65_536, 300_001, 7])
    assert (await _fetch_from(odd, tmp_path / "b", md5, window=4)).read_bytes() == data

    one_at_a_time = _Irregular(data, [65_536, 1 << 20])
    got = await _fetch_from(one_at_a_time, tmp_path / "c", md5, window=1)
    assert got.read_bytes() == data and one_at_a_time.most_inflight == 1


async def test_a_store_whose_file_changes_during_the_download_installs_nothing(
    tmp_path: Path,
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    md5 = hashlib.md5(data).hexdigest()
    shrunk = _Irregular(data, [256 * 1024], end_at=1024 * 1024)
    with pytest.raises(PackageError, match="ended at 1048576 of the 2097152 bytes"):
        await _fetch_from(shrunk, tmp_path / "a", md5, window=4)

    grown = _Irregular(data + b"more", [300_000])

    async def listed(path: str) -> tuple[int, list[Patch.FileInfo]]:
        return 1, [Patch.FileInfo(path="Test.Big.tgz", size=len(data), md5=md5)]  # as before

    grown.listFileInfo = listed  # type: ignore[method-assign]
    with pytest.raises(PackageError, match="grew past the 2097152 bytes"):
        await _fetch_from(grown, tmp_path / "b", md5, window=4)
    assert not list((tmp_path / "b" / "download").rglob("*.tgz"))
