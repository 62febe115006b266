"""tarsus.rpc.runtime: which loop a server runs on, and the GC tuning once it serves."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import subprocess
import sys

import pytest

from tarsus.rpc import runtime

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def running_loop() -> str:
    return runtime.loop_name(asyncio.get_running_loop())


def test_the_loop_is_chosen_by_the_environment_then_by_what_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(runtime.LOOP_ENV, raising=False)
    assert runtime.chosen_loop() == ("uvloop" if HAVE_UVLOOP else "asyncio")
    monkeypatch.setenv(runtime.LOOP_ENV, "asyncio")
    assert runtime.chosen_loop() == "asyncio"
    assert runtime.run(running_loop()) == "asyncio"
    monkeypatch.setenv(runtime.LOOP_ENV, "tokio")
    with pytest.raises(ValueError, match="expected 'uvloop' or 'asyncio'"):
        runtime.chosen_loop()
    monkeypatch.setenv(runtime.LOOP_ENV, "UVLOOP")
    if HAVE_UVLOOP:
        assert runtime.chosen_loop() == "uvloop"
        assert runtime.run(running_loop()) == "uvloop"
    else:
        with pytest.raises(ValueError, match="not installed"):
            runtime.chosen_loop()


def test_tune_gc_freezes_what_exists_and_raises_the_thresholds() -> None:
    # In a process of its own: a frozen test process would keep what it froze.
    code = (
        "import gc\nfrom tarsus.rpc import runtime\n"
        "before = gc.get_freeze_count()\nruntime.tune_gc()\n"
        "print(before, gc.get_freeze_count() > 1000, gc.get_threshold() == runtime.GC_THRESHOLDS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["0", "True", "True"]


def test_gc_pauses_counts_and_times_each_collection() -> None:
    with runtime.GcPauses() as pauses:
        gc.collect()
        gc.collect(0)
    gc.collect()  # after the block: not counted
    report = pauses.report()
    assert report["collections"][2] == 1 and report["collections"][0] == 1
    assert report["worst_pause_ms"] == max(report["worst_ms"]) > 0
