"""The machine's floor for bench/registry.py's event-loop stalls: an empty event loop.

The registry bench calls a *stall* how late its registry's event loop woke a task sleeping
1 ms (``registry_server.LoopWatch``). This runs that same watch in a process that does nothing
else, for ``--duration`` seconds, and prints one JSON line (``LoopWatch.take()``'s figures).
bench/registry.py runs it pinned to the registry's CPU before each run, with nothing of the
bench running: what it finds is the machine's (other processes, kernel threads, the
hypervisor), and no registry can stall less than it.

    .venv/bin/python bench/loop_floor.py --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from registry_server import LoopWatch


async def floor(duration: float) -> dict[str, Any]:
    watch = LoopWatch()
    watch.start()
    await asyncio.sleep(0.1)
    watch.take()  # from here on
    await asyncio.sleep(duration)
    watch.stop()
    return watch.take()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(floor(args.duration))))


if __name__ == "__main__":
    main()
