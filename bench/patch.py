"""The package store serving a node on loopback: ``tars.tarspatch.PatchObj`` as a process of
its own, a package uploaded in 1 MiB chunks and staged, then downloaded by the node's
downloader (``PatchObjSource``: chunk by chunk, written to disk, md5 checked), several times.

    .venv/bin/python bench/patch.py                 # 50 MB, 3 downloads
    .venv/bin/python bench/patch.py --size-mb 10 --runs 1

Prints MB/s of the upload and of each download (goal: downloads at >= 200 MB/s). Results go
into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from tarsus.framework.node.download import PatchObjSource, batch_path
from tarsus.protocol.gen import Patch
from tarsus.rpc.communicator import Communicator
from tarsus.testing import free_port, patch_store_process

ROOT = Path(__file__).resolve().parents[1]
OBJ = "tars.tarspatch.PatchObj"


async def run(size_mb: int, runs: int, chunk: str) -> None:
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-patch-") as name:
        tmp = Path(name)
        port = free_port()
        obj = f"{OBJ}@tcp -h 127.0.0.1 -p {port}"
        proc = patch_store_process(tmp, port, chunk_size=chunk, disk_reserve="0")
        try:
            async with Communicator(cache_dir=None) as comm:
                patch = comm.string_to_proxy(Patch.PatchProxy, obj).with_options(timeout_ms=60000)
                deadline = time.monotonic() + 30
                while True:
                    try:
                        await patch.listFileInfo("/")
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)
                data = os.urandom(size_mb * 1024 * 1024)
                md5 = hashlib.md5(data).hexdigest()
                step = 1024 * 1024
                started = time.perf_counter()
                for i in range(0, len(data), step):
                    content = Patch.FileContent(
                        md5=md5,
                        name="bench.tgz",
                        firstChunk=i == 0,
                        lastChunk=i + step >= len(data),
                        content=data[i : i + step],
                    )
                    assert await patch.upload("Bench", "Big", content) == 0
                upload = time.perf_counter() - started
                code, _ = await patch.preparePatchFile("Bench", "Big", "bench.tgz")
                assert code == 0
                print(f"package: {size_mb} MB, download chunk {chunk}")
                print(f"upload (1 MiB chunks, md5 checked): {size_mb / upload:8.1f} MB/s")
                for n in range(runs):
                    download_dir = tmp / f"download{n}"
                    source = PatchObjSource(
                        comm, obj, md5=md5, download_dir=download_dir, disk_reserve=0
                    )
                    started = time.perf_counter()
                    got = await source.fetch(batch_path("Bench", "Big"), tmp / "work")
                    took = time.perf_counter() - started
                    assert got.stat().st_size == len(data)
                    print(f"download {n + 1} (to disk, md5 checked): {size_mb / took:8.1f} MB/s")
        finally:
            proc.terminate()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", default="1M", help="PatchObj's download chunk (size=)")
    args = parser.parse_args()
    asyncio.run(run(args.size_mb, args.runs, args.chunk))


if __name__ == "__main__":
    main()
