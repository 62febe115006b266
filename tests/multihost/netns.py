"""Several hosts on one machine: real network namespaces joined by a bridge (docs/testing.md).

Each :class:`Host` is a network namespace with its own loopback and one veth on a bridge in the
root namespace, addressed in the benchmarking range 198.18.<net>.0/24: a subnet no interface of
the machine has, picked and taken under a lock (:func:`_claim_subnet`), so networks of parallel
test workers and of other runs on the machine never share one. Processes run "on" a host
through ``ip netns exec``. Cutting a host off takes its veth down; killing a host kills every
process in its namespace. Everything is torn down at the end, even when the test fails.

Services the root namespace offers on 127.0.0.1 (MariaDB) are reachable from the hosts through
:meth:`Network.forward`, a small TCP relay listening on the bridge address.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"tsprobe{secrets.token_hex(2)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass
class Host:
    name: str
    netns: str
    veth: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def popen(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on this host, output appended to ``log``."""
        out = open(log, "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        out.close()
        self.processes.append(proc)
        return proc

    def run(self, argv: Sequence[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pids(self) -> list[int]:
        done = _ip("netns", "pids", self.netns, check=False)
        return [int(p) for p in done.stdout.split()]

    def cut(self) -> None:
        """Take the host off the network (its processes keep running)."""
        _ip("link", "set", self.veth, "down")

    def reconnect(self) -> None:
        _ip("link", "set", self.veth, "up")

    def kill(self) -> None:
        """The host dies: every process in it is killed at once."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


#: Held while a subnet is chosen and put on a bridge (by every process of the machine).
SUBNET_LOCK = Path(tempfile.gettempdir()) / "tarsus-netns-subnets.lock"
_IN_USE = re.compile(r"inet 198\.18\.(\d+)\.")


def _claim_subnet(bridge: str) -> int:
    """Put ``198.18.<net>.1/24`` on ``bridge`` for a ``<net>`` (1-250) no interface in the root
    namespace has yet, and return ``<net>``."""
    with open(SUBNET_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        taken = {int(n) for n in _IN_USE.findall(_ip("-4", "-o", "addr", "show").stdout)}
        free = [n for n in range(1, 251) if n not in taken]
        if not free:
            raise RuntimeError("every subnet 198.18.1-250.0/24 is in use on this machine")
        subnet = free[secrets.randbelow(len(free))]
        _ip("addr", "add", f"198.18.{subnet}.1/24", "dev", bridge)
        return subnet


class Network:
    """A bridge and the hosts on it. Use as a context manager."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.tag = tag
        self.bridge = f"tsb{tag}"
        self.subnet = 0  # chosen on entering
        self.gateway = ""
        self.hosts: dict[str, Host] = {}
        self._relays: list[asyncio.AbstractServer] = []

    def __enter__(self) -> Network:
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            self.subnet = _claim_subnet(self.bridge)
            self.gateway = f"198.18.{self.subnet}.1"
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            _ip("link", "del", self.bridge, check=False)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 10
        netns = f"ts{self.tag}{name}"
        veth = f"tv{self.tag}{index}"
        peer = f"tp{self.tag}{index}"
        address = f"198.18.{self.subnet}.{index}"
        _ip("netns", "add", netns)
        host = Host(name, netns, veth, address)
        self.hosts[name] = host
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", peer)
        _ip("-n", netns, "link", "set", peer, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        return host

    async def forward(self, port: int, target: tuple[str, int] = ("127.0.0.1", 0)) -> str:
        """Relay ``gateway:port`` to ``target`` (default 127.0.0.1:port) in the root namespace;
        returns the address hosts use."""
        host, tport = target
        tport = tport or port

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.open_connection(host, tport)
            except OSError:
                writer.close()
                return

            async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                try:
                    while data := await r.read(65536):
                        w.write(data)
                        await w.drain()
                except (OSError, asyncio.CancelledError):
                    pass
                finally:
                    w.close()

            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

        server = await asyncio.start_server(relay, self.gateway, port)
        self._relays.append(server)
        return self.gateway

    def close(self) -> None:
        for server in self._relays:
            server.close()
        for host in self.hosts.values():
            host.kill()
        for host in self.hosts.values():
            _ip("link", "del", host.veth, check=False)
            _ip("netns", "del", host.netns, check=False)
        _ip("link", "del", self.bridge, check=False)
