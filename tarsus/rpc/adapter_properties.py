"""The properties every server reports about its adapters, as TarsCpp's servers do.

TarsCpp's ``Application::bindAdapter`` creates three properties per adapter when the config
names a property service, and ``ServantHandle::heartbeat`` samples two of them every
``HEART_BEAT_INTERVAL`` (10 s):

- ``<adapter>.queue`` (``Avg``): requests received and not yet answered (TarsCpp: the
  receive queue's length; ours: the adapter's calls in flight, which is what waits);
- ``<adapter>.connectRate`` (``Avg``): open connections per thousand of ``maxconns``;
- ``<adapter>.timeoutNum`` (``Sum``): requests dropped because they waited in the queue longer
  than ``queuetimeout`` (or their caller's timeout) before a servant took them.

The adapter name is the config's (``Test.HelloServer.HelloObjAdapter``), so the console's
property monitor shows the same rows for a Python server as for a C++ one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from tarsus.rpc.periodic import Periodic
from tarsus.rpc.property import Avg, Property, PropertyReporter, Sum

if TYPE_CHECKING:
    from tarsus.rpc.server import Adapter

__all__ = ["SAMPLE_INTERVAL", "AdapterProperties"]

#: seconds between samples (TarsCpp ``HEART_BEAT_INTERVAL``)
SAMPLE_INTERVAL: Final = 10.0


class _Sampled:
    """One adapter's three properties and the queue-timeout count last reported."""

    def __init__(self, adapter: Adapter, reporter: PropertyReporter) -> None:
        self.adapter = adapter
        self.queue: Property = reporter.create(f"{adapter.name}.queue", Avg())
        self.connect_rate: Property = reporter.create(f"{adapter.name}.connectRate", Avg())
        self.timeout_num: Property = reporter.create(f"{adapter.name}.timeoutNum", Sum())
        self.timeouts_seen = adapter.queue_timeouts

    def sample(self) -> None:
        adapter = self.adapter
        self.queue.report(adapter.inflight)
        self.connect_rate.report(len(adapter.connections) * 1000 // max(1, adapter.max_conns))
        timeouts = adapter.queue_timeouts
        if timeouts > self.timeouts_seen:
            self.timeout_num.report(timeouts - self.timeouts_seen)
        self.timeouts_seen = timeouts


class AdapterProperties:
    """Samples ``adapters`` into ``reporter`` every *interval* seconds until :meth:`stop`."""

    def __init__(
        self,
        reporter: PropertyReporter,
        adapters: Iterable[Adapter],
        *,
        interval: float = SAMPLE_INTERVAL,
    ) -> None:
        self._sampled = [_Sampled(adapter, reporter) for adapter in adapters]
        self._loop = Periodic("tarsus-adapter-properties", interval, self._sample)

    async def _sample(self) -> None:
        self.sample()

    def sample(self) -> None:
        """Take one sample of every adapter now."""
        for sampled in self._sampled:
            sampled.sample()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
