"""Servers of run type ``container`` (docs/node.md, "Servers in containers"): Hello deployed
with ``tarsus server deploy --container IMAGE`` through the admin registry to a node agent
(``tarsus node --container-engine URL``) whose engine is podman's Docker-compatible API
service, with real containers from the runtime image containers/build.py builds.

One platform for every check (starting it and the image are the expensive part): started in
its container and answering by name; logs where the node keeps them; a crash (SIGKILL),
a hang (SIGSTOP: keepAlive stops) and an operator's stop/start handled as for a process; the
node agent killed and started again adopts the running container (same id, not restarted);
the engine's API service killed: the service keeps answering, a crash meanwhile is restarted
once the engine is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import EXAMPLE, SERVER, Cluster
from container_support import Podman, Unavailable

from tarsus.testing import eventually_sync

pytestmark = pytest.mark.slow

NODE = "127.0.0.1"
#: keepAlive every 200 ms, hung after 3 s without one (a short-lived template of the test)
TEMPLATE = """<tars>
  <application>
    <server>
      mainloopticker=200
      hearttimeout=3000
    </server>
  </application>
</tars>
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    try:
        engine = Podman(tmp_path_factory.mktemp("podman"))
    except Unavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"containers must run in CI: {e}")
        pytest.skip(str(e))
    try:
        yield engine
    finally:
        engine.close()


def _call(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tarsus", "call", "--locator", cluster.settings.locator,
         "--idl", str(EXAMPLE / "Hello.tars"), "Test.HelloServer.HelloObj", "sayHello",
         '{"name":"box"}'],
        capture_output=True, text=True, timeout=60, env=cluster.env(),
    )  # fmt: skip


def _answers(cluster: Cluster) -> None:
    def ok() -> bool:
        done = _call(cluster)
        return done.returncode == 0 and "hello box" in done.stdout

    eventually_sync(ok, "Hello answers tarsus call", timeout=60)


def test_hello_in_its_container(tmp_path: Path, podman: Podman) -> None:
    with Cluster(tmp_path, 1, node_args=("--container-engine", podman.url)) as cluster:
        # the node agent keeps its servers under <data-dir>/data (NodeSettings.data_dir)
        labels = {"io.tarsus.data-dir": str((cluster.node_dir(NODE) / "data").absolute())}
        try:
            _run_checks(cluster, podman, labels)
        finally:
            if podman.proc is None:
                podman.start()
            cluster.ok("server", "stop", SERVER, "--node", NODE)
            podman.remove(**labels)


def _container(podman: Podman, labels: dict[str, str]) -> dict[str, Any]:
    found = podman.running(**labels)
    assert len(found) == 1, found
    return found[0]


def _replaced(cluster: Cluster, old_pid: int) -> dict[str, Any]:
    """The server's status once it is Active again with a pid other than ``old_pid``."""
    found: dict[str, Any] = {}

    def again() -> bool:
        found.update(cluster.status(NODE))
        state = str(found["present_state_in_node"]).lower()
        return state == "active" and found["pid"] > 0 and found["pid"] != old_pid

    eventually_sync(again, f"{SERVER} active again, not pid {old_pid}", timeout=90)
    return found


def _run_checks(cluster: Cluster, podman: Podman, labels: dict[str, str]) -> None:
    template = cluster.root / "template.conf"
    template.write_text(TEMPLATE)
    cluster.ok("template", "set", "test.container", "--parent", "tars.tarspython.default",
               "--file", str(template))  # fmt: skip
    cluster.deploy(NODE, EXAMPLE, "--template", "test.container", "--container", podman.image)

    # started in its container, from the image, answering by name
    pid = cluster.active(NODE)["pid"]
    box = _container(podman, labels)
    assert box["Image"] == podman.image
    assert box["Labels"]["io.tarsus.server"] == SERVER
    assert box["Pid"] == pid, "the container's process is the one the node reports"
    _answers(cluster)
    # its logs are where the node keeps a process's: written from inside the container
    log_dir = cluster.node_dir(NODE) / "app_log" / "Test" / "HelloServer"
    eventually_sync(lambda: any(log_dir.glob("*.log")), "the server's logs in the node's log dir")

    # crash: the container's process killed -> a new container, answering
    os.kill(pid, signal.SIGKILL)
    status = _replaced(cluster, pid)
    new_box = _container(podman, labels)
    assert new_box["Id"] != box["Id"]
    _answers(cluster)

    # hang: stopped (no keepAlive for hearttimeout) -> replaced
    pid = status["pid"]
    os.kill(pid, signal.SIGSTOP)
    status = _replaced(cluster, pid)
    _answers(cluster)
    assert "zombie process" in cluster.node_log(NODE)

    # an operator's stop: no container left; start: one again
    cluster.ok("server", "stop", SERVER, "--node", NODE)
    eventually_sync(lambda: not podman.running(**labels), "no container after stop")
    cluster.ok("server", "start", SERVER, "--node", NODE)
    pid = cluster.active(NODE)["pid"]
    _answers(cluster)

    # the node agent killed and started again: the container is adopted, not restarted
    box = _container(podman, labels)
    cluster.kill_node(NODE)
    _answers(cluster)
    cluster.start_node(NODE)
    cluster.wait_connected([NODE])
    eventually_sync(lambda: "adopted" in cluster.node_log(NODE), "the node adopts it")
    assert cluster.active(NODE)["pid"] == pid
    assert _container(podman, labels)["Id"] == box["Id"]

    # the engine's API service killed: the service keeps answering; a crash meanwhile is
    # restarted once the engine is back
    podman.stop()
    _answers(cluster)
    os.kill(pid, signal.SIGKILL)
    eventually_sync(
        lambda: "does not answer" in cluster.node_log(NODE), "the node says the engine is down"
    )
    podman.start()
    _replaced(cluster, pid)
    _answers(cluster)
