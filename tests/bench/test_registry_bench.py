"""bench/registry.py runs end to end at small sizes: a real registry process over a real
SQLite database, simulated nodes and lookup clients as real processes. Timings are not
asserted (they belong to the bench); what is checked is that the run completes, every
heartbeat reached the database, and the results table is printed without touching the docs."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"


def _quick_bench(*args: str) -> str:
    """``bench/registry.py --quick --no-write --quiet`` with ``args``: what it printed (the
    test fails with its output if it does not exit 0)."""
    proc = subprocess.run(
        [sys.executable, "bench/registry.py", "--quick", "--no-write", "--quiet", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_quick_registry_bench_completes_and_prints_its_table() -> None:
    before = DOC.read_bytes() if DOC.exists() else None
    out = _quick_bench("--db", "sqlite", "--no-pin")
    assert "| **registry CPU, keepAlive only** (% of one core) |" in out
    assert "| **max lookups/s** under keepAlive" in out
    assert "| every node's last heartbeat in `t_node_info` | check | yes |" in out
    assert "sqlite heartbeat check ok: 100 nodes" in out
    # the machine's own floor for the stalls, measured before the runs
    assert "| the machine's floor: longest stall of an empty event loop" in out
    assert (DOC.read_bytes() if DOC.exists() else None) == before


def test_the_quick_registry_bench_runs_on_a_mariadb_of_its_own(tmp_path: Path) -> None:
    """The MariaDB run's default: a mariadbd of the bench's own (bench/own_mariadb.py); it is
    stopped and its files deleted afterwards."""
    sys.path.insert(0, str(ROOT / "bench"))
    import own_mariadb

    reason = own_mariadb.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    before = set(Path(tempfile.gettempdir()).glob("tarsus-bench-registry-mariadb-*"))
    out = tmp_path / "registry.json"
    printed = _quick_bench("--db", "mariadb", "--json", str(out))
    assert "mariadb heartbeat check ok: 100 nodes" in printed
    (result,) = json.loads(out.read_text())["results"]
    assert result["mariadb_server"].startswith("own")
    # the steady-rate probes at real-time priority where the bench may set it (root here)
    fifo = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))"
    may = subprocess.run([sys.executable, "-c", fifo], capture_output=True, check=False)
    assert result["probe"] == ("SCHED_FIFO 50" if may.returncode == 0 else "normal")
    after = set(Path(tempfile.gettempdir()).glob("tarsus-bench-registry-mariadb-*"))
    assert after <= before  # its data directory is gone
