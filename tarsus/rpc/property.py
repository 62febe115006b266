"""Custom metrics ("properties") for tarsproperty (``PropertyF.reportPropMsg``), as TarsCpp's
``PropertyReport`` keeps them.

A property is a named series of integer samples, summarised each report interval by one or
more policies::

    props = PropertyReporter(comm, "tars.tarsproperty.PropertyObj", "Test.HelloServer")
    queue = props.create("queueLength", Avg(), Max())
    latency = props.create("dbLatency", Distr([5, 10, 50, 100]), Count())
    queue.report(17)
    await props.start()

Every interval each property is sent as ``StatPropMsgHead{moduleName, propertyName, set…} →
[StatPropInfo{policy, value}]``, with the values as strings in upstream's formats:

- ``Sum``: the sum; ``Count``: the number of samples;
- ``Avg``: sum/count as a decimal (``"2.5"``, ``"3"``; ``"0"`` without samples);
- ``Max``: the largest sample (``"0"`` without samples);
- ``Min``: the smallest non-zero sample; not sent when there is none (as C++);
- ``Distr``: ``"5|n,10|n,…,max|n"``: how many samples fell below each bound (the first bound
  greater than the sample), then how many reached none.

Properties are sent every interval even when nothing was reported (zeros), as C++ does, so the
console shows quiet periods. ``report`` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from tarsus.protocol.gen import PropertyF
from tarsus.rpc.periodic import Periodic
from tarsus.rpc.stats import (
    DEFAULT_MAX_REPORT_SIZE,
    DEFAULT_REPORT_INTERVAL_MS,
    DEFAULT_REPORT_TIMEOUT_MS,
    MAX_NAME_LEN,
    MAX_REPORT_SIZE,
    MIN_REPORT_INTERVAL_MS,
    MIN_REPORT_SIZE,
    MIN_REPORT_TIMEOUT_MS,
    WARN_EVERY,
    limit,
    parse_set_division,
    split_by_size,
)

if TYPE_CHECKING:
    from tarsus.rpc.communicator import Communicator

__all__ = [
    "Avg",
    "Count",
    "Distr",
    "Max",
    "Min",
    "Policy",
    "Property",
    "PropertyReporter",
    "Sum",
    "format_decimal",
]

log = logging.getLogger("tarsus.rpc.property")

#: ``StatPropMsgHead.iPropertyVer`` sent by current TarsCpp.
PROPERTY_VERSION: Final = 2


def format_decimal(value: float) -> str:
    """A double as TarsCpp's ``TC_Common::tostr<double>`` writes it: six decimals, trailing
    zeros and a bare point dropped (``2.5``, ``3``, ``0.333333``)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class Policy:
    """How a property's samples are summarised over one interval."""

    name: str = ""

    def add(self, value: int) -> None:
        raise NotImplementedError

    def take(self) -> str | None:
        """The interval's value as a string (None: nothing to send), and start afresh."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sum(Policy):
    name = "Sum"

    def __init__(self) -> None:
        self._sum = 0

    def add(self, value: int) -> None:
        self._sum += value

    def take(self) -> str:
        value, self._sum = self._sum, 0
        return str(value)


class Count(Policy):
    name = "Count"

    def __init__(self) -> None:
        self._count = 0

    def add(self, value: int) -> None:
        self._count += 1

    def take(self) -> str:
        value, self._count = self._count, 0
        return str(value)


class Avg(Policy):
    name = "Avg"

    def __init__(self) -> None:
        self._sum = 0
        self._count = 0

    def add(self, value: int) -> None:
        self._sum += value
        self._count += 1

    def take(self) -> str:
        total, count = self._sum, self._count
        self._sum = self._count = 0
        return format_decimal(total / count) if count else "0"


class Max(Policy):
    """The largest sample; ``"0"`` for an interval without samples."""

    name = "Max"

    def __init__(self) -> None:
        self._max: int | None = None

    def add(self, value: int) -> None:
        if self._max is None or value > self._max:
            self._max = value

    def take(self) -> str:
        value, self._max = self._max, None
        return str(value or 0)


class Min(Policy):
    """The smallest non-zero sample (C++ ignores zeros); not sent when there is none."""

    name = "Min"

    def __init__(self) -> None:
        self._min = 0

    def add(self, value: int) -> None:
        if value and (not self._min or value < self._min):
            self._min = value

    def take(self) -> str | None:
        value, self._min = self._min, 0
        return str(value) if value else None


class Distr(Policy):
    """Counts per bucket: a sample counts under the first bound greater than it, or ``max``."""

    name = "Distr"

    def __init__(self, bounds: Iterable[int]) -> None:
        self.bounds = tuple(sorted(set(bounds)))
        if not self.bounds:
            raise ValueError("Distr needs at least one bound")
        self._counts = [0] * (len(self.bounds) + 1)

    def add(self, value: int) -> None:
        self._counts[bisect_right(self.bounds, value)] += 1

    def take(self) -> str:
        counts, self._counts = self._counts, [0] * (len(self.bounds) + 1)
        parts = [f"{bound}|{n}" for bound, n in zip(self.bounds, counts, strict=False)]
        parts.append(f"max|{counts[-1]}")
        return ",".join(parts)

    def __repr__(self) -> str:
        return f"Distr({list(self.bounds)})"


class Property:
    """One named property: ``report(value)`` feeds every policy."""

    def __init__(self, name: str, policies: Sequence[Policy], master_name: str = "") -> None:
        if not policies:
            raise ValueError(f"property {name!r} needs at least one policy")
        names = [p.name for p in policies]
        if len(set(names)) != len(names):
            raise ValueError(f"property {name!r}: a policy is given twice ({', '.join(names)})")
        self.name = name
        self.policies = tuple(policies)
        #: reported under this module name instead of the reporter's (C++ ``setMasterName``)
        self.master_name = master_name
        self._lock = threading.Lock()

    def report(self, value: int) -> None:
        with self._lock:
            for policy in self.policies:
                policy.add(value)

    def take(self) -> list[tuple[str, str]]:
        """``[(policy, value), ...]`` for the interval, and start afresh."""
        with self._lock:
            taken = [(p.name, p.take()) for p in self.policies]
        return [(name, value) for name, value in taken if value is not None]

    def __repr__(self) -> str:
        return f"Property({self.name!r}, {list(self.policies)!r})"


class PropertyReporter:
    """Holds this program's properties and reports them to tarsproperty.

    Arguments as :class:`tarsus.rpc.stats.StatReporter`, with *property_obj* the config's
    ``<client><property>`` (``tars.tarsproperty.PropertyObj``).
    """

    def __init__(
        self,
        communicator: Communicator,
        property_obj: str,
        module_name: str,
        *,
        report_interval_ms: int = DEFAULT_REPORT_INTERVAL_MS,
        report_timeout_ms: int = DEFAULT_REPORT_TIMEOUT_MS,
        max_report_size: int = DEFAULT_MAX_REPORT_SIZE,
        min_report_interval_ms: int = MIN_REPORT_INTERVAL_MS,
        set_division: str | None = None,
    ) -> None:
        if not module_name.strip("\r\t"):
            raise ValueError("module_name is empty: pass the config's <client><modulename>")
        self.property_obj = property_obj
        self.module_name = limit(module_name, MAX_NAME_LEN)
        self.report_interval_ms = max(min_report_interval_ms, report_interval_ms)
        self.report_timeout_ms = max(MIN_REPORT_TIMEOUT_MS, report_timeout_ms)
        if not MIN_REPORT_SIZE <= max_report_size <= MAX_REPORT_SIZE:
            max_report_size = MAX_REPORT_SIZE
        self.max_report_size = max_report_size
        if set_division is None:
            set_division = communicator.setdivision if communicator.enableset else ""
        self.set_info = parse_set_division(set_division) if set_division else None
        self._proxy = communicator.string_to_proxy(
            PropertyF.PropertyFProxy, property_obj
        ).with_options(timeout_ms=self.report_timeout_ms)
        self._properties: dict[str, Property] = {}
        # Reports on a grid of report_interval_ms from start, as TarsCpp's StatReport::run.
        self._reporting = Periodic(
            "tarsus-property-report", self.report_interval_ms / 1000.0, self._tick, fixed_rate=True
        )
        self._sending: set[asyncio.Task[None]] = set()
        self._last_warning = float("-inf")
        #: reportPropMsg calls made / failed
        self.sent = 0
        self.failed = 0

    def create(self, name: str, *policies: Policy, master_name: str = "") -> Property:
        """The property called ``name``, made with these policies on first use (as C++
        ``createPropertyReport``, a second call returns the first one unchanged)."""
        prop = self._properties.get(name)
        if prop is None:
            prop = self._properties[name] = Property(name, policies, master_name)
        return prop

    def add(self, prop: Property) -> Property:
        """Report ``prop`` from now on; the one already held when its name is taken."""
        return self._properties.setdefault(prop.name, prop)

    def get(self, name: str) -> Property | None:
        return self._properties.get(name)

    @property
    def properties(self) -> list[Property]:
        return list(self._properties.values())

    def take(self) -> dict[PropertyF.StatPropMsgHead, PropertyF.StatPropMsgBody]:
        """Every property's interval as ``{StatPropMsgHead: StatPropMsgBody}``."""
        tars = PropertyF
        name, area, group = self.set_info or ("", "", "")
        suffix = f".{name}{area}{group}" if self.set_info is not None else ""
        out: dict[PropertyF.StatPropMsgHead, PropertyF.StatPropMsgBody] = {}
        for prop in list(self._properties.values()):
            head = tars.StatPropMsgHead(
                moduleName=(prop.master_name or self.module_name) + suffix,
                ip="",  # filled in by tarsproperty (the caller's address)
                propertyName=prop.name,
                setName=name,
                setArea=area,
                setID=group,
                iPropertyVer=PROPERTY_VERSION,
            )
            infos = [tars.StatPropInfo(policy=p, value=v) for p, v in prop.take()]
            out[head] = tars.StatPropMsgBody(vInfo=infos)
        return out

    async def flush(self) -> None:
        """Send every property's interval; returns when answered or failed."""
        batches = split_by_size(self.take().items(), self.max_report_size)
        if batches:
            await asyncio.gather(*(self._send(batch) for batch in batches))

    async def _send(
        self, batch: dict[PropertyF.StatPropMsgHead, PropertyF.StatPropMsgBody]
    ) -> None:
        self.sent += 1
        try:
            await self._proxy.reportPropMsg(batch)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the property service's trouble must never become ours
            self.failed += 1
            now = time.monotonic()
            if now - self._last_warning >= WARN_EVERY:
                self._last_warning = now
                log.warning(
                    "property %s: %d rows dropped: %s (not logged again for %ds)",
                    self.property_obj,
                    len(batch),
                    e,
                    WARN_EVERY,
                )
            else:
                log.debug("property %s: %d rows dropped: %s", self.property_obj, len(batch), e)

    async def start(self) -> None:
        """Report every ``report_interval_ms`` in the background until ``stop``."""
        self._reporting.start()

    async def _tick(self) -> None:
        # A slow service never delays the next round: each flush runs on its own.
        task: asyncio.Task[None] = asyncio.ensure_future(self.flush())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def stop(self, *, send_rest: bool = True) -> None:
        """Stop the background reports and send the last interval (unless ``send_rest`` is
        false: a node stopping does not wait for a property service that may be gone)."""
        await self._reporting.stop()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if send_rest:
            await self.flush()

    @property
    def running(self) -> bool:
        return self._reporting.running
