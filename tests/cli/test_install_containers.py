"""What the container images ask of ``tarsus install`` (docs/containers.md): a database that is
not up yet is waited for (``--db-wait``) and then named; ``tarsus install check`` is a
HEALTHCHECK (exit 0 when the role answers, 1 saying why); a join token given to the framework
(a container's secret) is checked before it is kept."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tarsus.install.settings import NodeSettings
from tarsus.testing import framework_ports, free_port
from tarsus.web.token import TokenError, ensure_token, write_new_token


def _tarsus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tarsus", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_a_database_not_up_is_waited_for_then_named(tmp_path: Path) -> None:
    ports = [f"--port={k}={v}" for k, v in dataclasses.asdict(framework_ports()).items()]
    db = f"mysql://root@127.0.0.1:{free_port()}/db_tars"
    done = _tarsus(
        "install", "framework", "--prefix", str(tmp_path), "--host", "127.0.0.1",
        *ports, f"--port=web={free_port()}", "--foreground",
        env={"TARSUS_DB": db, "TARSUS_DB_WAIT": "1"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "database: waiting" in done.stderr
    assert "no database answers at 127.0.0.1" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "etc" / "tarsus" / "framework.toml").exists()
    # --foreground writes no service unit (a container has no systemd)
    assert not (tmp_path / "etc" / "systemd").exists()


def test_install_check_is_a_health_check(tmp_path: Path) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        settings = NodeSettings(
            version="x", locator="tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1",
            data_dir=tmp_path, host="127.0.0.1", port=port,
        )  # fmt: skip
        config = tmp_path / "node.toml"
        config.write_text(settings.render())
        healthy = _tarsus("install", "check", "node", "--config", str(config))
        assert healthy.returncode == 0 and "node healthy" in healthy.stdout, healthy.stderr
    sick = _tarsus("install", "check", "node", "--config", str(config))
    assert sick.returncode == 1
    assert f"ServerObj at 127.0.0.1:{port} does not answer" in sick.stderr
    wrong = _tarsus("install", "check", "framework", "--config", str(config))
    assert wrong.returncode == 1 and "the node's settings, not the framework's" in wrong.stderr
    missing = _tarsus("install", "check", "node", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_a_given_join_token_is_checked_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "web" / "join-token"
    for bad in ("short", "has a space in it, long enough", "x" * 600):
        with pytest.raises(TokenError):
            write_new_token(path, bad)
    assert not path.exists()
    given = "given-by-a-secret-0123456789"
    assert write_new_token(path, given) == given
    assert ensure_token(path) == given
    assert path.stat().st_mode & 0o077 == 0
