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
  stall of the event loop meanwhile);
- ``tasks``: ``{"event": "tasks", "tasks": {name: [seconds, ...]}}``, the wall time of every
  run of the registry's background tasks (``flush``, ``reap``, ``sweep_nodes``) since the last
  ``tasks``;
- ``stalls``: ``{"event": "stalls", "seconds", "max_stall_ms", "stalls_over_1ms",
  "stalls_over_5ms", "ticks"}`` since the last ``stalls`` (or load): how late the event loop
  ran a task sleeping 1 ms in a loop, all along (:class:`LoopWatch`), ``"cpu"``: the CPU of
  the loop's longest callbacks (:class:`SlowCallbacks`), ``"gc"``: the garbage collector's
  longest pause; with ``--stall-stacks`` also ``"stacks"``, where the loop's thread was
  during the stalls;
- ``stop``: the application stops (queued heartbeats are written), ``{"event": "stopped",
  "loads", "max_stall_ms", "max_stall_at", "cpu_longest_ms", "cpu_longest_in",
  "stopping_stall_ms"}`` (from ``ready`` to ``stop``: the longest stall and when it ended,
  ``time.time()``; the most CPU one callback of the loop used, :class:`SlowCallbacks`; the
  longest garbage-collector pause, :class:`GcPauses`; and apart, the longest stall including
  the stop itself: draining and closing the database).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path
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


class LoopWatch:
    """How late the event loop runs a task that sleeps ``tick`` seconds in a loop: the
    longest delay (a stall: flushes, loads, sweeps, GC, anything holding the loop), and how
    many passed 1 and 5 ms, per window (:meth:`take` starts the next one) and overall.

    With ``stacks``, a thread samples where the loop's thread is while a stall lasts longer
    than ``stacks`` seconds (the switch interval is lowered so that it gets the GIL), and
    :meth:`take` also returns the most frequent stacks (a profile of the stalls)."""

    def __init__(self, tick: float = 0.001, stacks: float = 0.0) -> None:
        self.tick = tick
        self.stacks = stacks
        self.worst_ever = 0.0
        #: wall-clock time (``time.time()``) at the end of the longest stall overall
        self.worst_ever_at = 0.0
        self._reset()
        self._last = time.perf_counter()
        self._task: asyncio.Task[None] | None = None
        self._samples: collections.Counter[str] = collections.Counter()
        self._main = threading.get_ident()
        self._stop = threading.Event()

    def _reset(self) -> None:
        self.worst = 0.0
        self.over_1ms = 0
        self.over_5ms = 0
        self.ticks = 0
        self.started = time.perf_counter()

    async def _run(self) -> None:
        tick = self.tick
        self._last = last = time.perf_counter()
        while True:
            await asyncio.sleep(tick)
            self._last = now = time.perf_counter()
            late = now - last - tick
            last = now
            self.ticks += 1
            if late > 0.001:
                self.over_1ms += 1
                if late > 0.005:
                    self.over_5ms += 1
                if late > self.worst:
                    self.worst = late
                    if late > self.worst_ever:
                        self.worst_ever, self.worst_ever_at = late, time.time()

    def _sample(self) -> None:
        while not self._stop.wait(self.stacks / 4):
            if time.perf_counter() - self._last < self.stacks:
                continue
            frame = sys._current_frames().get(self._main)
            if frame is None:
                continue
            where = traceback.extract_stack(frame)[-12:]
            self._samples[
                " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(where))
            ] += 1

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-watch")
        if self.stacks:
            sys.setswitchinterval(self.stacks / 4)
            threading.Thread(target=self._sample, daemon=True, name="loop-watch").start()

    def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()

    def take(self) -> dict[str, Any]:
        """This window's figures (and stall stacks); the next window starts."""
        out: dict[str, Any] = {
            "seconds": time.perf_counter() - self.started,
            "max_stall_ms": 1000 * self.worst,
            "stalls_over_1ms": self.over_1ms,
            "stalls_over_5ms": self.over_5ms,
            "ticks": self.ticks,
        }
        if self.stacks:
            out["stacks"] = self._samples.most_common(15)
            self._samples.clear()
        self._reset()
        return out


class SlowCallbacks:
    """The CPU the event loop's thread spent in each callback (so time the process waited
    for a CPU on a busy machine does not count, unlike :class:`LoopWatch`): the longest, and
    per callback (a task's coroutine and line, or a function) over ``limit`` seconds, how
    many, their total and the longest. It wraps ``asyncio.Handle._run`` in this process."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.seen: dict[str, list[float]] = {}
        self.longest = 0.0
        self.longest_in = ""
        self.longest_ever = (0.0, "")
        handle_run = asyncio.Handle._run
        clock = time.thread_time
        seen = self.seen

        def timed_run(handle: asyncio.Handle) -> None:
            c0 = clock()
            handle_run(handle)
            spent = clock() - c0
            if spent > limit:
                name = self.name_of(handle)
                if spent > self.longest:
                    self.longest, self.longest_in = spent, name
                    if spent > self.longest_ever[0]:
                        self.longest_ever = (spent, name)
                entry = seen.setdefault(name, [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += spent
                entry[2] = max(entry[2], spent)

        asyncio.Handle._run = timed_run  # type: ignore[method-assign]

    @staticmethod
    def name_of(handle: asyncio.Handle) -> str:
        callback = handle._callback  # type: ignore[attr-defined]
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            coro = task.get_coro()
            frame = getattr(coro, "cr_frame", None)
            where = ""
            if frame is not None:
                where = f" @{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
            return f"task {getattr(coro, '__qualname__', coro)}{where}"
        return getattr(callback, "__qualname__", repr(callback))

    def take(self) -> dict[str, Any]:
        """``longest_ms`` (over ``limit``, else 0), where, and the callbacks over ``limit``
        (name, count, total ms, longest ms), most total first; the next window starts."""
        out = [(k, int(n), 1000 * total, 1000 * most) for k, (n, total, most) in self.seen.items()]
        out.sort(key=lambda x: -x[2])
        taken = {"longest_ms": 1000 * self.longest, "longest_in": self.longest_in}
        self.seen.clear()
        self.longest, self.longest_in = 0.0, ""
        return {**taken, "over": out[:15]}


class GcPauses:
    """The longest pause of the cyclic garbage collector, per window and since ``ready``."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_gen = -1
        self.longest_ever = 0.0
        self.longest_ever_gen = -1
        self.collections = 0
        self.per_gen = [0, 0, 0]
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        pause = time.perf_counter() - self._t0
        self.collections += 1
        if pause > self.longest:
            self.longest, self.longest_gen = pause, info.get("generation", -1)
        if pause > self.longest_ever:
            self.longest_ever, self.longest_ever_gen = pause, info.get("generation", -1)
        self.per_gen[info.get("generation", 0) % 3] += 1

    def take(self) -> dict[str, Any]:
        out = {
            "longest_ms": 1000 * self.longest,
            "longest_generation": self.longest_gen,
            "collections": self.collections,
            "per_generation": list(self.per_gen),
        }
        self.longest, self.longest_gen, self.collections = 0.0, -1, 0
        self.per_gen = [0, 0, 0]
        return out


class WorkerThreads:
    """Keeps the process's threads other than the event loop's on ``cpu``.

    The bench pins the registry process to one CPU, which a registry in production is not:
    there, the threads doing its database work (aiosqlite's, one per connection) run on
    another core while the event loop answers. Pinned along with the loop, each statement
    they run takes the loop's CPU for a millisecond or two, which on MariaDB is done by
    ``mariadbd`` on the load generators' CPU. Threads are looked at every ``every`` seconds
    (aiosqlite's live as long as their connection)."""

    def __init__(self, cpu: int, every: float = 0.2) -> None:
        self.cpu = cpu
        self.every = every
        self.main = threading.get_native_id()
        self.pinned: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def pin(self) -> None:
        for name in os.listdir("/proc/self/task"):
            tid = int(name)
            if tid != self.main and tid not in self.pinned:
                try:
                    os.sched_setaffinity(tid, {self.cpu})
                except OSError:
                    continue  # gone meanwhile
                self.pinned.add(tid)

    async def _run(self) -> None:
        while True:
            self.pin()
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="worker-cpu")


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

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await method(*args, **kwargs)
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
    if args.worker_cpu is not None:
        WorkerThreads(args.worker_cpu).start()
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
    watch = LoopWatch(stacks=args.stall_stacks / 1000)
    watch.start()
    slow = SlowCallbacks(args.cpu_limit / 1000)
    pauses = GcPauses()
    t0, c0 = time.perf_counter(), time.process_time()
    await app.start()
    start_s, start_cpu = time.perf_counter() - t0, time.process_time() - c0
    watch.take()
    watch.worst_ever = 0.0  # from here on: serving
    slow.take()
    slow.longest_ever = (0.0, "")
    pauses.take()
    pauses.longest_ever = 0.0
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
    serving_worst, serving_cpu, serving_gc = 0.0, (0.0, ""), (0.0, -1)
    serving_worst_at = 0.0
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            words = line.split()
            if not words or words[0] == "stop":
                # the run's figures end here: what stopping (draining, closing the database)
                # holds the loop for is no lookup's wait
                serving_worst, serving_cpu = watch.worst_ever, slow.longest_ever
                serving_worst_at = watch.worst_ever_at
                serving_gc = (pauses.longest_ever, pauses.longest_ever_gen)
                break
            if words[0] == "load":
                full = words[1:] == ["full"]
                watch.take()
                slow.take()
                t0, c0 = time.perf_counter(), time.process_time()
                await registry.load(full=full)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                emit(
                    "loaded",
                    full=full,
                    wall_s=wall,
                    cpu_s=cpu,
                    max_stall_ms=watch.take()["max_stall_ms"],
                    cpu=slow.take(),
                    instances=registry.snapshot.instance_count,
                )
            elif words[0] == "tasks":
                emit("tasks", tasks=tasks.take())
            elif words[0] == "stalls":
                emit("stalls", **watch.take(), cpu=slow.take(), gc=pauses.take())
            elif words[0] == "rss":
                emit("rss", rss_mb=rss_mb(), loads=registry.loads)
            else:
                emit("error", message=f"unknown command {line.strip()!r}")
    finally:
        await app.stop(drain_timeout=2.0)
        await store.close()
        watch.stop()
    emit(
        "stopped",
        loads=registry.loads,
        max_stall_ms=1000 * serving_worst,
        max_stall_at=serving_worst_at,
        cpu_longest_ms=1000 * serving_cpu[0],
        cpu_longest_in=serving_cpu[1],
        gc_longest_ms=1000 * serving_gc[0],
        gc_longest_generation=serving_gc[1],
        stopping_stall_ms=1000 * watch.worst_ever,
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the store URL (sqlite:///... or mysql://...)")
    ap.add_argument(
        "--stall-stacks",
        type=float,
        default=0.0,
        metavar="MS",
        help="sample the loop thread's stack during stalls longer than MS (a diagnosis; it "
        "lowers the switch interval and costs CPU)",
    )
    ap.add_argument(
        "--cpu-limit",
        type=float,
        default=0.5,
        metavar="MS",
        help="list the event loop's callbacks that used more CPU than MS (default 0.5)",
    )
    ap.add_argument(
        "--worker-cpu",
        type=int,
        metavar="CPU",
        help="run every thread but the event loop's on this CPU (see WorkerThreads)",
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(ap.parse_args()))
