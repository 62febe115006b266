"""The one shape of a framework service: its ``--config=FILE`` entry point, run as a real
process from a config such as a node writes; and the node package standing alone."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tarsus.conf import ConfigError, parse
from tarsus.framework.service import store_url
from tarsus.protocol.gen import Patch, QueryF
from tarsus.rpc.communicator import Communicator
from tarsus.testing import free_ports, patch_store_process

ROOT = Path(__file__).resolve().parents[2]


def _registry_config(tmp_path: Path, query: int, registry: int, db: str) -> Path:
    """The config a node generates for ``tars.tarsregistry`` (no node to report to)."""
    conf = tmp_path / "tars.tarsregistry.config.conf"
    conf.write_text(
        f"""<tars>
  <application>
    <server>
      app=tars
      server=tarsregistry
      localip=127.0.0.1
      logpath={tmp_path / "log"}
      logLevel=INFO
      <tars.tarsregistry.QueryObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {query} -t 60000
        servant=tars.tarsregistry.QueryObj
      </tars.tarsregistry.QueryObjAdapter>
      <tars.tarsregistry.RegistryObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {registry} -t 60000
        servant=tars.tarsregistry.RegistryObj
      </tars.tarsregistry.RegistryObjAdapter>
    </server>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {query}
    </client>
  </application>
  {db}
</tars>
"""
    )
    return conf


async def test_the_registry_runs_as_its_own_process_from_its_config(tmp_path: Path) -> None:
    query, registry = free_ports(2)
    db = f"<db>\n url = sqlite:///{tmp_path / 'tarsus.db'}\n</db>"
    conf = _registry_config(tmp_path, query, registry, db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarsus.framework.registry", f"--config={conf}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {query}"
        async with Communicator(cache_dir=None) as comm:
            proxy = comm.string_to_proxy(QueryF.QueryFProxy, locator).with_options(timeout_ms=1000)
            deadline = time.monotonic() + 60
            found: list[object] = []
            while not found:  # it announces its own servants into the routes it serves
                assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
                assert time.monotonic() < deadline, "the registry did not route itself"
                try:
                    found = await proxy.findObjectById("tars.tarsregistry.RegistryObj")
                except Exception:  # not listening yet
                    time.sleep(0.1)
            assert [(e.host, e.port) for e in found] == [("127.0.0.1", registry)]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode == 0, out


def _run_service(module: str, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, f"--config={conf}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("db", "reason"),
    [
        ("", "no store configured: set /tars/db<url>"),
        ("<db>\n url = nosuch://x\n</db>", "the store"),
    ],
)
def test_a_service_that_cannot_start_says_why_and_exits_1(
    tmp_path: Path, db: str, reason: str
) -> None:
    conf = _registry_config(tmp_path, *free_ports(2), db)
    done = _run_service("tarsus.framework.registry", conf)
    assert done.returncode == 1
    assert "cannot start tars.tarsregistry" in done.stderr and reason in done.stderr


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    done = _run_service("tarsus.framework.admin", tmp_path / "nope.conf")
    assert done.returncode == 1
    assert "cannot start tars.tarsAdminRegistry" in done.stderr and "nope.conf" in done.stderr


def test_store_url_from_upstream_db_keys() -> None:
    upstream = parse(
        "<tars>\n<db>\ndbhost=10.0.0.5\ndbport=3307\ndbuser=tars\ndbpass=p@ss\n"
        "dbname=db_tars\n</db>\n</tars>"
    )
    assert store_url(upstream) == "mysql://tars:p%40ss@10.0.0.5:3307/db_tars"
    ours = parse("<tars>\n<db>\nurl=sqlite:////srv/tarsus.db\n</db>\n</tars>")
    assert store_url(ours) == "sqlite:////srv/tarsus.db"
    with pytest.raises(ConfigError, match="no store configured"):
        store_url(parse("<tars>\n</tars>"))


def test_the_node_package_does_not_import_the_admin_package() -> None:
    """A node machine runs no admin registry: loading the node agent must not load it."""
    code = (
        "import sys, tarsus.framework.node.agent\n"
        "print(sorted(m for m in sys.modules if m.startswith('tarsus.framework.admin')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_the_package_store_runs_as_its_own_process_without_a_store(tmp_path: Path) -> None:
    """``tars.tarspatch`` keeps files, not rows: its config names no database, and it takes
    upstream's ``directory`` / ``uploadDirectory`` keys."""
    (port,) = free_ports(1)
    proc = patch_store_process(tmp_path, port, stdout=subprocess.PIPE)
    try:
        async with Communicator(cache_dir=None) as comm:
            proxy = comm.string_to_proxy(
                Patch.PatchProxy, f"tars.tarspatch.PatchObj@tcp -h 127.0.0.1 -p {port}"
            ).with_options(timeout_ms=1000)
            content = Patch.FileContent(
                md5=hashlib.md5(b"pkg").hexdigest(),
                name="Test.Hello_cli_1.tgz",
                firstChunk=True,
                lastChunk=True,
                content=b"pkg",
            )
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
                assert time.monotonic() < deadline, "the package store did not answer"
                try:
                    code = await proxy.upload("Test", "Hello", content)
                    break
                except Exception:  # not listening yet
                    time.sleep(0.1)
            assert code == 0
            assert (
                tmp_path / "patchs/tars.upload/Test/Hello/Test.Hello_cli_1.tgz"
            ).read_bytes() == (b"pkg")
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode == 0, out
