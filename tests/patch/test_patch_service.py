"""The package store, ``tars.tarspatch.PatchObj``, over a real socket: chunked uploads with
md5, staging, listing and downloading, and what a hostile caller may not make it do."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarsus.framework.patch import PatchCode, PatchService, PatchSettings, staged_path
from tarsus.framework.service import host
from tarsus.protocol.gen import Patch, TarsusPatch
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator

OBJ = "tars.tarspatch.PatchObj"


@dataclass
class Store:
    service: PatchService
    patch: Patch.PatchProxy
    ext: TarsusPatch.PatchExtProxy
    root: Path

    async def upload(self, name: str, data: bytes, chunk: int = 100_000, md5: str = "") -> int:
        """``data`` as ``name`` of Test.Hello in chunks, as the console does; the last code."""
        md5 = md5 or hashlib.md5(data).hexdigest()
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        code = 0
        for i, piece in enumerate(pieces):
            content = Patch.FileContent(
                md5=md5,
                name=name,
                firstChunk=i == 0,
                lastChunk=i == len(pieces) - 1,
                content=piece,
            )
            code = await self.patch.upload("Test", "Hello", content)
            if code != 0:
                return code
        return code

    async def download(self, path: str) -> bytes:
        out = bytearray()
        while True:
            code, data = await self.patch.download(path, len(out))
            if code == 1:
                return bytes(out)
            assert code == 0, code
            out += data


async def _serve(settings: PatchSettings) -> AsyncIterator[Store]:
    app = Application()
    service = host(app, PatchService(settings), {OBJ: "tcp -h 127.0.0.1 -p 0 -t 60000"})
    await app.start()
    where = f"{OBJ}@{service.adapters[0].bound_endpoint}"
    try:
        async with Communicator(cache_dir=None) as comm:
            yield Store(
                service,
                comm.string_to_proxy(Patch.PatchProxy, where),
                comm.string_to_proxy(TarsusPatch.PatchExtProxy, where),
                settings.directory.parent,
            )
    finally:
        await app.stop(drain_timeout=1.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    settings = PatchSettings.under(tmp_path / "patchs", chunk_size=64 * 1024, disk_reserve=0)
    async for s in _serve(settings):
        yield s


DATA = os.urandom(1_000_000)


async def test_a_chunked_upload_is_stored_with_its_md5_and_listed(store: Store) -> None:
    assert await store.upload("Test.Hello_cli_1.tgz", DATA) == 0
    code, files = await store.ext.listUploads("Test", "Hello")
    assert code == 0
    assert [(f.path, f.size, f.md5) for f in files] == [
        ("Test.Hello_cli_1.tgz", len(DATA), hashlib.md5(DATA).hexdigest())
    ]
    stored = store.root / "tars.upload" / "Test" / "Hello" / "Test.Hello_cli_1.tgz"
    assert stored.read_bytes() == DATA


async def test_the_same_file_again_is_answered_1_at_once(store: Store) -> None:
    assert await store.upload("a.tgz", DATA) == 0
    assert await store.upload("a.tgz", DATA) == 1  # first chunk: already stored
    other = os.urandom(1000)
    assert await store.upload("a.tgz", other) == 0  # same name, new content: replaced
    assert (store.root / "tars.upload/Test/Hello/a.tgz").read_bytes() == other


async def test_an_md5_mismatch_is_3_and_keeps_nothing(store: Store) -> None:
    assert await store.upload("a.tgz", DATA, md5="0" * 32) == -3
    code, files = await store.ext.listUploads("Test", "Hello")
    assert (code, files) == (0, [])
    assert not [p for p in (store.root / "tars.upload/Test/Hello").iterdir()]


async def test_a_half_uploaded_file_is_neither_listed_nor_downloadable(store: Store) -> None:
    md5 = hashlib.md5(DATA).hexdigest()
    first = Patch.FileContent(md5=md5, name="half.tgz", firstChunk=True, content=DATA[:1000])
    assert await store.patch.upload("Test", "Hello", first) == 0
    assert await store.ext.listUploads("Test", "Hello") == (0, [])
    code, _ = await store.patch.preparePatchFile("Test", "Hello", "half.tgz")
    assert code == PatchCode.NOT_FOUND
    # a chunk after the first with no upload in progress is refused
    stray = Patch.FileContent(md5=md5, name="other.tgz", content=b"x")
    assert await store.patch.upload("Test", "Hello", stray) == PatchCode.NOT_STARTED


async def test_prepare_then_list_and_download_in_chunks_to_the_end(store: Store) -> None:
    assert await store.upload("Test.Hello_cli_2.tgz", DATA) == 0
    code, staged = await store.patch.preparePatchFile("Test", "Hello", "Test.Hello_cli_2.tgz")
    assert (code, staged) == (0, "/TARSBatchPatching/Test/Hello/Test.Hello.tgz")
    assert staged == staged_path("Test", "Hello")

    code, files = await store.patch.listFileInfo(staged)
    assert code == 1  # a file
    assert [(f.path, f.size, f.md5) for f in files] == [
        ("Test.Hello.tgz", len(DATA), hashlib.md5(DATA).hexdigest())
    ]
    code, files = await store.patch.listFileInfo("/TARSBatchPatching")
    assert code == 0  # a directory, listed recursively, hidden sidecars left out
    assert [f.path for f in files] == ["Test/Hello/Test.Hello.tgz"]

    assert await store.download(staged) == DATA
    code, data = await store.patch.download(staged, 10 * len(DATA))
    assert (code, data) == (1, b"")


async def test_a_damaged_upload_is_not_staged(store: Store) -> None:
    assert await store.upload("a.tgz", DATA) == 0
    stored = store.root / "tars.upload/Test/Hello/a.tgz"
    stored.write_bytes(DATA[:-1] + b"!")  # bit rot after the upload
    code, result = await store.patch.preparePatchFile("Test", "Hello", "a.tgz")
    assert code == PatchCode.MD5_MISMATCH and "damaged" in result
    assert await store.patch.listFileInfo("/TARSBatchPatching/Test/Hello") == (0, [])
    assert (await store.patch.listFileInfo(staged_path("Test", "Hello")))[0] == -2


async def test_delete_removes_the_upload(store: Store) -> None:
    assert await store.upload("a.tgz", DATA) == 0
    assert await store.patch.deletePatchFile("Test", "Hello", "a.tgz") == 0
    assert await store.ext.listUploads("Test", "Hello") == (0, [])
    assert await store.patch.deletePatchFile("Test", "Hello", "a.tgz") == 0  # gone already
    assert await store.upload("a.tgz", DATA) == 0  # and may come again


HOSTILE_NAMES = ["../x.tgz", "/etc/passwd", "a/b.tgz", ".hidden", "x\0.tgz", "", "x" * 300, ".."]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_file_names_are_refused(store: Store, name: str) -> None:
    content = Patch.FileContent(
        md5=hashlib.md5(b"x").hexdigest(), name=name, firstChunk=True, lastChunk=True, content=b"x"
    )
    assert await store.patch.upload("Test", "Hello", content) == PatchCode.INVALID
    assert (await store.patch.preparePatchFile("Test", "Hello", name))[0] == PatchCode.INVALID
    assert await store.patch.deletePatchFile("Test", "Hello", name) == PatchCode.INVALID
    assert not (store.root.parent / "x.tgz").exists()


@pytest.mark.parametrize(("app", "server"), [("..", "Hello"), ("Test", "a/b"), ("", "x")])
async def test_hostile_app_and_server_names_are_refused(
    store: Store, app: str, server: str
) -> None:
    content = Patch.FileContent(
        md5=hashlib.md5(b"x").hexdigest(), name="a.tgz", firstChunk=True, lastChunk=True
    )
    assert await store.patch.upload(app, server, content) == PatchCode.INVALID
    assert (await store.ext.listUploads(app, server))[0] == PatchCode.INVALID


@pytest.mark.parametrize(
    "path", ["../tars.upload", "/TARSBatchPatching/../../x", "/a\0b", "/.x.md5", "x" * 2000]
)
async def test_reads_stay_inside_the_store(store: Store, path: str) -> None:
    assert (await store.patch.listFileInfo(path))[0] == PatchCode.INVALID
    assert (await store.patch.download(path, 0))[0] == PatchCode.INVALID


async def test_a_symlink_out_of_the_store_is_not_followed(store: Store, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("secret")
    (store.root / "tars" / "link").symlink_to(secret)
    (store.root / "tars" / "dir").symlink_to(tmp_path)
    assert (await store.patch.download("/link", 0))[0] == PatchCode.INVALID
    assert (await store.patch.listFileInfo("/dir"))[0] == PatchCode.INVALID
    code, files = await store.patch.listFileInfo("/")
    assert code == 0 and files == []  # the links are not listed


async def test_a_negative_position_is_refused(store: Store) -> None:
    assert await store.upload("a.tgz", DATA) == 0
    await store.patch.preparePatchFile("Test", "Hello", "a.tgz")
    assert (await store.patch.download(staged_path("Test", "Hello"), -1))[0] == -1


async def test_size_caps_and_the_disk_reserve(tmp_path: Path) -> None:
    settings = PatchSettings.under(tmp_path / "p", max_chunk=1000, max_file_size=5000)
    settings_full = PatchSettings.under(tmp_path / "q", disk_reserve=2**62)
    async for s in _serve(settings):
        assert await s.upload("a.tgz", os.urandom(2000), chunk=2000) == PatchCode.TOO_BIG
        assert await s.upload("a.tgz", os.urandom(6000), chunk=1000) == PatchCode.TOO_BIG
        assert await s.ext.listUploads("Test", "Hello") == (0, [])
        assert await s.upload("a.tgz", os.urandom(5000), chunk=1000) == 0
    async for s in _serve(settings_full):
        assert await s.upload("a.tgz", b"x") == PatchCode.NO_SPACE
        assert await s.ext.listUploads("Test", "Hello") == (0, [])


async def test_many_transfers_at_once(store: Store) -> None:
    blobs = {f"f{i}.tgz": os.urandom(300_000) for i in range(8)}
    codes = await asyncio.gather(*(store.upload(n, b, chunk=50_000) for n, b in blobs.items()))
    assert codes == [0] * 8
    code, files = await store.ext.listUploads("Test", "Hello")
    assert code == 0
    assert {f.path: f.md5 for f in files} == {
        n: hashlib.md5(b).hexdigest() for n, b in blobs.items()
    }
    assert await store.patch.preparePatchFile("Test", "Hello", "f3.tgz") == (
        0,
        staged_path("Test", "Hello"),
    )
    got = await asyncio.gather(*(store.download(staged_path("Test", "Hello")) for _ in range(8)))
    assert got == [blobs["f3.tgz"]] * 8
