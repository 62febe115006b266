"""A framework with several node agents, run as an operator runs them: the registry and the
admin registry (over SQLite) in a thread of the test, the package store
(``tars.tarspatch.PatchObj``) and each node agent (``tarsus node``, named ``127.0.0.<i>``: every
127.0.0.0/8 address is this machine's loopback) in processes of their own, on free ports, with
data directories that outlive a process; and the ``tarsus`` command run as a user types it, one
short-lived process per command.

A node agent can be killed (SIGKILL) and started again on its data directory, as a machine
that crashed and came back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tarsus.framework.admin import AdminSettings
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.testing import (
    LoopThread,
    eventually_sync,
    framework_ports,
    free_ports,
    patch_store_process,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"
SERVER = "Test.HelloServer"
#: what a publish downloads, in a node's data directory (tarsus/framework/node/download.py)
DOWNLOAD = Path("data/tmp/download/BatchPatchingLoad/Test.HelloServer")


class Cluster:
    """Start with the constructor, end with :meth:`close` (or ``with``)."""

    def __init__(
        self,
        root: Path,
        n_nodes: int,
        *,
        chunk_size: str = "1M",
        node_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        #: given to every ``tarsus node`` started (``--container-engine URL``...)
        self.node_args = node_args
        #: on top of this process's environment, for the node agents and the commands
        self.extra_env = dict(env or {})
        fw_ports = framework_ports()
        admin = fw_ports.admin
        self.patch_port, self.hello_port, *node_ports = free_ports(2 + n_nodes)
        self.nodes = [f"127.0.0.{i}" for i in range(1, n_nodes + 1)]
        self.node_ports = dict(zip(self.nodes, node_ports, strict=True))
        self.admin = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p {admin}"
        self.patch = f"tars.tarspatch.PatchObj@tcp -h 127.0.0.1 -p {self.patch_port} -t 60000"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.settings = AllInOneSettings(
            data_dir=root / "framework",
            ports=fw_ports,
            run_node=False,
            admin=AdminSettings(
                patch_obj=self.patch, patch_poll_interval=0.1, ready_poll_interval=0.2
            ),
        )
        self.loop = LoopThread("tarsus-cluster")
        self.framework = AllInOne(self.settings)
        try:
            # the store of its own, with small download chunks: a big package takes a
            # while to download, long enough to kill a node in the middle of it
            (root / "store").mkdir(parents=True, exist_ok=True)
            self.store = patch_store_process(
                root / "store", self.patch_port, chunk_size=chunk_size, disk_reserve="0"
            )
            self.loop.run(self.framework.start())
            for node in self.nodes:
                self.start_node(node)
            self.wait_connected(self.nodes)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ processes
    def node_dir(self, node: str) -> Path:
        return self.root / f"node-{node}"

    def start_node(self, node: str, *extra: str) -> None:
        """``tarsus node`` named ``node`` on its data directory (again after a kill)."""
        log = open(self.root / f"node-{node}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.procs[node] = subprocess.Popen(
            [sys.executable, "-m", "tarsus", "node", "--locator", self.settings.locator,
             "--data-dir", str(self.node_dir(node)), "--node-name", node,
             "--port", str(self.node_ports[node]), "--stop-services", *self.node_args, *extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
            env={**os.environ, **self.extra_env},
        )  # fmt: skip
        log.close()

    def kill_node(self, node: str) -> None:
        """SIGKILL the node agent (its services keep running, as on a crash)."""
        proc = self.procs[node]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_node(self, node: str) -> None:
        proc = self.procs[node]
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def wait_connected(self, nodes: list[str]) -> None:
        def connected() -> bool:
            listed = self.ok("node", "list")["nodes"]
            return set(nodes) <= {n["name"] for n in listed if n["connected"]}

        eventually_sync(connected, f"nodes {nodes} connected", timeout=60)

    def node_log(self, node: str) -> str:
        return (self.root / f"node-{node}.log").read_text(errors="replace")

    def close(self) -> None:
        for node in list(self.procs):
            if self.procs[node].poll() is None:
                self.stop_node(node)
        try:
            self.loop.run(self.framework.stop())
        finally:
            self.loop.close()
            if getattr(self, "store", None) is not None:
                self.store.terminate()
                self.store.wait(timeout=30)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the command
    def tarsus(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``tarsus ARGS --admin ADMIN`` (and ``--patch STORE`` where it uploads)."""
        return subprocess.run(
            [sys.executable, "-m", "tarsus", *args, *self.options(args)],
            capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=self.root,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tarsus", *args, *self.options(args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env(), cwd=self.root,
        )  # fmt: skip

    def options(self, args: tuple[str, ...]) -> list[str]:
        uploads = args[:2] in (("package", "upload"), ("server", "deploy"), ("server", "publish"))
        return ["--admin", self.admin, *(["--patch", self.patch] if uploads else [])]

    def env(self) -> dict[str, str]:
        skip = ("TARSUS_ADMIN", "TARSUS_LOCATOR", "TARSUS_PATCH")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env["TARSUS_CACHE_DIR"] = str(self.root / "cache")
        env.update(self.extra_env)
        return env

    def ok(self, *args: str, timeout: float = 180) -> Any:
        done = self.tarsus(*args, "--json", timeout=timeout)
        assert done.returncode == 0, f"tarsus {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return json.loads(done.stdout)

    # ------------------------------------------------------------------ the server
    def deploy(self, node: str, package: Path = EXAMPLE, *extra: str) -> None:
        self.ok(
            "server", "deploy", SERVER, "--node", node, "--servant",
            f"HelloObj={self.hello_port}", "--package", str(package), "--start", *extra,
        )  # fmt: skip

    def status(self, node: str) -> dict[str, Any]:
        status: dict[str, Any] = self.ok("server", "status", SERVER, "--node", node)
        return status

    def active(self, node: str) -> dict[str, Any]:
        """The server's status on ``node`` once it is Active with a pid."""
        found: dict[str, Any] = {}

        def active() -> bool:
            found.update(self.status(node))
            return str(found["present_state_in_node"]).lower() == "active" and found["pid"] > 0

        eventually_sync(active, f"{SERVER} active on {node}", timeout=60)
        return found


def wait_for_file(path: Path, min_size: int, timeout: float = 60) -> None:
    """Poll until ``path`` holds at least ``min_size`` bytes (a download under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path.stat().st_size >= min_size:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"{path} did not reach {min_size} bytes within {timeout:g} s")
