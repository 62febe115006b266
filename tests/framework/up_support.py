"""What the ``tarsus up`` tests do as a user does: the ``tarsus`` command in a process of its
own, and a call to the example Hello by name through the registry on 17890.

Starting and stopping ``tarsus up`` itself is :class:`tarsus.testing.TarsusUp`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARSUS = [sys.executable, "-m", "tarsus"]
LOCATOR = "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"


def tarsus(*args: str) -> subprocess.CompletedProcess[str]:
    """``tarsus ARGS``, run from the repository root; the caller checks the outcome."""
    return subprocess.run([*TARSUS, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def call_hello() -> subprocess.CompletedProcess[str]:
    """``tarsus call`` of the example's ``sayHello("x")`` by name (examples/hello)."""
    return tarsus(
        "call", "--locator", LOCATOR, "--idl", str(ROOT / "examples/hello/Hello.tars"),
        "Test.HelloServer.HelloObj", "sayHello", '{"name":"x"}',
    )  # fmt: skip
