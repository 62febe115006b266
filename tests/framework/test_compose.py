"""containers/compose.yaml (docs/containers.md) brought up with podman-compose: MariaDB, the
framework and two node hosts, each in its container built by containers/build.py, on a network
of the test's own (a subnet of 198.18.0.0/15 picked per run); then Hello uploaded, deployed on
a node and started with the ``tarsus`` CLI against the composed framework, and ``tarsus call``
reaching it by name. Also checked: every container's HEALTHCHECK passes, nothing in them runs
as root, and the secured framework refuses the CLI without its keys.

The images are cached by content hash (built once; afterwards a run costs ``podman image
exists``); the compose project is brought up once for the module and taken down with its
volumes and network, even on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_support import EXAMPLE, ROOT
from container_support import Unavailable, build_image, containers_env, ensure_tools

from tarsus.testing import eventually_sync

pytestmark = pytest.mark.slow

COMPOSE = ROOT / "containers" / "compose.yaml"
SERVICES = ("mariadb", "framework", "node1", "node2")
SERVER = "Test.HelloServer"


@dataclass
class Composed:
    root: Path
    env: dict[str, str]
    argv: list[str]
    #: service -> container name
    containers: dict[str, str]
    #: service -> its address on the compose network
    addresses: dict[str, str]

    @property
    def locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h {self.addresses['framework']} -p 17890"

    def podman(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip

    def tarsus(self, *args: str, keys: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "TARSUS_CLIENT_KEYS": str(keys or self.root / "client.conf")}
        argv = [sys.executable, "-m", "tarsus", *args, "--locator", self.locator]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip


def _compose_command() -> list[str]:
    found = shutil.which("podman-compose", path=str(Path(sys.executable).parent)) or shutil.which(
        "podman-compose"
    )
    if found is None:
        raise Unavailable("podman-compose is missing (pip install podman-compose: the dev extra)")
    return [found]


def _free_subnet() -> str:
    """``198.18.N.0/24`` (N random) not routed here yet (other tests pick theirs the same way)."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    while True:
        subnet = f"198.18.{1 + secrets.randbelow(250)}.0/24"
        if subnet not in routes:
            return subnet


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Composed]:
    root = tmp_path_factory.mktemp("compose")
    try:
        if os.geteuid() != 0:
            raise Unavailable("the compose test runs podman as root (its network is routed here)")
        ensure_tools()
        compose = _compose_command()
        env = containers_env(root)
        images = {
            f"TARSUS_{name.upper()}_IMAGE": build_image(name, env)
            for name in ("framework", "node", "mariadb")
        }
    except Unavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"containers must run in CI: {e}")
        pytest.skip(str(e))
    project = f"tarsus{secrets.token_hex(3)}"
    override = root / "network.yaml"
    override.write_text(
        f"networks:\n  default:\n    ipam:\n      config:\n        - subnet: {_free_subnet()}\n"
    )
    env = {
        **env,
        **images,
        "TARSUS_DB_ROOT_PASSWORD": secrets.token_hex(12),
        "TARSUS_JOIN_TOKEN": secrets.token_urlsafe(32),
    }
    argv = [*compose, "-p", project, "-f", str(COMPOSE), "-f", str(override)]
    try:
        up = subprocess.run([*argv, "up", "-d"], env=env, capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        listed = subprocess.run(
            ["podman", "ps", "--format", "json",
             f"--filter=label=io.podman.compose.project={project}"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        containers = {
            c["Labels"]["com.docker.compose.service"]: c["Names"][0]
            for c in json.loads(listed.stdout or "[]")
        }
        assert set(containers) == set(SERVICES), containers
        addresses = {}
        for service, name in containers.items():
            got = subprocess.run(
                ["podman", "inspect", name, "--format",
                 "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            addresses[service] = got.stdout.strip()
        yield Composed(root, env, argv, containers, addresses)
    finally:
        logs = subprocess.run([*argv, "logs"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        (root / "compose.log").write_text(logs.stdout + logs.stderr)
        subprocess.run([*argv, "down", "-v", "-t", "0"], env=env, capture_output=True,
                       timeout=300, check=False)  # fmt: skip


def test_compose_brings_up_a_platform_that_serves_hello(composed: Composed) -> None:
    framework = composed.containers["framework"]

    # The framework installs itself over MariaDB, then is secured (it listens beyond
    # loopback): the CLI operates it with its client.conf, and not without.
    def keys() -> bool:
        got = composed.podman("exec", framework, "cat", "/etc/tarsus/client.conf")
        if got.returncode == 0 and "accesskey" in got.stdout:
            (composed.root / "client.conf").write_text(got.stdout)
            return True
        return False

    eventually_sync(keys, "the framework's client.conf", timeout=240)
    nodes = {composed.addresses["node1"], composed.addresses["node2"]}

    def connected() -> bool:
        listed = composed.tarsus("node", "list", "--json")
        found = json.loads(listed.stdout or "{}").get("nodes", [])
        return nodes <= {n["name"] for n in found if n["connected"]}

    eventually_sync(connected, "both composed nodes connected", timeout=240)
    nokeys = composed.root / "nokeys.conf"
    nokeys.write_text("<tars>\n</tars>\n")
    refused = composed.tarsus("node", "list", keys=nokeys)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr

    # Every container healthy by its own HEALTHCHECK, and nothing in them runs as root.
    for service, name in composed.containers.items():
        eventually_sync(
            lambda name=name: composed.podman("healthcheck", "run", name).returncode == 0,
            f"{service}'s health check",
            timeout=120,
        )
        users = composed.podman("top", name, "user").stdout.split()[1:]
        assert users and "root" not in users, (service, users)

    # Hello uploaded, deployed on node1, published and started through the composed framework.
    tgz = composed.root / "hello.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name in ("tarsus.toml", "server.py", "Hello.tars"):
            tar.add(EXAMPLE / name, arcname=name)
    done = composed.tarsus("package", "upload", SERVER, str(tgz), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    version = str(json.loads(done.stdout)["id"])
    node = composed.addresses["node1"]
    for argv in (
        ("server", "deploy", SERVER, "--node", node, "--servant", "HelloObj=18601"),
        ("server", "publish", SERVER, "--version", version, "--all", "--no-restart"),
        ("server", "start", SERVER, "--node", node),
    ):
        done = composed.tarsus(*argv)
        assert done.returncode == 0, done.stdout + done.stderr

    def answers() -> bool:
        done = composed.tarsus(
            "call", "--idl", str(EXAMPLE / "Hello.tars"), f"{SERVER}.HelloObj", "sayHello",
            '{"name":"compose"}',
        )  # fmt: skip
        return done.returncode == 0 and "hello compose" in done.stdout

    eventually_sync(answers, "Hello answering tarsus call by name", timeout=120)
    # it runs inside node1's container, as the node's unprivileged user
    procs = composed.podman("top", composed.containers["node1"], "user", "args").stdout
    assert "HelloServer" in procs or "server.py" in procs, procs
