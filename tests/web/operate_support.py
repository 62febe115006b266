"""A whole platform for the operate pages' tests: the framework services (one process, SQLite)
and two node agents (``tarsus node`` processes named ``127.0.0.1`` and ``127.0.0.2``) on free
ports, and the console over the framework's store, all started once per test module.

``platform.login(uid)`` is an ``httpx.Client`` logged in (CSRF header set); users: ``admin``,
``op_other`` (operator of another application), ``dev_test`` (developer of Test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from tarsus.codec.constants import ADMIN_REG_OBJ, PATCH_OBJ
from tarsus.framework.admin import AdminSettings
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.ops.access import Actor
from tarsus.ops.platform import Platform
from tarsus.ops.users import create_user
from tarsus.package import open_package
from tarsus.testing import LoopThread, eventually_sync, framework_ports, free_ports
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "a-long-enough-password"
USERS = {"op_other": [("operator", "Other")], "dev_test": [("developer", "Test")]}
NODES = ("127.0.0.1", "127.0.0.2")


class OperatePlatform:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = LoopThread("operate-test")
        ports = framework_ports()
        self.hello_port, *node_ports = free_ports(1 + len(NODES))
        self.node_ports = dict(zip(NODES, node_ports, strict=True))
        self.admin_proxy = f"{ADMIN_REG_OBJ}@tcp -h 127.0.0.1 -p {ports.admin}"
        self.settings = AllInOneSettings(
            data_dir=root / "framework",
            ports=ports,
            run_node=False,
            admin=AdminSettings(patch_poll_interval=0.1, ready_poll_interval=0.2),
        )
        self.framework = AllInOne(self.settings)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.web: WebServer | None = None
        try:
            self.loop.run(self.framework.start())
            assert self.framework.store is not None
            self.store = self.framework.store
            for node in NODES:
                self._start_node(node)
            password_file = root / "admin-password"
            password_file.write_text(ADMIN_PASSWORD + "\n")
            web = WebSettings(
                data_dir=root / "framework",
                port=0,
                locator=self.settings.locator,
                admin=self.admin_proxy,
                patch=f"{PATCH_OBJ}@tcp -h 127.0.0.1 -p {ports.patch}",
                admin_password_file=password_file,
                rpc_timeout_ms=20000,
                poll_interval=0.2,
                publish_wait=120,
            )
            self.web = WebServer(web, store=self.store)
            self.loop.run(self.web.start())
            self.url = self.web.url
            self.loop.run(self._seed())
            self._wait_nodes()
            self.package = open_package(str(HELLO), root / "packages").archive
        except BaseException:
            self.close()
            raise

    def _start_node(self, node: str) -> None:
        log = open(self.root / f"node-{node}.log", "ab")  # noqa: SIM115 (the child keeps it)
        args = [
            *("--locator", self.settings.locator, "--data-dir", str(self.root / f"node-{node}")),
            *("--node-name", node, "--port", str(self.node_ports[node]), "--stop-services"),
        ]
        cmd = [sys.executable, "-m", "tarsus", "node", *args]
        self.procs.append(
            subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        )
        log.close()

    async def _seed(self) -> None:
        root = Actor.local("test")
        for uid, grants in USERS.items():
            await create_user(Platform(self.store), root, uid, PASSWORD, grants)

    def _wait_nodes(self) -> None:
        def connected() -> bool:
            channels = self.framework.channels
            return channels is not None and all(channels.connected(n) for n in NODES)

        eventually_sync(connected, f"nodes {NODES} connected", timeout=90)

    def run(self, aw: Any) -> Any:
        return self.loop.run(aw)

    def login(self, uid: str) -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=120)
        password = ADMIN_PASSWORD if uid == "admin" else PASSWORD
        r = c.post("/api/v1/session", json={"uid": uid, "password": password})
        assert r.status_code == 201, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        return c

    def token(self) -> str:
        with closing(self.login("admin")) as c:
            r = c.post("/api/v1/tokens", json={"name": "publish", "scopes": "*"})
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

    def node_log(self, node: str) -> str:
        path = self.root / f"node-{node}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        try:
            if self.web is not None:
                self.loop.run(self.web.stop())
            self.loop.run(self.framework.stop())
        finally:
            self.loop.close()
