"""bench/publish.py end to end at its smallest: three real node agents (127.0.0.1-3) with
examples/hello deployed, then `tarsus server publish --package` of it with 2 MiB of random
bytes added, in batches of two: the package goes up to the package store, every node downloads
and installs it, and every instance restarts on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_package_published_to_three_nodes_runs_on_each() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/publish.py", "--nodes", "3", "--size-mb", "2", "--batch", "2",
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["package_bytes"] > 2 * 1024 * 1024
    assert result["items_done"] == result["restarted"] == 3
    assert result["failed"] == []
