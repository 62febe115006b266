"""The ``tarsus`` command against a real ``tarsus up`` (started by the test with
:class:`tarsus.testing.TarsusUp`), as an operator runs it: a process of its own, talking to the
admin registry on upstream's port 12000 and nothing the caller's environment names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ADMIN = "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 12000"
NODE = "127.0.0.1"


def tarsus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``tarsus ARGS --admin ADMIN`` run in ``cwd`` (its cache there); the caller checks it."""
    skip = ("TARSUS_ADMIN", "TARSUS_LOCATOR", "TARSUS_PATCH")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env["TARSUS_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "tarsus", *args, "--admin", ADMIN],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
