"""bench/log.py runs quickly end to end: every line the clients sent is on disk, none dropped,
and the handler's cost is measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_log_bench_writes_every_line_it_sends() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/log.py", "--clients", "4", "--seconds", "1", "--calls", "5000",
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    disk = result["disk"]
    assert disk["sent"] > 0 and disk["dropped"] == 0
    assert disk["on_disk"] == disk["written"] == disk["sent"]
    assert result["handler"]["handle_us"] > 0
