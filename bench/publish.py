"""Publishing a big package to many node agents through the package store, end to end.

Issue 10's number: "publish a 50 MB package to 20 nodes: must <= 60 s end to end with parallel
batches, goal <= 20 s". This bench runs, on one machine:

1. the framework (registry, admin registry and package store over SQLite: what ``tarsus up
   --no-node`` runs) in this process, on free ports;
2. ``--nodes`` node agents (default 20), each a ``tarsus node`` process of its own named
   ``127.0.0.<i>`` and listening there (every 127.0.0.0/8 address is this machine's loopback);
3. examples/hello deployed and started on each (not timed);
4. timed, as an operator types it: ``tarsus server publish Test.HelloServer --package DIR --all
   --batch K`` where DIR is examples/hello plus ``--size-mb`` of random bytes (they do not
   compress: the ``.tgz`` is that big). The CLI packs DIR, uploads it to the package store in
   1 MiB chunks, has the admin registry record it, and runs one publish task: every node
   downloads the package from the store, checks its md5, unpacks and installs it, and restarts
   the server.

Prints the time of the whole command, how long the upload and the task took, and whether every
node now runs the new package (its ``getServerState`` Active, its version the new patch id).

    .venv/bin/python bench/publish.py                       # 20 nodes, 50 MB, batches of 20
    .venv/bin/python bench/publish.py --nodes 4 --size-mb 10 --batch 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.protocol.gen import AdminReg
from tarsus.rpc.communicator import Communicator
from tarsus.testing import framework_ports, free_ports

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVER = "Test.HelloServer"


class BenchError(Exception):
    pass


def cli(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        [PY, "-m", "tarsus", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if proc.returncode != 0:
        raise BenchError(f"tarsus {' '.join(args)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


async def wait_nodes(admin_proxy: str, nodes: list[str]) -> None:
    deadline = time.monotonic() + 120
    while True:
        listed = json.loads(
            await asyncio.to_thread(cli, "node", "list", "--admin", admin_proxy, "--json")
        )
        connected = {n["name"] for n in listed["nodes"] if n["connected"]}
        if set(nodes) <= connected:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"nodes not connected after 120 s: {sorted(set(nodes) - connected)}")
        await asyncio.sleep(0.5)


async def states(admin: Any, nodes: list[str]) -> dict[str, tuple[str, int]]:
    out = {}
    for node in nodes:
        ret, desc, _ = await admin.getServerState("Test", "HelloServer", node)
        out[node] = (desc.presentStateInNode if ret == 0 else f"ret {ret}", int(desc.processId))
    return out


async def wait_active(admin: Any, nodes: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = await states(admin, nodes)
        if all(state == "Active" and pid for state, pid in now.values()):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"instances not Active: {now}")
        await asyncio.sleep(0.5)


def package_dir(tmp: Path, size_mb: int) -> Path:
    """examples/hello with ``size_mb`` MiB of random bytes beside its code."""
    out = tmp / "hello-big"
    shutil.copytree(ROOT / "examples" / "hello", out, ignore=shutil.ignore_patterns("__pycache__"))
    with open(out / "payload.bin", "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    return out


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    n = args.nodes
    query, registry, admin_port, patch_port, hello_port, *node_ports = free_ports(5 + n)
    settings = AllInOneSettings(
        data_dir=tmp / "framework",
        host="127.0.0.1",
        ports=framework_ports(query=query, registry=registry, admin=admin_port, patch=patch_port),
        run_node=False,
    )
    nodes = [f"127.0.0.{i}" for i in range(1, n + 1)]
    admin_proxy = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p {admin_port}"
    patch_proxy = f"tars.tarspatch.PatchObj@tcp -h 127.0.0.1 -p {patch_port}"
    children: list[subprocess.Popen[bytes]] = []
    async with AllInOne(settings):
        try:
            for node, port in zip(nodes, node_ports, strict=True):
                log = open(tmp / f"node-{node}.log", "wb")  # noqa: SIM115 (the child keeps it)
                children.append(
                    subprocess.Popen(
                        [PY, "-m", "tarsus", "node", "--locator", settings.locator,
                         "--data-dir", str(tmp / f"node-{node}"), "--node-name", node,
                         "--port", str(port), "--stop-services"],
                        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                    )
                )  # fmt: skip
            await wait_nodes(admin_proxy, nodes)
            note = f"{n} node agents connected; deploying {SERVER} on each (not timed)"
            print(note, file=sys.stderr)
            for node in nodes:
                await asyncio.to_thread(
                    cli, "server", "deploy", SERVER, "--node", node,
                    "--servant", f"HelloObj={hello_port}", "--package",
                    str(ROOT / "examples" / "hello"), "--start", "--admin", admin_proxy,
                    "--patch", patch_proxy, "--user", "bench",
                )  # fmt: skip
            async with Communicator(cache_dir=None, timeout_ms=10000) as comm:
                admin = comm.string_to_proxy(AdminReg.AdminRegProxy, admin_proxy)
                await wait_active(admin, nodes)
                before = await states(admin, nodes)
                package = await asyncio.to_thread(package_dir, tmp, args.size_mb)
                print(
                    f"publishing {args.size_mb} MiB to {n} nodes in batches of {args.batch}",
                    file=sys.stderr,
                )
                started = time.monotonic()
                out = await asyncio.to_thread(
                    cli, "server", "publish", SERVER, "--package", str(package), "--all",
                    "--batch", str(args.batch), "--admin", admin_proxy, "--patch", patch_proxy,
                    "--user", "bench", "--json",
                )  # fmt: skip
                took = time.monotonic() - started
                doc = json.loads(out)
                items = [item for task in doc["tasks"] for item in task["items"]]
                await wait_active(admin, nodes)
                after = await states(admin, nodes)
                restarted = [x for x in nodes if after[x][1] != before[x][1]]
                return {
                    "nodes": n,
                    "size_mb": args.size_mb,
                    "package_bytes": doc["uploaded"]["size"],
                    "batch": args.batch,
                    "publish_s": round(took, 1),
                    "items_done": sum(item["status"] == "done" for item in items),
                    "restarted": len(restarted),
                    "failed": [item for item in items if item["status"] != "done"],
                }
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--size-mb", type=int, default=50)
    ap.add_argument("--batch", type=int, default=20, help="nodes at a time")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="tarsus-publish-") as tmp:
        try:
            result = asyncio.run(bench(args, Path(tmp)))
        except BenchError as e:
            print(f"bench failed: {e}", file=sys.stderr)
            for log in sorted(Path(tmp).glob("node-*.log"))[:3]:
                with contextlib.suppress(OSError):
                    print(f"--- {log.name}\n{log.read_text()[-1500:]}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"published a {result['package_bytes'] / 2**20:.1f} MiB package to "
            f"{result['nodes']} nodes in batches of {result['batch']}: "
            f"{result['publish_s']} s end to end (pack, upload, task); "
            f"{result['items_done']} task items done, {result['restarted']} of "
            f"{result['nodes']} instances restarted on the new package"
        )
        for item in result["failed"]:
            print(f"    {item['node']}: {item['status']}: {item['log']}")
    return 0 if result["restarted"] == result["items_done"] == result["nodes"] else 1


if __name__ == "__main__":
    sys.exit(main())
