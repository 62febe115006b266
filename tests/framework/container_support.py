"""A container engine of the test's own: podman's Docker-compatible API service on a socket
in the test's directory (``podman --runtime runc system service``), with the Python runtime
image (containers/build.py, cached by content hash) built on first use.

podman, runc and debootstrap come from Debian (``apt-get install podman runc debootstrap``):
installed here when missing and running as root under CI (``CI=true``); elsewhere their
absence is :class:`Unavailable` (the test skips, saying so). Rootless runs are not covered:
the node runs its containers in the host's process namespace, as root does here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}


class Unavailable(Exception):
    """podman cannot run here; the message says why."""


#: images built in this session (containers/build.py NAME -> tag): each is built once
_BUILT: dict[str, str] = {}


def containers_env(root: Path) -> dict[str, str]:
    """This process's environment with a ``containers.conf`` of the test's own: rlimits left as
    they are (raising them is refused in some sandboxes, this machine's) and runc as the
    runtime (crun fails here), for podman and for what runs it (podman-compose)."""
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits=[]\n[engine]\nruntime="runc"\n')
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def build_image(name: str, env: dict[str, str]) -> str:
    """``containers/build.py NAME``'s tag (cached by content hash; once per session here)."""
    if name not in _BUILT:
        built = subprocess.run(
            [sys.executable, str(ROOT / "containers" / "build.py"), name],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if built.returncode != 0:
            raise Unavailable(f"building the {name} image failed:\n{built.stderr[-3000:]}")
        _BUILT[name] = built.stdout.strip().splitlines()[-1]
    return _BUILT[name]


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.environ.get("CI") == "true" and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        return
    raise Unavailable(f"{', '.join(missing)} missing (apt-get install {' '.join(missing)})")


class Podman:
    """Start with the constructor; :meth:`stop` and :meth:`start` the API service (a
    container engine that goes away and comes back); :meth:`close` at the end."""

    def __init__(self, root: Path) -> None:
        if os.geteuid() != 0:
            raise Unavailable("the container tests run as root (host process namespace)")
        ensure_tools()
        self.root = root
        self.env = containers_env(root)
        self.image = build_image("python", self.env)
        self.socket = root / "podman.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.root / "podman-service.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            ["podman", "--runtime", "runc", "system", "service", "--time", "0", self.url],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while not self.answers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise Unavailable(f"podman's API service did not come up on {self.url}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"200 OK" in s.recv(256)
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the API service (SIGTERM, as an engine restart would); containers run on."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", "--runtime", "runc", *args], env=self.env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    def running(self, **labels: str) -> list[dict[str, Any]]:
        """The running containers with these labels (``podman ps``)."""
        filters = [f"--filter=label={k}={v}" for k, v in labels.items()]
        done = self.cli("ps", "--format", "json", *filters)
        assert done.returncode == 0, done.stderr
        found: list[dict[str, Any]] = json.loads(done.stdout or "[]")
        return found

    def remove(self, **labels: str) -> None:
        for container in self.running(**labels):
            self.cli("rm", "--force", "--time", "0", container["Id"])

    def close(self) -> None:
        self.stop()
