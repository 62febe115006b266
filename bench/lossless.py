"""Lossless restart under load: failed calls while every instance of a server is restarted.

Issue 10's number: "lossless restart of 4 instances under continuous calls: must 0 failed".
This bench runs, on one machine:

1. the framework (registry + admin registry over SQLite, what ``tarsus up --no-node`` runs) in
   this process, on free ports, with the registry reloading routes every second;
2. ``--instances`` node agents (default 4), each a ``tarsus node`` process of its own named
   ``127.0.0.<i>`` and listening there (every 127.0.0.0/8 address is this machine's loopback);
3. examples/hello deployed on each node as ``Test.HelloServer`` (one server, N instances),
   through the admin registry (``tarsus server deploy --package examples/hello --start``);
4. ``--workers`` callers (default 8) calling ``sayHello`` by name through the registry without
   pause, their endpoint list refreshed every ``--refresh`` s (default 1);
5. a lossless restart task (``addTaskReq`` with ``isElegant``, ``eachNum`` = ``--each``) of all
   instances; ``elegant_wait_second`` is ``--wait`` (default 3 s: the registry's 1 s reload +
   the callers' refresh + the longest call, docs/admin.md "Lossless publish and restart");
6. with ``--publish``, a lossless publish (``patch_tars``) of examples/hello packed as a
   ``.tgz``, from its local path, to all instances the same way;
7. with ``--contrast``, a plain parallel restart of all instances under the same load.

For each task: failed calls, calls made, its duration, and whether every instance runs with a
new pid. Exit status 1 when the lossless restart failed a call or left an old pid.

    .venv/bin/python bench/lossless.py                  # 4 instances, batches of 1
    .venv/bin/python bench/lossless.py --each 2 --publish --contrast
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tarsus.idl
from tarsus.framework.admin import AdminSettings
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.framework.registry import RegistrySettings
from tarsus.package import pack_directory
from tarsus.protocol.gen import AdminReg
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.locator import RefreshSchedule
from tarsus.testing import framework_ports, free_ports

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVER = "Test.HelloServer"
OBJ = f"{SERVER}.HelloObj"
Test = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test


class BenchError(Exception):
    pass


@dataclass
class Load:
    """Callers calling by name without pause; what they saw."""

    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def failure(self, text: str) -> None:
        self.failed += 1
        self.errors[text] = self.errors.get(text, 0) + 1


async def call_forever(proxy: Any, load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            ret, greeting = await proxy.sayHello("x")
            if ret == 0 and greeting.startswith("hello x"):
                load.ok += 1
            else:
                load.failure(f"ret={ret}")
        except Exception as e:
            load.failure(f"{type(e).__name__}: {str(e)[:80]}")
            await asyncio.sleep(0.01)


def cli(*args: str) -> str:
    proc = subprocess.run(
        [PY, "-m", "tarsus", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    if proc.returncode != 0:
        raise BenchError(f"tarsus {' '.join(args)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


async def pids(admin: Any, nodes: list[str]) -> dict[str, int]:
    out = {}
    for node in nodes:
        ret, desc, _ = await admin.getServerState("Test", "HelloServer", node)
        out[node] = int(desc.processId) if ret == 0 else 0
    return out


async def run_task(
    admin: Any, nodes: list[str], *, elegant: bool, each: int, package: Path | None
) -> float:
    """One restart task of every instance (with ``package``: a publish of it, ``patch_tars``);
    returns its duration. Raises if an item failed."""
    no = uuid.uuid4().hex
    command, params = ("patch_tars", {"filepath": str(package)}) if package else ("restart", {})
    items = [
        AdminReg.TaskItemReq(
            itemNo=uuid.uuid4().hex, application="Test", serverName="HelloServer",
            nodeName=node, command=command, userName="bench", parameters=dict(params),
        )
        for node in nodes
    ]  # fmt: skip
    req = AdminReg.TaskReq(
        taskItemReq=items, taskNo=no, serial=False, userName="bench",
        isElegant=elegant, eachNum=each,
    )  # fmt: skip
    t0 = time.monotonic()
    if await admin.addTaskReq(req) != 0:
        raise BenchError("addTaskReq refused the task")
    while True:
        ret, rsp = await admin.getTaskRsp(no)
        if ret == 0 and all(i.status in (3, 4, 5) for i in rsp.taskItemRsp):
            break
        await asyncio.sleep(0.2)
    took = time.monotonic() - t0
    bad = [(i.req.nodeName, i.statusInfo, i.executeLog) for i in rsp.taskItemRsp if i.status != 3]
    if bad:
        raise BenchError(f"task items failed: {bad}")
    return took


async def measure(
    admin: Any,
    callers: list[Any],
    nodes: list[str],
    *,
    elegant: bool,
    each: int,
    settle: float,
    package: Path | None = None,
) -> dict[str, Any]:
    before = await pids(admin, nodes)
    load = Load()
    stop = asyncio.Event()
    workers = [asyncio.create_task(call_forever(p, load, stop)) for p in callers]
    await asyncio.sleep(settle)
    took = await run_task(admin, nodes, elegant=elegant, each=each, package=package)
    await asyncio.sleep(settle)
    stop.set()
    await asyncio.gather(*workers)
    after = await pids(admin, nodes)
    what = "publish" if package else "restart"
    return {
        "mode": f"lossless {what}, batches of {each}" if elegant else f"plain parallel {what}",
        "failed": load.failed,
        "calls": load.ok + load.failed,
        "task_s": round(took, 1),
        "new_pids": all(after[n] and after[n] != before[n] for n in nodes),
        "errors": load.errors,
    }


async def bench(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    n = args.instances
    query, registry, admin_port, hello_port, patch, *node_ports = free_ports(5 + n)
    settings = AllInOneSettings(
        data_dir=tmp / "framework",
        host="127.0.0.1",
        ports=framework_ports(query=query, registry=registry, admin=admin_port, patch=patch),
        run_node=False,
        registry=RegistrySettings(load_interval=1.0),
        admin=AdminSettings(elegant_wait_second=args.wait, ready_poll_interval=0.2),
    )
    nodes = [f"127.0.0.{i}" for i in range(1, n + 1)]
    admin_proxy = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p {admin_port}"
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
            for node in nodes:
                await asyncio.to_thread(
                    cli, "server", "deploy", SERVER, "--node", node,
                    "--servant", f"HelloObj={hello_port}", "--package",
                    str(ROOT / "examples" / "hello"), "--start", "--admin", admin_proxy,
                    "--patch", f"tars.tarspatch.PatchObj@tcp -h 127.0.0.1 -p {patch}",
                    "--user", "bench",
                )  # fmt: skip
            schedule = RefreshSchedule(refresh_interval=args.refresh)
            async with (
                Communicator(cache_dir=None, timeout_ms=5000) as admin_comm,
                Communicator(
                    settings.locator, cache_dir=None, timeout_ms=3000, refresh_schedule=schedule
                ) as comm,
            ):
                admin = admin_comm.string_to_proxy(AdminReg.AdminRegProxy, admin_proxy)
                callers = [comm.string_to_proxy(Test.HelloProxy, OBJ) for _ in range(args.workers)]
                await wait_all_answer(admin, nodes)
                results = [
                    await measure(
                        admin, callers, nodes, elegant=True, each=args.each, settle=args.settle
                    )
                ]
                if args.publish:
                    package = pack_directory(ROOT / "examples" / "hello", tmp, "Test.HelloServer")
                    await wait_all_answer(admin, nodes)
                    results.append(
                        await measure(
                            admin, callers, nodes, elegant=True, each=args.each,
                            settle=args.settle, package=package,
                        )
                    )  # fmt: skip
                if args.contrast:
                    await wait_all_answer(admin, nodes)
                    await asyncio.sleep(args.wait)  # every caller routes to all of them again
                    results.append(
                        await measure(
                            admin, callers, nodes, elegant=False, each=1, settle=args.settle
                        )
                    )
                return results
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()


async def wait_nodes(admin_proxy: str, nodes: list[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        listed = json.loads(
            await asyncio.to_thread(cli, "node", "list", "--admin", admin_proxy, "--json")
        )
        connected = {n["name"] for n in listed["nodes"] if n["connected"]}
        if set(nodes) <= connected:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"nodes not connected after 60 s: {sorted(set(nodes) - connected)}")
        await asyncio.sleep(0.5)


async def wait_all_answer(admin: Any, nodes: list[str]) -> None:
    """Every instance Active with a pid (the admin registry's view)."""
    deadline = time.monotonic() + 60
    while True:
        states = [await admin.getServerState("Test", "HelloServer", n) for n in nodes]
        if all(r == 0 and d.presentStateInNode == "Active" for r, d, _ in states):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"instances not Active: {[d for _, d, _ in states]}")
        await asyncio.sleep(0.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--each", type=int, default=1, help="instances per lossless batch")
    ap.add_argument("--workers", type=int, default=8, help="concurrent callers")
    ap.add_argument("--wait", type=float, default=3.0, help="elegant_wait_second")
    ap.add_argument("--refresh", type=float, default=1.0, help="callers' refresh interval, s")
    ap.add_argument("--settle", type=float, default=1.0, help="load before and after, s")
    ap.add_argument("--publish", action="store_true", help="also a lossless publish")
    ap.add_argument("--contrast", action="store_true", help="also a plain restart")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="tarsus-lossless-") as tmp:
        try:
            results = asyncio.run(bench(args, Path(tmp)))
        except BenchError as e:
            print(f"bench failed: {e}", file=sys.stderr)
            for log in sorted(Path(tmp).glob("node-*.log")):
                with contextlib.suppress(OSError):
                    print(f"--- {log.name}\n{log.read_text()[-1500:]}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(results))
    else:
        print(
            f"{args.instances} instances of {SERVER}, {args.workers} callers by name, "
            f"elegant_wait_second {args.wait:g} s, caller refresh {args.refresh:g} s"
        )
        for r in results:
            print(
                f"{r['mode']}: {r['failed']} failed calls of {r['calls']}, task {r['task_s']} s, "
                f"every instance restarted (new pid): {'yes' if r['new_pids'] else 'NO'}"
            )
            for text, count in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:3]:
                print(f"    {count} x {text}")
    lossless = [r for r in results if r["mode"].startswith("lossless")]
    return 0 if all(r["failed"] == 0 and r["new_pids"] for r in lossless) else 1


if __name__ == "__main__":
    sys.exit(main())
