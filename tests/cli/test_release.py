"""``tarsus package ...`` and ``tarsus server publish|rollback|history|task`` across nodes.

Against stand-ins of the package store and the admin registry (``release_standin``) served
over real sockets; the commands run in-process through typer's ``CliRunner`` (not a
terminal: progress comes as plain lines on stderr). What is checked is what an operator
relies on: what reaches the store and the admin registry (chunks, names, the task's items and
parameters as upstream's web sends them), what is printed, and the exit status.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adminreg_standin import ADMIN_OBJ
from release_standin import PATCH_OBJ, ReleaseAdmin, StandInPatch
from typer.testing import CliRunner, Result

import tarsus.cli.publish
from tarsus.cli import app
from tarsus.testing import ServerThread

SERVER = "Test.HelloServer"
NODES = ("10.0.0.7", "10.0.0.8", "10.0.0.9")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TARSUS_ADMIN", "TARSUS_LOCATOR", "TARSUS_PATCH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TARSUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tarsus.cli.publish, "FOLLOW_INTERVAL_S", 0.01)
    monkeypatch.setattr(tarsus.cli.publish, "ACTIVE_POLL_S", 0.01)


class Platform:
    def __init__(
        self, admin: ReleaseAdmin, patch: StandInPatch, admin_proxy: str, patch_proxy: str
    ):
        self.admin, self.patch = admin, patch
        self.admin_proxy, self.patch_proxy = admin_proxy, patch_proxy

    def run(self, *args: str) -> Result:
        argv = [*args, "--admin", self.admin_proxy]
        result = CliRunner(env={"COLUMNS": "200", "TARSUS_PATCH": self.patch_proxy}).invoke(
            app, argv
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"tarsus {' '.join(argv)} crashed") from result.exception
        assert "Traceback" not in result.output
        return result

    def ok_json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def tasks(self) -> list[Any]:
        return [args[0] for args in self.admin.called("addTaskReq")]


@pytest.fixture
def platform() -> Iterator[Platform]:
    patch = StandInPatch()
    admin = ReleaseAdmin(patch)
    admin.nodes["10.0.0.9"] = "2026-05-09 10:00:00"
    with ServerThread(patch, PATCH_OBJ) as p, ServerThread(admin, ADMIN_OBJ) as a:
        plat = Platform(admin, patch, a.proxy_string, p.proxy_string)
        for node in NODES:
            done = plat.run(
                "server", "deploy", SERVER, "--node", node, "--servant", "HelloObj=18601"
            )
            assert done.exit_code == 0, done.stderr
        yield plat


def package(path: Path, size: int = 1000) -> Path:
    """A .tgz with a tarsus.toml for Test.HelloServer and ``size`` bytes of incompressible data."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            ("tarsus.toml", b'[package]\nname = "Test.HelloServer"\n'),
            ("blob", os.urandom(size)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------- the store


def test_upload_sends_1mib_chunks_named_as_upstream_and_records_the_package(
    platform: Platform, tmp_path: Path
) -> None:
    tgz = package(tmp_path / "hello.tgz", size=2_600_000)
    doc = platform.ok_json("package", "upload", SERVER, str(tgz), "--comment", "fix greeting")
    md5 = hashlib.md5(tgz.read_bytes()).hexdigest()
    assert doc["id"] == 1 and doc["md5"] == md5 and doc["size"] == tgz.stat().st_size
    assert re.fullmatch(r"Test\.HelloServer_cli_\d{13}\.tgz", doc["tgz"])
    chunks = platform.patch.chunks
    assert [c[3] for c in chunks[:-1]] == [1 << 20] * (len(chunks) - 1) and len(chunks) == 3
    assert [(c[1], c[2]) for c in chunks] == [(True, False), (False, False), (False, True)]
    assert platform.patch.stored[("Test", "HelloServer", doc["tgz"])] == tgz.read_bytes()
    (call,) = platform.admin.called("addPatchPackage")
    assert call[:5] == ("Test", "HelloServer", doc["tgz"], md5, "fix greeting")

    listed = platform.ok_json("package", "list", SERVER)
    assert [p["id"] for p in listed["packages"]] == [1]
    assert listed["packages"][0]["comment"] == "fix greeting"
    assert listed["total_size"] == tgz.stat().st_size
    text = platform.run("package", "list", SERVER)
    assert text.exit_code == 0 and "fix greeting" in text.stdout and "1 packages" in text.stdout


def test_package_of_another_server_is_refused_before_anything_is_sent(
    platform: Platform, tmp_path: Path
) -> None:
    tgz = package(tmp_path / "hello.tgz")
    done = platform.run("package", "upload", "Test.OtherServer", str(tgz))
    assert done.exit_code == 2 and "not 'Test.OtherServer'" in done.stderr
    assert platform.patch.chunks == [] and platform.admin.called("addPatchPackage") == []


def test_default_and_delete(platform: Platform, tmp_path: Path) -> None:
    for _ in range(2):
        assert (
            platform.run("package", "upload", SERVER, str(package(tmp_path / "p.tgz"))).exit_code
            == 0
        )
    assert platform.run("package", "default", "1").exit_code == 0
    listed = platform.ok_json("package", "list", SERVER)["packages"]
    assert [(p["id"], p["default"]) for p in listed] == [(2, False), (1, True)]
    platform.admin.packages[2].deployed_on = ["10.0.0.7"]
    refused = platform.run("package", "delete", "2")
    assert refused.exit_code == 1 and "deployed on 10.0.0.7" in refused.stderr
    assert platform.run("package", "delete", "1").exit_code == 0
    assert [p["id"] for p in platform.ok_json("package", "list", SERVER)["packages"]] == [2]


# --------------------------------------------------------------------------- publishing


def test_publish_a_version_to_every_node_is_one_task_with_upstreams_parameters(
    platform: Platform, tmp_path: Path
) -> None:
    platform.run("package", "upload", SERVER, str(package(tmp_path / "p.tgz")))
    doc = platform.ok_json(
        "server", "publish", SERVER, "--version", "1", "--all", "--batch", "2",
        "--lossless", "--comment", "release 7", "--user", "alice",
    )  # fmt: skip
    (req,) = platform.tasks()
    assert (req.serial, req.eachNum, req.isElegant, req.userName) == (False, 2, True, "alice")
    assert [i.nodeName for i in req.taskItemReq] == list(NODES)
    for item in req.taskItemReq:
        assert item.command == "patch_tars" and item.taskNo == req.taskNo
        assert dict(item.parameters) == {
            "patch_id": "1",
            "bak_flag": "0",
            "update_text": "release 7",
            "group_name": "",
        }
    assert doc["tasks"][0]["status"] == "done"
    assert [(i["node"], i["status"], i["percent"]) for i in doc["tasks"][0]["items"]] == [
        (n, "done", 100) for n in NODES
    ]


def test_publish_a_package_uploads_it_then_publishes_that_version_with_live_lines(
    platform: Platform, tmp_path: Path
) -> None:
    tgz = package(tmp_path / "hello.tgz")
    done = platform.run(
        "server",
        "publish",
        SERVER,
        "--package",
        str(tgz),
        "--node",
        "10.0.0.8",
        "--node",
        "10.0.0.7",
    )
    assert done.exit_code == 0, done.stderr
    (req,) = platform.tasks()
    assert req.serial and [i.nodeName for i in req.taskItemReq] == ["10.0.0.8", "10.0.0.7"]
    assert req.taskItemReq[0].parameters["patch_id"] == "1"
    assert "uploaded hello.tgz as version 1" in done.stderr
    assert "10.0.0.8: running 50%" in done.stderr and "10.0.0.8: done 100%" in done.stderr
    assert f"published hello.tgz to {SERVER} on 10.0.0.8, 10.0.0.7" in done.stdout


def test_failures_give_exit_1_and_each_nodes_reason(platform: Platform) -> None:
    platform.admin.packages[1] = _row(1)
    platform.admin.fail_nodes["10.0.0.8"] = "not enough disk: 10 MB free, 50 MB needed"
    done = platform.run("server", "publish", SERVER, "--version", "1", "--all", "--parallel")
    assert done.exit_code == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: publishing version 1 to {SERVER} failed on 1 of 3 nodes")
    assert "node 10.0.0.8: not enough disk: 10 MB free, 50 MB needed" in error

    # serial: the first failure stops the rest, and says which were not done
    done = platform.run("server", "publish", SERVER, "--version", "1", "--all", "--json")
    assert done.exit_code == 1
    doc = json.loads(done.stdout)["error"]
    assert [i["status"] for i in doc["tasks"][0]["items"]] == ["done", "failed", "cancelled"]
    assert "not done, after the failure: 10.0.0.9" in done.stderr


def test_bad_command_lines_are_refused_before_any_task(platform: Platform, tmp_path: Path) -> None:
    platform.admin.packages[1] = _row(1)
    cases = [
        (["--version", "1"], 2, "--node N"),
        (["--version", "1", "--all", "--node", "10.0.0.7"], 2, "not both"),
        (["--node", "10.0.0.7"], 2, "--version ID"),
        (["--version", "1", "--all", "--serial", "--batch", "2"], 2, "choose one"),
        (["--version", "1", "--node", "10.0.0.66"], 1, "not deployed on node 10.0.0.66"),
        (["--version", "9", "--all"], 1, "no package 9"),
        (["--version", "1", "--all", "--canary", "3"], 2, "--canary 3"),
        (
            ["--version", "1", "--all", "--canary", "1", "--canary-then", "maybe"],
            2,
            "continue or stop",
        ),
    ]
    for args, code, text in cases:
        done = platform.run("server", "publish", SERVER, *args)
        assert (done.exit_code, text in done.stderr) == (code, True), (args, done.stderr)
    assert platform.tasks() == []


def test_canary_goes_first_then_the_rest_or_stops(platform: Platform) -> None:
    platform.admin.packages[1] = _row(1)
    doc = platform.ok_json("server", "publish", SERVER, "--version", "1", "--all", "--canary", "1")
    first, rest = platform.tasks()
    assert [i.nodeName for i in first.taskItemReq] == ["10.0.0.7"]
    assert [i.nodeName for i in rest.taskItemReq] == ["10.0.0.8", "10.0.0.9"]
    assert [t["phase"] for t in doc["tasks"]] == ["canary", "rest"]
    assert platform.admin.called("getServerState")  # waited for the canary to be active

    done = platform.run(
        "server",
        "publish",
        SERVER,
        "--version",
        "1",
        "--all",
        "--canary",
        "2",
        "--canary-then",
        "stop",
    )
    assert done.exit_code == 0 and len(platform.tasks()) == 3
    assert f"tarsus server publish {SERVER} --version 1 --node 10.0.0.9" in done.stdout


def test_a_failing_canary_leaves_the_other_nodes_alone(platform: Platform) -> None:
    platform.admin.packages[1] = _row(1)
    platform.admin.fail_nodes["10.0.0.7"] = "the new version does not start"
    done = platform.run("server", "publish", SERVER, "--version", "1", "--all", "--canary", "1")
    assert done.exit_code == 1 and "does not start" in done.stderr
    assert len(platform.tasks()) == 1


def test_rollback_publishes_each_nodes_previous_version_and_history_shows_it(
    platform: Platform,
) -> None:
    for i in (1, 2):
        platform.admin.packages[i] = _row(i)
    assert platform.run("server", "publish", SERVER, "--version", "1", "--all").exit_code == 0
    assert (
        platform.run("server", "publish", SERVER, "--version", "2", "--node", "10.0.0.7").exit_code
        == 0
    )

    refused = platform.run("server", "rollback", SERVER, "--all")
    assert refused.exit_code == 1 and "node 10.0.0.8, 10.0.0.9" in refused.stderr

    done = platform.run("server", "rollback", SERVER, "--node", "10.0.0.7")
    assert done.exit_code == 0, done.stderr
    last = platform.tasks()[-1]
    assert [(i.nodeName, i.parameters["patch_id"]) for i in last.taskItemReq] == [("10.0.0.7", "1")]
    assert "rolled Test.HelloServer back to version 1 on 10.0.0.7" in done.stdout

    to = platform.run("server", "rollback", SERVER, "--all", "--to", "2", "--parallel")
    assert to.exit_code == 0 and len(platform.tasks()[-1].taskItemReq) == 3

    history = platform.ok_json("server", "history", SERVER)
    assert [t["versions"] for t in history["tasks"]] == [["2"], ["1"], ["2"], ["1"]]
    text = platform.run("server", "history", SERVER, "--limit", "1")
    assert text.exit_code == 0 and "10.0.0.9" in text.stdout and "done" in text.stdout


def test_task_shows_a_tasks_items(platform: Platform) -> None:
    platform.admin.packages[1] = _row(1)
    platform.admin.fail_nodes["10.0.0.9"] = "md5 mismatch after download"
    platform.run("server", "publish", SERVER, "--version", "1", "--all", "--parallel")
    task_no = platform.tasks()[0].taskNo
    shown = platform.run("server", "task", task_no)
    assert shown.exit_code == 1  # an item failed
    assert "md5 mismatch after download" in shown.stdout and "patch_tars" in shown.stdout
    unknown = platform.run("server", "task", "nope")
    assert unknown.exit_code == 1 and "no task 'nope'" in unknown.stderr


def test_deploy_with_a_package_goes_through_the_store(platform: Platform, tmp_path: Path) -> None:
    tgz = package(tmp_path / "hello.tgz")
    doc = platform.ok_json(
        "server", "deploy", SERVER, "--node", "10.0.0.7", "--servant", "HelloObj=18601",
        "--package", str(tgz), "--replace",
    )  # fmt: skip
    (req,) = platform.tasks()
    assert req.taskItemReq[0].parameters["bak_flag"] == "1"  # installed; --start starts it
    assert doc["package"]["version"] == "1" and doc["package"]["task"] == req.taskNo
    assert platform.admin.called("batchPatch") == []  # no path handed to the node


def _row(i: int) -> Any:
    from release_standin import StoredRow

    return StoredRow(i, "Test", "HelloServer", f"Test.HelloServer_cli_{i}.tgz", "0" * 32, "", "bob")
