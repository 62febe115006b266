"""bench/registry.py runs end to end at small sizes: a real registry process over a real
SQLite database, simulated nodes and lookup clients as real processes. Timings are not
asserted (they belong to the bench); what is checked is that the run completes, every
heartbeat reached the database, and the results table is printed without touching the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"


def test_the_quick_registry_bench_completes_and_prints_its_table() -> None:
    before = DOC.read_bytes() if DOC.exists() else None
    proc = subprocess.run(
        [sys.executable, "bench/registry.py", "--quick", "--db", "sqlite", "--no-write",
         "--quiet", "--no-pin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "| **registry CPU, keepAlive only** (% of one core) |" in out
    assert "| **max lookups/s** under keepAlive" in out
    assert "| every node's last heartbeat in `t_node_info` | check | yes |" in out
    assert "sqlite heartbeat check ok: 100 nodes" in out
    assert (DOC.read_bytes() if DOC.exists() else None) == before
