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
    """

    def __init__(
        self,
        name: str,
        interval: float | Callable[[], float],
        action: Callable[[], Awaitable[object]],
        *,
        run_first: bool = False,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.action = action
        self.run_first = run_first
        self.on_error = on_error
        #: rounds completed (successful or not)
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop (no-op when it runs)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it to end (a round in progress is cancelled)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def run_now(self) -> None:
        """Run the next round now instead of at the end of the current wait."""
        self._wake.set()

    def _seconds(self) -> float:
        interval = self.interval
        return float(interval() if callable(interval) else interval)

    async def _run(self) -> None:
        if not self.run_first:
            await self._wait()
        while True:
            try:
                await self.action()
            except Exception as e:  # one failed round must not end the loop
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
