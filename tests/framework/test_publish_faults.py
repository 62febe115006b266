"""Faults during a publish, as an operator meets them (issue 10 §5): a node agent killed in
the middle of a download, a node whose disk cannot hold the package. Real processes: the
package store and three node agents (``tarsus node``) of their own, the ``tarsus`` command
run as a user types it (tests/framework/cluster_support.py).

What the operator must see: ``tarsus server publish`` ends (not after the 300 s install wait)
with a non-zero status naming the node and why; the other nodes get the new version; the node
that failed still runs the old one (nothing half-installed is started); a retry on that node
finishes the job.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import DOWNLOAD, EXAMPLE, SERVER, Cluster, wait_for_file

pytestmark = pytest.mark.slow

#: a package this big takes a few seconds to download in 16 KiB chunks
BIG = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("faults")
    with Cluster(root, 3, chunk_size="16K") as c:
        for node in c.nodes:
            c.deploy(node)
        yield c


def big_version(cluster: Cluster, tmp: Path, comment: str) -> str:
    """A new version of the example with ``BIG`` incompressible bytes in it, uploaded."""
    src = shutil.copytree(EXAMPLE, tmp / comment, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "blob.bin").write_bytes(os.urandom(BIG))
    return str(cluster.ok("package", "upload", SERVER, str(src), "--comment", comment)["id"])


def test_a_node_killed_mid_download_fails_fast_and_a_retry_finishes(
    cluster: Cluster, tmp_path: Path
) -> None:
    victim = cluster.nodes[1]
    before = {node: cluster.active(node) for node in cluster.nodes}
    version = big_version(cluster, tmp_path, "big")

    publish = cluster.popen(
        "server", "publish", SERVER, "--version", version, "--all", "--parallel"
    )
    part = cluster.node_dir(victim) / DOWNLOAD / ".Test.HelloServer.tgz.part"
    wait_for_file(part, 1024 * 1024)
    cluster.kill_node(victim)
    killed = time.monotonic()
    out, err = publish.communicate(timeout=240)
    # measured, not asserted: how long the operator waited after the node died
    print(f"publish ended {time.monotonic() - killed:.1f} s after {victim} was killed")
    assert publish.returncode == 1, out + err
    assert f"failed on 1 of 3 nodes: node {victim}: node {victim} is gone" in err, err
    assert "publish again" in err

    # the others have the new version, and run it
    for node in cluster.nodes:
        if node != victim:
            assert str(cluster.active(node)["patch_version"]) == version

    # back on its data directory, the node runs the old version: the same process, adopted
    cluster.start_node(victim)
    cluster.wait_connected([victim])
    again = cluster.active(victim)
    assert (again["patch_version"], again["pid"]) == (
        before[victim]["patch_version"],
        before[victim]["pid"],
    )
    assert not (cluster.node_dir(victim) / "data" / SERVER / "bin" / "blob.bin").exists()

    # the retry finishes the job, resuming the download where it stopped
    retry = cluster.ok("server", "publish", SERVER, "--version", version, "--node", victim)
    assert [i["status"] for i in retry["tasks"][0]["items"]] == ["done"]
    assert str(cluster.active(victim)["patch_version"]) == version
    assert "resuming the download at" in cluster.node_log(victim)


def test_a_full_disk_refuses_the_package_and_the_old_version_keeps_running(
    cluster: Cluster, tmp_path: Path
) -> None:
    full = cluster.nodes[2]
    # the node comes back with a disk reserve its disk cannot keep once the package is in
    cluster.kill_node(full)
    cluster.start_node(full, "--disk-reserve", "100000G")
    cluster.wait_connected([full])
    before = cluster.active(full)
    version = big_version(cluster, tmp_path, "full")

    done = cluster.tarsus("server", "publish", SERVER, "--version", version, "--all", "--parallel")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"failed on 1 of 3 nodes: node {full}: not enough disk space" in done.stderr
    assert "disk_reserve" in done.stderr
    for node in cluster.nodes:
        if node != full:
            assert str(cluster.active(node)["patch_version"]) == version
    after = cluster.active(full)
    assert (after["patch_version"], after["pid"]) == (before["patch_version"], before["pid"])
    partial = cluster.node_dir(full) / DOWNLOAD
    assert not any(partial.glob("*.part")) and not any(partial.glob(".*.part"))

    # room made (here: the reserve lowered again), the retry finishes
    cluster.kill_node(full)
    cluster.start_node(full)
    cluster.wait_connected([full])
    cluster.ok("server", "publish", SERVER, "--version", version, "--node", full)
    assert str(cluster.active(full)["patch_version"]) == version


#: a version that starts and keeps alive (Active on its node) but never opens its servant:
#: its initialize takes the servant's adapter out before the application binds it
DEAF = """

def initialize(app: Application) -> None:
    app.adapters.clear()
"""


def test_a_canary_goes_on_only_once_it_answers(cluster: Cluster, tmp_path: Path) -> None:
    canary, *rest = cluster.nodes
    good = shutil.copytree(EXAMPLE, tmp_path / "good", ignore=shutil.ignore_patterns("__pycache__"))
    (good / "CHANGES").write_text("good\n")
    version = str(cluster.ok("package", "upload", SERVER, str(good))["id"])
    done = cluster.tarsus(
        "server", "publish", SERVER, "--version", version, "--all", "--canary", "1"
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"canary: {SERVER} is active and answering on {canary}" in done.stderr
    for node in cluster.nodes:
        assert str(cluster.active(node)["patch_version"]) == version

    deaf = shutil.copytree(good, tmp_path / "deaf")
    source = (deaf / "server.py").read_text()
    source = source.replace("\n\ndef initialize(", "\n\ndef _unused(")
    (deaf / "server.py").write_text(
        source.replace("\n\nasync def standalone(", DEAF + "\n\nasync def standalone(")
    )
    bad = str(cluster.ok("package", "upload", SERVER, str(deaf))["id"])
    done = cluster.tarsus(
        "server", "publish", SERVER, "--version", bad, "--all", "--canary", "1",
        "--canary-wait", "3",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert f"canary: {SERVER} is not active and answering after 3 s (node {canary}:" in err
    assert f"{SERVER}.HelloObj" in err and "tars_ping" in err
    assert "the other 2 nodes were not touched" in err
    # Active on its node all along: only the servant's silence stopped the publish
    assert str(cluster.active(canary)["patch_version"]) == bad
    for node in rest:
        assert str(cluster.status(node)["patch_version"]) == version
