"""``Periodic``: one background loop, started and stopped one way.

Every long-lived part of Tarsus has work to repeat on a timer: the registry's route loads and
node sweeps (upstream ``ReapThread``, ``CheckNodeThread``), the node's keepAlive and state
sync (upstream ``KeepAliveThread``), heartbeats, task sweeps. Each is a ``Periodic``::

    self.sweep = Periodic("tarsus-registry-sweep", 15.0, self.sweep_nodes)
    self.sweep.start()        # in the service's start
    ...
    await self.sweep.stop()   # in its stop: cancelled, awaited, nothing left behind

A failing round is logged (or handed to ``on_error``) and the loop goes on at its next
tick: a database outage or a bug in one round never ends the loop. ``interval`` may be a
function, read before every wait, for loops whose pace changes (a node retries its
registration quickly, then beats every 10 s). :meth:`run_now` cuts the current wait short.

By default the next round comes ``interval`` seconds after a round ends. ``fixed_rate=True``
keeps the rounds on a grid of ``interval`` from :meth:`start` instead (ticks missed while a
round ran late are skipped, not caught up): the stat and property reporters report on such a
grid, as TarsCpp's ``StatReport::run`` does. :meth:`finish` ends a loop without cancelling
the round in progress and without waiting for it (keepActiving, sent while an application
initialises, lets its last call finish).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Backoff", "Periodic"]

log = logging.getLogger("tarsus.periodic")


class Periodic:
    """Call ``action`` every ``interval`` seconds in a task of its own until :meth:`stop`.

    ``run_first``: the first round runs at :meth:`start` (else after one interval).
    ``on_error(exc)`` takes what a round raised; by default it is logged with its traceback.
    ``fixed_rate``: rounds at ``interval`` steps from the start, not ``interval`` after a round.
    """

    def __init__(
        self,
        name: str,
        interval: float | Callable[[], float],
        action: Callable[[], Awaitable[object]],
        *,
        run_first: bool = False,
        on_error: Callable[[Exception], None] | None = None,
        fixed_rate: bool = False,
    ) -> None:
        self.name = name
        self.interval = interval
        self.action = action
        self.run_first = run_first
        self.on_error = on_error
        self.fixed_rate = fixed_rate
        #: rounds completed (successful or not)
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._finishing = False
        self._cancelled = False  # stop() cancelled the loop
        self._due = 0.0  # loop time of the next round (fixed_rate)
        self._woken = False  # the last wait was cut short by run_now() / finish()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop (no-op when it runs)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._finishing = self._cancelled = False
            self._due = loop.time()
            self._woken = False
            self._task = loop.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it to end (a round in progress is cancelled). A round
        that turns the cancellation into another error (a database driver interrupted in a
        query may) still ends the loop: no round starts after this."""
        task, self._task = self._task, None
        if task is None:
            return
        self._finishing = self._cancelled = True
        self._wake.set()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller of stop() is being cancelled itself: not ours to swallow

    def finish(self) -> None:
        """End the loop once the round in progress (if any) is over, without cancelling it or
        waiting for it; no round starts after this. :meth:`stop` still cancels and awaits."""
        self._finishing = True
        self._wake.set()

    def run_now(self) -> None:
        """Run the next round now instead of at the end of the current wait."""
        self._wake.set()

    def _seconds(self) -> float:
        interval = self.interval
        seconds = float(interval() if callable(interval) else interval)
        if not self.fixed_rate:
            return seconds
        now = asyncio.get_running_loop().time()
        # The wait before reached its tick: on to the next (a run_now() before it keeps it).
        if not self._woken or now >= self._due:
            self._due = max(self._due + seconds, now)
        return max(0.0, self._due - now)

    async def _run(self) -> None:
        if not self.run_first:
            await self._wait()
        while not self._finishing:
            try:
                await self.action()
            except Exception as e:  # one failed round must not end the loop
                if self._cancelled:  # stopped: the error is the round being cut off
                    break
                if self.on_error is not None:
                    self.on_error(e)
                else:
                    log.exception("%s: round failed", self.name)
            self.rounds += 1
            await self._wait()

    async def _wait(self) -> None:
        # A run_now() that came during the round (or before the loop started) is not lost.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._seconds()):
                await self._wake.wait()
        self._woken = self._wake.is_set()
        self._wake.clear()


class Backoff:
    """Waits that double from ``first`` up to ``limit``: the pace of a loop retrying what has
    not answered yet (an ``interval`` function returns :meth:`next` until it succeeds, then
    calls :meth:`reset`)."""

    def __init__(self, first: float, limit: float) -> None:
        self.first = first
        self.limit = limit
        self._next = first

    def next(self) -> float:
        wait = self._next
        self._next = min(wait * 2, self.limit)
        return wait

    def reset(self) -> None:
        self._next = self.first
