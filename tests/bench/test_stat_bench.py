"""bench/stat.py at its smallest (``--quick``): a StatObj process ingests two windows of a
small fleet and every row lands; a day of rows is generated and one server's curve read back
through tars.tarsquerystat.QueryObj with one point per window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stat_bench_quick() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/stat.py", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ingest, query = json.loads(proc.stdout)
    assert ingest["rows_stored"] == ingest["rows_per_window"] * ingest["windows"]
    assert ingest["core_share_pct"] > 0
    assert query["queries"] == 10 and query["p99_ms"] > 0
