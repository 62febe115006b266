"""The package store serving a node on loopback: ``tars.tarspatch.PatchObj`` as a process of
its own, a package uploaded in 1 MiB chunks and staged, then downloaded by the node's
downloader (``PatchObjSource``: chunks in flight, written to disk, md5 checked), several times
for each window (chunk requests in flight; 1 is how upstream's tarsnode asks).

    .venv/bin/python bench/patch.py                 # 50 MB, 3 downloads, windows 1 and 4
    .venv/bin/python bench/patch.py --size-mb 10 --runs 1 --window 4

Prints MB/s of the upload and of each download (goal: downloads at >= 200 MB/s), and the CPU
seconds per 100 MB each side spent (the store; the downloading process with its threads),
which a busy machine disturbs less than MB/s. Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from tarsus.framework.node.download import PatchObjSource, batch_path
from tarsus.protocol.gen import Patch
from tarsus.rpc.communicator import Communicator
from tarsus.testing import free_port, patch_store_process

ROOT = Path(__file__).resolve().parents[1]
OBJ = "tars.tarspatch.PatchObj"


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def run(size_mb: int, runs: int, chunk: str, windows: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-patch-") as name:
        tmp = Path(name)
        port = free_port()
        obj = f"{OBJ}@tcp -h 127.0.0.1 -p {port}"
        proc = patch_store_process(tmp, port, chunk_size=chunk, disk_reserve="0")
        store, me = psutil.Process(proc.pid), psutil.Process()
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
                cpu = cpu_seconds(store), cpu_seconds(me)
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
                used = cpu_seconds(store) - cpu[0], cpu_seconds(me) - cpu[1]
                code, _ = await patch.preparePatchFile("Bench", "Big", "bench.tgz")
                assert code == 0
                print(f"package: {size_mb} MB, download chunk {chunk}")
                print(
                    f"upload (1 MiB chunks, md5 checked): {size_mb / upload:8.1f} MB/s"
                    f"{per_100mb(used, size_mb)}"
                )
                for window in windows:
                    for n in range(runs):
                        download_dir = tmp / f"download-{window}-{n}"
                        source = PatchObjSource(
                            comm,
                            obj,
                            md5=md5,
                            download_dir=download_dir,
                            disk_reserve=0,
                            window=window,
                        )
                        started = time.perf_counter()
                        cpu = cpu_seconds(store), cpu_seconds(me)
                        got = await source.fetch(batch_path("Bench", "Big"), tmp / "work")
                        took = time.perf_counter() - started
                        used = cpu_seconds(store) - cpu[0], cpu_seconds(me) - cpu[1]
                        assert got.stat().st_size == len(data)
                        print(
                            f"download {n + 1}, window {window} (to disk, md5 checked): "
                            f"{size_mb / took:8.1f} MB/s{per_100mb(used, size_mb)}"
                        )
                        shutil.rmtree(download_dir)
        finally:
            proc.terminate()
            proc.wait()


def per_100mb(used: tuple[float, float], size_mb: int) -> str:
    store, client = (u * 100 / size_mb for u in used)
    return f"   CPU s per 100 MB: store {store:.2f}, client {client:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", default="1M", help="PatchObj's download chunk (size=)")
    parser.add_argument(
        "--window",
        default="1,4",
        help="chunk requests in flight, comma-separated to compare (default 1,4)",
    )
    args = parser.parse_args()
    windows = [int(w) for w in args.window.split(",")]
    asyncio.run(run(args.size_mb, args.runs, args.chunk, windows))


if __name__ == "__main__":
    main()
