"""bench/up.py runs end to end at its smallest: one cold and one warm ``tarsus up`` (a real
process on upstream's fixed ports, its example service in a venv of its own), a call by name,
Ctrl-C. Timings are not asserted (they belong to the bench); what is checked is that the run
completes, Ctrl-C leaves nothing behind, and the tables are printed without touching the docs.
Like tests/framework/test_up.py, it fails clearly when another Tars framework holds the
ports (after waiting a while for it to go)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: `tarsus up` on upstream's ports: run on a loopback of the test process's own (docs/testing.md)
pytestmark = pytest.mark.fixed_ports

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"


def test_the_quick_up_bench_completes_and_prints_its_table() -> None:
    before = DOC.read_bytes() if DOC.exists() else None
    proc = subprocess.run(
        [sys.executable, "bench/up.py", "--quick", "--no-write", "--port-wait", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "| **spawn → first answer by name** (in-process client): median / max |" in out
    assert "| service processes left after Ctrl-C | 0 | 0 |" in out
    assert (
        "| Ctrl-C leaves nothing running (exit 0, no service, no port) | check | yes | yes |" in out
    )
    assert "| cold 1 |" in out and "| warm 1 |" in out
    assert (DOC.read_bytes() if DOC.exists() else None) == before
