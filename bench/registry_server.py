"""The registry process of bench/registry.py: QueryObj + RegistryObj in an Application.

It runs the registry as ``tarsus up`` does (``add_registry`` on an ``Application``, default
``RegistrySettings``, stdlib asyncio), on ephemeral ports of 127.0.0.1, so that its CPU can be
read from outside. It talks to the bench over stdin/stdout, one JSON object per line:

- after ``app.start()`` (which returns once the first full route load is done):
  ``{"event": "ready", "query_port", "registry_port", "open_s", "start_s", "start_cpu_s",
  "servants", "instances", "rss_mb"}``;
- ``load full`` / ``load incr`` on stdin: one route load, answered with
  ``{"event": "loaded", "full", "wall_s", "cpu_s", "max_stall_ms", "instances"}``
  (``cpu_s`` is the process's CPU, all threads, during the load; ``max_stall_ms`` the longest
  the event loop did not run a 2 ms ticker meanwhile);
- ``tasks``: ``{"event": "tasks", "tasks": {name: [seconds, ...]}}``, the wall time of every
  run of the registry's background tasks (``flush``, ``reap``, ``sweep_nodes``) since the last
  ``tasks``;
- ``stop``: the application stops (queued heartbeats are written), ``{"event": "stopped"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from tarsus.framework.registry import RegistrySettings, add_registry
from tarsus.rpc.application import Application
from tarsus.store import open_store

ENDPOINT = "tcp -h 127.0.0.1 -p 0 -t 60000"


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class StallMeter:
    """The longest gap between two runs of a task that asks to run every ``tick`` seconds."""

    def __init__(self, tick: float = 0.002) -> None:
        self.tick = tick
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(self.tick)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - self.tick)
            last = now

    def __enter__(self) -> StallMeter:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()


class TaskTimes:
    """Wall time of each run of the registry's background tasks.

    The methods are wrapped on the instance before ``app.start()``: the loops look them up
    when they start, so they run the wrappers (no tarsus code is changed)."""

    NAMES = ("flush", "reap", "sweep_nodes")

    def __init__(self, registry: Any) -> None:
        self.times: dict[str, list[float]] = {name: [] for name in self.NAMES}
        for name in self.NAMES:
            setattr(registry, name, self._timed(name, getattr(registry, name)))

    def _timed(self, name: str, method: Any) -> Any:
        times = self.times[name]

        async def timed() -> Any:
            t0 = time.perf_counter()
            try:
                return await method()
            finally:
                times.append(time.perf_counter() - t0)

        timed.__name__ = name
        return timed

    def take(self) -> dict[str, list[float]]:
        out = {name: list(v) for name, v in self.times.items()}
        for v in self.times.values():
            v.clear()
        return out


async def main(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    store = await open_store(args.url)
    open_s = time.perf_counter() - t0
    app = Application()
    registry = add_registry(
        app,
        store,
        query_endpoint=ENDPOINT,
        registry_endpoint=ENDPOINT,
        settings=RegistrySettings(advertise_host="127.0.0.1"),
    )
    tasks = TaskTimes(registry)
    t0, c0 = time.perf_counter(), time.process_time()
    await app.start()
    start_s, start_cpu = time.perf_counter() - t0, time.process_time() - c0
    snapshot = registry.snapshot
    emit(
        "ready",
        query_port=registry.adapters[0].port,
        registry_port=registry.adapters[1].port,
        open_s=open_s,
        start_s=start_s,
        start_cpu_s=start_cpu,
        servants=len(snapshot),
        instances=snapshot.instance_count,
        rss_mb=rss_mb(),
    )
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            words = line.split()
            if not words or words[0] == "stop":
                break
            if words[0] == "load":
                full = words[1:] == ["full"]
                with StallMeter() as stall:
                    t0, c0 = time.perf_counter(), time.process_time()
                    await registry.load(full=full)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                emit(
                    "loaded",
                    full=full,
                    wall_s=wall,
                    cpu_s=cpu,
                    max_stall_ms=1000 * stall.worst,
                    instances=registry.snapshot.instance_count,
                )
            elif words[0] == "tasks":
                emit("tasks", tasks=tasks.take())
            elif words[0] == "rss":
                emit("rss", rss_mb=rss_mb(), loads=registry.loads)
            else:
                emit("error", message=f"unknown command {line.strip()!r}")
    finally:
        await app.stop(drain_timeout=2.0)
        await store.close()
    emit("stopped", loads=registry.loads)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the store URL (sqlite:///... or mysql://...)")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(ap.parse_args()))
