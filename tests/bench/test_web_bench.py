"""bench/web.py at its smallest (``--quick``): 1,000 instances served, every answer a 200, the
page with its assets within the 500 kB budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_web_bench_quick() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/web.py", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result = json.loads(proc.stdout)
    assert result["crowd"]["errors"] == 0 and result["crowd"]["requests"] == 50
    assert result["page_with_assets_bytes"] <= 500 * 1024
    assert result["page_first"]["p99_ms"] > 0
