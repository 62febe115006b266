"""``<App.Server>.memsize``: the node reports every server's resident memory to tarsproperty.

As upstream tarsnode's ``ReportMemThread``: for each server with a process, read the resident
pages from ``/proc/<pid>/statm`` (its second field), turn them into kilobytes and report them
as the property ``<App.Server>.memsize`` with policy ``Max`` under the module ``App.Server``, so
the console's property monitor shows each server's memory beside the properties it reports
itself. Samples are taken every *sample_interval* seconds; the property reporter sends each
report interval's largest one.

    memory = MemoryReporter(comm, lambda: [(sp.server_id, sp.pid) for sp in sup.servers()])
    await memory.start()
    ...
    await memory.stop()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tarsus.codec.constants import PROPERTY_OBJ
from tarsus.rpc.periodic import Periodic
from tarsus.rpc.property import Max, PropertyReporter
from tarsus.rpc.stats import DEFAULT_REPORT_INTERVAL_MS, MIN_REPORT_INTERVAL_MS

if TYPE_CHECKING:
    from tarsus.rpc.communicator import Communicator

__all__ = ["DEFAULT_SAMPLE_INTERVAL", "NODE_MODULE", "MemoryReporter", "resident_kb"]

log = logging.getLogger("tarsus.node.memsize")

#: seconds between two looks at every server's memory
DEFAULT_SAMPLE_INTERVAL: Final = 10.0
#: the reporter's own module name (each property is reported under its server's name)
NODE_MODULE: Final = "tars.tarsnode"
_PAGE_KB: Final = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4

#: ``App.Server`` and the pid of its process (0: none) for every server the node runs
ServerPids = Callable[[], Iterable[tuple[str, int]]]


def resident_kb(pid: int, proc: Path = Path("/proc")) -> int | None:
    """Kilobytes of resident memory of process ``pid``; None when it cannot be read (gone,
    not Linux)."""
    try:
        fields = (proc / str(pid) / "statm").read_text().split()
        return int(fields[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return None


class MemoryReporter:
    """Samples the servers' memory into ``<App.Server>.memsize`` properties and reports them.

    *property_obj*: ``tars.tarsproperty.PropertyObj`` through the communicator's locator, or
    a direct proxy string. *report_interval_ms* and *min_report_interval_ms* as
    :class:`tarsus.rpc.property.PropertyReporter`.
    """

    def __init__(
        self,
        communicator: Communicator,
        servers: ServerPids,
        *,
        property_obj: str = PROPERTY_OBJ,
        sample_interval: float = DEFAULT_SAMPLE_INTERVAL,
        report_interval_ms: int = DEFAULT_REPORT_INTERVAL_MS,
        min_report_interval_ms: int = MIN_REPORT_INTERVAL_MS,
    ) -> None:
        self.servers = servers
        self.reporter = PropertyReporter(
            communicator,
            property_obj,
            NODE_MODULE,
            report_interval_ms=report_interval_ms,
            min_report_interval_ms=min_report_interval_ms,
        )
        self._sampling = Periodic(
            "tarsus-node-memsize", sample_interval, self._sample, run_first=True
        )

    async def _sample(self) -> None:
        self.sample()

    def sample(self) -> None:
        """Look at every server's memory now."""
        for server_id, pid in self.servers():
            if pid <= 0:
                continue
            kb = resident_kb(pid)
            if kb is None:
                continue
            name = f"{server_id}.memsize"
            self.reporter.create(name, Max(), master_name=server_id).report(kb)

    async def start(self) -> None:
        self._sampling.start()
        await self.reporter.start()

    async def stop(self, *, send_rest: bool = False) -> None:
        """Stop sampling; the interval in progress is dropped unless ``send_rest``."""
        await self._sampling.stop()
        await self.reporter.stop(send_rest=send_rest)
