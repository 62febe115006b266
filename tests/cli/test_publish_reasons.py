"""A package the node refuses: the operator reads the node's reason, not a bare code.

Real processes throughout: ``tarsus up --no-example`` (registry, admin registry and node agent)
in its own process, and the ``tarsus`` command run as a user types it, publishing packages the
node must refuse (docs/cli-operate.md, "When it fails"). Before, every such refusal printed
``unknown error (-1 EM_TARS_UNKNOWN_ERR): getPatchPercent ... iRet:-1`` while only the node's log
held the reason, and asyncio reported ``Task exception was never retrieved``.

Uses upstream's fixed ports (17890, 17891, 12000, 19386): run it in a network namespace of
its own when others may run a framework on this machine (docs/development.md).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from up_cli import NODE, tarsus

from tarsus.testing import TarsusUp


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Path]:
    """``tarsus up --no-example`` until the test ends; yields its log file."""
    log = tmp_path / "up.log"
    with TarsusUp("--no-example", "--data-dir", "data", log=log, cwd=tmp_path):
        yield log


def archive(path: Path, toml: str, *, link_to: str | None = None) -> Path:
    """A ``.tgz`` with ``tarsus.toml`` and ``server.py``, and a symlink ``data`` if asked."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("tarsus.toml", toml), ("server.py", "print('hi')\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link_to is not None:
            link = tarfile.TarInfo("data")
            link.type = tarfile.SYMTYPE
            link.linkname = link_to
            tar.addfile(link)
    return path


MANIFEST = """
[package]
name = "Test.BrokenServer"
entry = "server.py"
{extra}
[servants]
BrokenObj = {{ port = 18700 }}
"""


def test_a_refused_package_prints_the_nodes_reason(platform: Path, tmp_path: Path) -> None:
    evil = archive(tmp_path / "evil.tgz", MANIFEST.format(extra=""), link_to="/etc/passwd")
    done = tarsus(
        "server", "deploy", "Test.BrokenServer", "--node", NODE, "--package", str(evil),
        "--start", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()[-1]  # after the progress bar
    assert error.startswith("error: publishing evil.tgz to Test.BrokenServer on node 127.0.0.1")
    assert "link 'data' points to the absolute path '/etc/passwd'" in error
    assert "EM_TARS_UNKNOWN_ERR" not in error and "iRet:-1" not in error
    assert "stays deployed on node 127.0.0.1" in error  # deployed, but not installed nor started
    assert "no package store answers" not in done.stderr  # uploaded; the node downloaded it

    # publish to it again, a package the node refuses for another reason: that reason
    future = archive(tmp_path / "future.tgz", MANIFEST.format(extra='requires-python = ">=99"'))
    done = tarsus(
        "server", "publish", "Test.BrokenServer", "--node", NODE, "--package", str(future),
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "requires-python '>=99'" in done.stderr
    assert '"percent": 100' in done.stdout  # --json: the node's answer, machine-readable

    status = tarsus("server", "status", "Test.BrokenServer", "--node", NODE, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "pid" in status.stdout

    log = platform.read_text(errors="replace")
    assert "Task exception was never retrieved" not in log
