"""The platform across real hosts (network namespaces) with MariaDB as the store.

fw runs the framework in upstream's production layout (``tarsus up --processes --db
mysql://...``: a node agent, and under it the registry and the admin registry each as its own
process, ``tars.tarsregistry`` and ``tars.tarsAdminRegistry``); n1 and n2 each run a node
agent (``tarsus node --locator ...``) with Hello deployed on it (uploaded to fw's package
store, ``tars.tarspatch.PatchObj``, and published to both by version: they download it, no
shared path); client calls
``Test.HelloServer.HelloObj`` by name in a loop (caller.py), logging which node answered.

1. calls are balanced over both nodes;
2. n2 dies (every process on it killed) -> within 5 s no call fails any more, all go to n1;
3. fw is cut off the network -> Hello on n1 keeps running and the client keeps calling it
   from its cached routes; a Hello that crashes meanwhile is restarted by its node;
4. fw comes back -> the registry converges: n1's Hello present and active with its current
   pid, n2's routed around (inactive), no duplicate process anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from netns import Host, Network, unavailable_reason

from tarsus.store import StoreUnavailable, drop_database, open_store
from tarsus.testing import eventually

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
HELLO = "Test.HelloServer"
#: seconds without heartbeats before the registry routes around a node: above the nodes' 10 s
#: keepAlive period (below it, live nodes are swept between two beats)
NODE_TIMEOUT = 15

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def _calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def _hello_pids(host: Host) -> list[int]:
    found = []
    for pid in host.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"server.py") for part in cmdline):
            found.append(pid)
    return found


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    """A MariaDB database of this test's own, created (and migrated) as the framework would,
    dropped at the end."""
    name = f"tarsus_mh_{secrets.token_hex(4)}"
    url = f"mysql://root@127.0.0.1:3306/{name}"
    try:
        store = await open_store(url)
    except StoreUnavailable as e:
        if os.environ.get("TARSUS_SKIP_MARIADB") == "1":
            pytest.skip(f"MariaDB unavailable: {e}")
        pytest.fail(
            f"MariaDB at 127.0.0.1:3306 is needed ({e}); start it with "
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
        )
    await store.close()
    try:
        yield name
    finally:
        await drop_database(url)


async def _hello_states(db: str) -> dict[str, tuple[str, int]]:
    """node name -> (present_state, process_id) of Test.HelloServer, as the store has them."""
    store = await open_store(f"mysql://root@127.0.0.1:3306/{db}")
    try:
        rows = await store.servers.list(application="Test", server_name="HelloServer")
    finally:
        await store.close()
    return {r.node_name: (r.present_state, r.process_id) for r in rows}


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "tarsus", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


async def test_framework_nodes_and_clients_across_hosts(tmp_path: Path) -> None:
    async with _database() as db:
        with Network() as net:
            fw = net.add_host("fw")
            n1 = net.add_host("n1")
            n2 = net.add_host("n2")
            client = net.add_host("cl")
            gateway = await net.forward(3306)
            url = f"mysql://root@{gateway}:3306/{db}"
            locator = f"tars.tarsregistry.QueryObj@tcp -h {fw.address} -p 17890"
            admin = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h {fw.address} -p 12000"
            logs = tmp_path / "logs"
            logs.mkdir()

            fw.popen(
                [
                    PY, "-m", "tarsus", "up", "-v", "--processes", "--db", url,
                    "--host", fw.address, "--no-example", "--data-dir", str(tmp_path / "fw"),
                    "--node-timeout", str(NODE_TIMEOUT),
                ],
                log=logs / "fw.log",
                cwd=ROOT,
            )  # fmt: skip
            await eventually(
                lambda: "is up" in (logs / "fw.log").read_text(), "the framework", timeout=90
            )
            for node in (n1, n2):
                node.popen(
                    [
                        PY, "-m", "tarsus", "node", "--locator", locator,
                        "--node-name", node.address, "--data-dir", str(tmp_path / node.name),
                    ],
                    log=logs / f"{node.name}.log",
                    cwd=ROOT,
                )  # fmt: skip

            async def nodes_connected() -> bool:
                done = await asyncio.to_thread(_cli, "node", "list", "--json", "--admin", admin)
                if done.returncode != 0:
                    return False
                listed = json.loads(done.stdout)["nodes"]
                names = {n["name"] for n in listed if n.get("connected")}
                return {n1.address, n2.address} <= names

            await eventually(nodes_connected, "both nodes to connect", interval=0.5)
            # The package goes over the wire: uploaded to fw's package store, the file removed
            # here, then one publish task across both nodes, which download it from the store.
            tgz = tmp_path / "hello.tgz"
            with tarfile.open(tgz, "w:gz") as tar:
                for name in ("tarsus.toml", "server.py", "Hello.tars"):
                    tar.add(ROOT / "examples/hello" / name, arcname=name)
            done = await asyncio.to_thread(
                _cli, "package", "upload", HELLO, str(tgz), "--json", "--admin", admin
            )
            assert done.returncode == 0, done.stdout + done.stderr
            version = str(json.loads(done.stdout)["id"])
            tgz.unlink()
            for node in (n1, n2):
                done = await asyncio.to_thread(
                    _cli,
                    "server", "deploy", HELLO, "--node", node.address,
                    "--servant", "HelloObj=18601", "--admin", admin,
                )  # fmt: skip
                assert done.returncode == 0, done.stdout + done.stderr
            done = await asyncio.to_thread(
                _cli,
                "server", "publish", HELLO, "--version", version, "--all", "--parallel",
                "--no-restart", "--json", "--admin", admin,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            items = json.loads(done.stdout)["tasks"][0]["items"]
            assert sorted(i["node"] for i in items) == sorted((n1.address, n2.address))
            for node in (n1, n2):
                done = await asyncio.to_thread(
                    _cli, "server", "start", HELLO, "--node", node.address, "--admin", admin
                )
                assert done.returncode == 0, done.stdout + done.stderr

            calls = logs / "calls.jsonl"
            client.popen(
                [
                    PY, str(ROOT / "tests/multihost/caller.py"), locator, str(calls),
                    "--cache-dir", str(tmp_path / "client-cache"), "--refresh-ms", "5000",
                ],
                log=logs / "client.log",
                cwd=ROOT,
            )  # fmt: skip

            # 1. balanced over both nodes
            def both_answer() -> bool:
                hosts = {c["host"] for c in _calls(calls)[-40:] if c["ok"]}
                return {n1.address, n2.address} <= hosts

            await eventually(both_answer, "calls answered by both nodes", interval=0.2)

            # 2. n2 dies: callers stop using it within 5 s
            n2.kill()
            died = time.time()
            await asyncio.sleep(8)
            after = [c for c in _calls(calls) if c["t"] > died + 5]
            assert after, "the client stopped calling"
            assert all(c["ok"] and c["host"] == n1.address for c in after), [
                c for c in after if not c["ok"] or c["host"] != n1.address
            ][:5]

            # 3. the framework host is cut off: services run, clients call from their caches
            (pid_before,) = _hello_pids(n1)
            fw.cut()
            cut_at = time.time()
            try:
                os.kill(pid_before, signal.SIGKILL)  # a crash while the framework is away
                restarted = await eventually(
                    lambda: [p for p in _hello_pids(n1) if p != pid_before],
                    "n1's node to restart its crashed Hello",
                    timeout=30,
                    interval=0.2,
                )
                await asyncio.sleep(3)
                during = [c for c in _calls(calls) if c["t"] > cut_at + 2]
                assert during and during[-1]["ok"], during[-5:]
                assert sum(c["ok"] for c in during) >= len(during) * 0.8, during[-10:]
            finally:
                fw.reconnect()

            # 4. back: states converge, nothing duplicated
            (pid_now,) = restarted

            async def converged() -> bool:
                states = await _hello_states(db)
                return (
                    states.get(n1.address) == ("active", pid_now)
                    and states.get(n2.address, ("",))[0] == "inactive"
                )

            await eventually(
                converged,
                "the registry to converge",
                timeout=90,
                interval=1.0,
                ignoring=StoreUnavailable,
            )
            assert _hello_pids(n1) == [pid_now], "exactly one Hello on n1"
            final = [c for c in _calls(calls) if c["t"] > time.time() - 3]
            assert final and all(c["ok"] for c in final), final[-5:]
