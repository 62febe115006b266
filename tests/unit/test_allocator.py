"""glibc malloc's thresholds are set once per process for multi-MiB packets, unless the
operator set them, or turned ours off (``tarsus.rpc.allocator``)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
ASK = "from tarsus.rpc import allocator; print(allocator.tune(), allocator.tune())"


def _tuned(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TARSUS_"))}
    done = subprocess.run(
        [sys.executable, "-c", ASK], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_set_once_unless_the_operator_chose() -> None:
    assert _tuned() == "True True"
    assert _tuned(TARSUS_MALLOC_TUNING="off") == "False False"
    assert _tuned(MALLOC_TRIM_THRESHOLD_="1048576") == "False False"
    assert _tuned(MALLOC_MMAP_THRESHOLD_="1048576") == "False False"
