"""``tarsus up`` over a damaged store: a clear error and an exit, the file untouched; and
Ctrl-C/SIGTERM obeyed while start-up still waits for the database.

Real ``tarsus up`` processes on upstream's fixed ports: run inside a network namespace (see
docs/running.md) when other frameworks may run on this machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarsus.store import AdapterSpec, ServerSpec, open_store

#: `tarsus up` on upstream's ports: run on a loopback of the test process's own (docs/testing.md)
pytestmark = pytest.mark.fixed_ports

ROOT = Path(__file__).resolve().parents[2]
TARSUS = [sys.executable, "-m", "tarsus"]


def _up(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TARSUS, "up", "--no-example", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


async def _make_store(db: Path) -> None:
    async with await open_store(f"sqlite:///{db}") as store:
        await store.servers.deploy(
            ServerSpec("Demo", "Hello", "127.0.0.1"),
            [AdapterSpec("Demo.Hello.HelloObj", "tcp -h 127.0.0.1 -p 9000")],
        )


def _damage_table(db: Path, table: str) -> None:
    """Overwrite the root page of ``table``: the schema still reads, the table does not."""
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    (root,) = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    raw.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\x5a" * page_size)


def test_a_store_with_a_damaged_page_fails_start_up_clearly(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    asyncio.run(_make_store(db))
    _damage_table(db, "t_server_conf")
    before = _md5(db)
    done = _up("--data-dir", str(tmp_path))
    out = " ".join((done.stdout + done.stderr).split())  # as one line: rich wraps it
    assert done.returncode == 1, out
    assert "tarsus up failed" in out and "is damaged" in out and "tarsus.db" in out, out
    assert _md5(db) == before, "a damaged store must be left as it was"


def test_a_zero_byte_store_is_refused_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    db.write_bytes(b"")
    done = _up("--data-dir", str(tmp_path))
    out = " ".join((done.stdout + done.stderr).split())  # as one line: rich wraps it
    assert done.returncode == 1, out
    assert "exists but is empty" in out and "--create" in out, out
    assert db.read_bytes() == b"", "the empty file must not be replaced by a new store"


@dataclass
class SilentDatabase:
    """A port that accepts connections and never answers (a database that hangs)."""

    port: int
    connected: threading.Event


@pytest.fixture
def silent_database() -> Iterator[SilentDatabase]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()
    connected = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
                connected.set()
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield SilentDatabase(listener.getsockname()[1], connected)
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_start_up_stops_it(
    tmp_path: Path, silent_database: SilentDatabase, sig: signal.Signals
) -> None:
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "tarsus", "up", "--no-example",
             "--data-dir", str(tmp_path), "--db",
             f"mysql://root@127.0.0.1:{silent_database.port}/db_tars"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    try:
        # Start-up now waits for the database's greeting, which never comes.
        if not silent_database.connected.wait(timeout=120):
            pytest.fail(f"tarsus up never connected to its store:\n{log.read_text()}")
        assert proc.poll() is None, log.read_text(errors="replace")
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # -X faulthandler: where it hangs, in the log
            proc.wait(timeout=30)
            pytest.fail(f"tarsus up ignored {sig.name}:\n{log.read_text(errors='replace')}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = " ".join(log.read_text(errors="replace").split())
    assert "stopped during start-up" in out, out
    assert "cannot connect" not in out, "it should stop on the signal, not on a timeout"
