"""How a server process runs: which event loop, and how the garbage collector is tuned.

``Application.main`` runs on uvloop when it is installed (``pip install 'tarsus[speed]'``),
on the stdlib asyncio loop otherwise; ``TARSUS_LOOP=asyncio`` (or ``uvloop``) chooses. Once a
server has started, :func:`tune_gc` moves everything allocated so far (modules, generated
codecs, configuration) out of the collector's sight with ``gc.freeze()`` and raises the
first-generation threshold, so that a full collection under load has little to walk
(docs/rpc-server.md "Event loop and GC").
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

LoopName = Literal["uvloop", "asyncio"]

#: The environment variable that chooses the loop (``uvloop`` or ``asyncio``).
LOOP_ENV = "TARSUS_LOOP"
#: Collector thresholds after :func:`tune_gc`: a young collection every 10,000 net container
#: allocations instead of 700 (requests mostly free what they allocate, so few are reached).
GC_THRESHOLDS = (10_000, 10, 10)


def chosen_loop() -> LoopName:
    """The loop ``Application.main`` runs on: ``$TARSUS_LOOP`` if set, else uvloop when it
    can be imported. Asking for uvloop when it is not installed is an error, not a silent
    fallback."""
    wanted = os.environ.get(LOOP_ENV, "").strip().lower()
    if wanted not in ("", "uvloop", "asyncio"):
        raise ValueError(f"{LOOP_ENV}={wanted!r}: expected 'uvloop' or 'asyncio'")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if wanted == "uvloop":
            raise ValueError(
                f"{LOOP_ENV}=uvloop but uvloop is not installed (pip install 'tarsus[speed]')"
            ) from None
        return "asyncio"
    return "uvloop"


def loop_factory(name: LoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], loop: LoopName | None = None) -> T:
    """``asyncio.run(main)`` on the chosen loop (:func:`chosen_loop` when ``loop`` is None)."""
    with asyncio.Runner(loop_factory=loop_factory(loop or chosen_loop())) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio`` (for logs and admin output)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def tune_gc() -> None:
    """Freeze what exists now (it lives as long as the process) and collect less often.

    Called once the server is serving; calling again freezes what was allocated since."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class GcPauses:
    """The collector's pauses, timed with ``gc.callbacks``: how many per generation and the
    longest (what a call that arrives during one waits)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.worst = [0.0, 0.0, 0.0]
        self.total = 0.0
        self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.count[generation] += 1
        self.total += pause
        if pause > self.worst[generation]:
            self.worst[generation] = pause

    def report(self) -> dict[str, Any]:
        return {
            "collections": list(self.count),
            "worst_ms": [round(w * 1000, 3) for w in self.worst],
            "worst_pause_ms": round(max(self.worst) * 1000, 3),
            "total_ms": round(self.total * 1000, 3),
        }
