"""bench/node.py runs end to end at its smallest: a real framework process, a real
``tarsus node`` process, two copies of examples/hello deployed through the admin registry as
servers of their own (``Bench.Hello1``, ``Bench.Hello2``), each answering by name, then
Ctrl-C. Timings and sizes are not asserted (they belong to the bench); what is checked is that
the run completes, the node supervised both services and left none behind, and the table is
printed without touching the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"


def test_the_quick_node_bench_completes_and_prints_its_table() -> None:
    before = DOC.read_bytes() if DOC.exists() else None
    proc = subprocess.run(
        [sys.executable, "bench/node.py", "--quick", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert (
        "| node agent process (`tarsus node`) | 0 services | 2 services "
        "| **per supervised process** (Δ / N) |" in out
    )
    assert "| each service's RSS: median (min - max) | - |" in out
    assert "2 services deployed, installed, started and answering by name" in out
    assert "service processes left: 0" in out
    assert (DOC.read_bytes() if DOC.exists() else None) == before
