"""``tarsus server deploy`` against the real admin registry (``real_admin``: SQLite and MariaDB,
over a real socket), the command run as its own process: one call (``AdminExt.deployServer``)
deploys the instance and its servants in one transaction, and every refusal names its cause.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_thread import AdminRegistryThread

NODE = "10.0.0.7"


def tarsus(admin: AdminRegistryThread, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TARSUS_ADMIN", "TARSUS_LOCATOR")}
    env["TARSUS_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "tarsus", *args, "--admin", admin.proxy],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


def deploy(admin: AdminRegistryThread, server: str, *args: str, cwd: Path) -> Any:
    return tarsus(admin, "server", "deploy", server, "--node", NODE, *args, cwd=cwd)


def deployed(admin: AdminRegistryThread) -> dict[str, list[tuple[str, str]]]:
    """``App.Server`` -> its (servant, endpoint) rows, as stored."""

    async def read() -> dict[str, list[tuple[str, str]]]:
        found = {}
        for row in await admin.store.servers.list():
            adapters = await admin.store.servers.adapters(
                row.application, row.server_name, row.node_name
            )
            found[f"{row.application}.{row.server_name}"] = sorted(
                (a.servant, a.endpoint) for a in adapters
            )
        return found

    return admin.run(read())


def test_deploy_writes_the_instance_and_its_servants_at_once(
    real_admin: AdminRegistryThread, tmp_path: Path
) -> None:
    done = deploy(
        real_admin, "Test.HelloServer", "--servant", "HelloObj=18601", "--servant",
        "EchoObj=18602", "--template", "tars.tarspython.default", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["servants"][0]["adapter"] == "Test.HelloServer.HelloObjAdapter"
    assert deployed(real_admin) == {
        "Test.HelloServer": [
            ("Test.HelloServer.EchoObj", f"tcp -h {NODE} -p 18602 -t 60000"),
            ("Test.HelloServer.HelloObj", f"tcp -h {NODE} -p 18601 -t 60000"),
        ]
    }
    (row,) = real_admin.run(real_admin.store.servers.list())
    assert (row.setting_state, row.template_name) == ("inactive", "tars.tarspython.default")

    # --replace: the servants become exactly the ones given
    done = deploy(
        real_admin, "Test.HelloServer", "--servant", "HelloObj=18611", "--replace",
        "--template", "tars.tarspython.default", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert deployed(real_admin) == {
        "Test.HelloServer": [("Test.HelloServer.HelloObj", f"tcp -h {NODE} -p 18611 -t 60000")]
    }


def test_every_refusal_names_its_cause_and_changes_nothing(
    real_admin: AdminRegistryThread, tmp_path: Path
) -> None:
    args = ("--servant", "HelloObj=18601", "--template", "tars.tarspython.default")
    assert deploy(real_admin, "Test.HelloServer", *args, cwd=tmp_path).returncode == 0
    before = deployed(real_admin)

    again = deploy(real_admin, "Test.HelloServer", *args, cwd=tmp_path)
    assert again.returncode == 1
    assert "Test.HelloServer" in again.stderr and "already deployed" in again.stderr
    assert "1007 EM_TARS_PARAMETER_ERR" in again.stderr

    # another server on a port of the same node: refused, and nothing of it is left behind
    taken = deploy(
        real_admin, "Test.OtherServer", "--servant", "AObj=18650", "--servant", "BObj=18601",
        "--template", "tars.tarspython.default", cwd=tmp_path,
    )  # fmt: skip
    assert taken.returncode == 1
    assert "18601" in taken.stderr and "Test.HelloServer" in taken.stderr, taken.stderr

    # a template that does not exist: the reason, not a bare code
    missing = deploy(
        real_admin, "Test.ThirdServer", "--servant", "AObj=18660", "--template", "no.such",
        cwd=tmp_path,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "template 'no.such' does not exist" in missing.stderr

    assert deployed(real_admin) == before
    for done in (again, taken, missing):
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (mounting needs root, as the multi-host tests do)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tarsus-test", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> None:
    """Write until the file system is full."""
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_a_full_disk_is_named_as_the_cause(small_disk: Path, tmp_path: Path) -> None:
    with AdminRegistryThread(f"sqlite:///{small_disk / 'tarsus.db'}") as admin:
        fill(small_disk)
        done = deploy(
            admin, "Test.HelloServer", "--servant", "HelloObj=18601", "--template",
            "tars.tarspython.default", cwd=tmp_path,
        )  # fmt: skip
        (small_disk / "filler").unlink()
        assert done.returncode == 1
        assert "deploying Test.HelloServer on node 10.0.0.7 failed" in done.stderr
        assert "database: database or disk is full" in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1  # one line
        assert "deployed there already" not in done.stderr
        assert deployed(admin) == {}
