"""bench/lossless.py end to end: four real node agents (127.0.0.1-4), examples/hello on each as
one server with four instances, eight callers by name, a lossless restart, then a lossless
publish of examples/hello packed as a .tgz, in batches of two: no call fails and every
instance runs with a new pid. The same load under a plain parallel
restart does fail calls: the contrast that shows the callers would notice a lost call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_lossless_restart_of_four_instances_fails_no_call() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/lossless.py", "--each", "2", "--publish", "--contrast", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    restart, publish, plain = json.loads(proc.stdout)
    assert restart["mode"] == "lossless restart, batches of 2"
    assert publish["mode"] == "lossless publish, batches of 2"
    for lossless in (restart, publish):
        assert lossless["failed"] == 0, lossless["errors"]
        assert lossless["calls"] > 0 and lossless["new_pids"]
    assert plain["new_pids"] and plain["failed"] > 0
