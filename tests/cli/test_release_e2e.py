"""Releasing through the package store with real processes: ``tarsus up --no-example``
(registry, admin registry, package store and node agent) in its own process, and the ``tarsus``
command run as a user types it.

Deploy uploads the package to ``tars.tarspatch.PatchObj`` and installs it through a task (the
node downloads it from the store); a second version is uploaded, published by id, rolled back,
and the store, the server's state and the history say so.

Uses upstream's fixed ports (17890, 17891, 12000, 18793, 19386): run it in a network namespace
of its own when others may run a framework on this machine (docs/testing.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from up_cli import NODE, tarsus

from tarsus.testing import TarsusUp

SERVER = "Test.HelloServer"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "up.log"
    with TarsusUp("--no-example", "--data-dir", "data", log=log, cwd=tmp_path):
        yield log


def ok(*args: str, cwd: Path) -> Any:
    done = tarsus(*args, "--json", cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def patch_version(cwd: Path) -> str:
    return str(ok("server", "status", SERVER, "--node", NODE, cwd=cwd)["patch_version"])


@pytest.mark.slow
def test_deploy_publish_and_roll_back_through_the_package_store(
    platform: Path, tmp_path: Path
) -> None:
    v1 = shutil.copytree(EXAMPLE, tmp_path / "v1", ignore=shutil.ignore_patterns("__pycache__"))
    v2 = shutil.copytree(v1, tmp_path / "v2")
    (v2 / "CHANGES").write_text("v2\n")

    deployed = ok(
        "server", "deploy", SERVER, "--node", NODE, "--package", str(v1), "--start", cwd=tmp_path
    )
    first = int(deployed["package"]["version"])
    assert deployed["package"]["task"]  # through the store, not a path handed to the node
    assert patch_version(tmp_path) == str(first)

    second = ok("package", "upload", SERVER, str(v2), "--comment", "v2", cwd=tmp_path)["id"]
    published = ok("server", "publish", SERVER, "--version", str(second), "--all", cwd=tmp_path)
    assert [i["status"] for i in published["tasks"][0]["items"]] == ["done"]
    assert patch_version(tmp_path) == str(second)

    listed = ok("package", "list", SERVER, cwd=tmp_path)["packages"]
    assert [(p["id"], p["comment"], p["deployed_on"]) for p in listed] == [
        (second, "v2", [NODE]),
        (first, "deploy", []),
    ]

    ok("server", "rollback", SERVER, "--all", cwd=tmp_path)
    assert patch_version(tmp_path) == str(first)
    state = ok("server", "status", SERVER, "--node", NODE, cwd=tmp_path)
    assert state["present_state_in_node"].lower() == "active" and state["pid"] > 0

    history = ok("server", "history", SERVER, cwd=tmp_path)["tasks"]
    assert [t["versions"] for t in history] == [[str(first)], [str(second)], [str(first)]]
    assert all(t["status"] == "done" for t in history)
