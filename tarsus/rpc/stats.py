"""Call statistics for tarsstat (``StatF.reportMicMsg``), collected as upstream collects them.

Every Tars server reports how its calls went, from both ends of each call:

- **client side** (``bFromClient=true``): per callee ``App.Server``, function, endpoint and
  return code, the calls this process made (``attach_client``: a communicator observer);
- **server side** (``bFromClient=false``): per function, caller IP and return code, the
  requests this process answered (``attach_server``: an adapter's ``stats_hook``).

Counts and latencies are summed in memory and sent every ``report-interval`` (60 s, at least
10 s) as ``map<StatMicMsgHead, StatMicMsgBody>``, split so each ``reportMicMsg`` stays within
``max-report-size`` (1400 bytes). Sending is asynchronous with a 5 s timeout; a stat service
that is down or slow only costs the batch it was sent (logged at most once a minute).

The per-call cost is one dict lookup and a few integer adds: the observers key plain tuples of
what they were given and keep a list of counters per key; heads and bodies are built only
when a report is sent. How the keys map onto upstream's heads, and where we differ from the
C++ and Go clients, is in ``docs/stats.md``.

    stats = StatReporter(comm, "tars.tarsstat.StatObj", "Test.HelloServer")
    stats.attach_client(comm)
    stats.attach_server(adapter)
    await stats.start()
    ...
    await stats.stop()  # sends what is left
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Final, TypeVar

import tarsus
from tarsus.codec import encode
from tarsus.protocol.gen import StatF
from tarsus.rpc.client import CallRecord
from tarsus.rpc.errors import Ret
from tarsus.rpc.periodic import Periodic

if TYPE_CHECKING:
    from tarsus.rpc.communicator import Communicator
    from tarsus.rpc.current import Current
    from tarsus.rpc.server import Adapter

__all__ = [
    "DEFAULT_MAX_REPORT_SIZE",
    "DEFAULT_REPORT_INTERVAL_MS",
    "DEFAULT_REPORT_TIMEOUT_MS",
    "INTERVAL_BOUNDS",
    "MASTER_ONE_WAY",
    "MASTER_STAT_FROM_SERVER",
    "MAX_IP_LEN",
    "MAX_NAME_LEN",
    "MAX_REPORT_SIZE",
    "MIN_REPORT_INTERVAL_MS",
    "MIN_REPORT_SIZE",
    "MIN_REPORT_TIMEOUT_MS",
    "WARN_EVERY",
    "StatReporter",
    "limit",
    "parse_set_division",
    "slave_name",
    "split_by_size",
]

log = logging.getLogger("tarsus.rpc.stats")

#: ``report-interval``: ms between reports (C++ ``StatReport``), and its floor.
DEFAULT_REPORT_INTERVAL_MS: Final = 60_000
MIN_REPORT_INTERVAL_MS: Final = 10_000
#: ``report-timeout``: timeout of one ``reportMicMsg`` call, and its floor (C++ clamps up).
DEFAULT_REPORT_TIMEOUT_MS: Final = 5_000
MIN_REPORT_TIMEOUT_MS: Final = 5_000
#: ``max-report-size``: bytes of encoded arguments per ``reportMicMsg``. As C++, a value
#: outside [MIN_REPORT_SIZE, MAX_REPORT_SIZE] falls back to the maximum.
MAX_REPORT_SIZE: Final = 1400
MIN_REPORT_SIZE: Final = 500
DEFAULT_MAX_REPORT_SIZE: Final = MAX_REPORT_SIZE

#: Latency buckets (ms) of ``StatMicMsgBody.intervalCount``, C++ ``resetStatInterv``. A
#: successful call counts in the first bucket whose bound is greater than its time; calls of
#: 3000 ms or more count in none (C++; the Node client would put them under 3000).
INTERVAL_BOUNDS: Final[tuple[int, ...]] = (5, 10, 50, 100, 200, 500, 1000, 2000, 3000)

#: ``masterName`` of server-side reports: answered calls, and one-way calls (TarsGo).
MASTER_STAT_FROM_SERVER: Final = "stat_from_server"
MASTER_ONE_WAY: Final = "one_way_client"

#: C++ ``StatReport::MAX_MASTER_NAME_LEN`` / ``MAX_MASTER_IP_LEN``.
MAX_NAME_LEN: Final = 127
MAX_IP_LEN: Final = 50
#: At most one warning about an unreachable stat service per this many seconds.
WARN_EVERY: Final = 60.0

# A counter slot is a plain list of ints, indexed by these (heads and bodies only at flush).
_COUNT, _TIMEOUT, _EXEC, _TOTAL, _MAX, _MIN = 0, 1, 2, 3, 4, 5
_BUCKET0: Final = 6  # then one slot per bound, then one for "3000 ms or more"
_SLOT_LEN: Final = _BUCKET0 + len(INTERVAL_BOUNDS) + 1
_TIMEOUT_CODE: Final = int(Ret.INVOKE_TIMEOUT)
#: Encoded bytes of ``reportMicMsg``'s arguments besides the map entries: map head byte,
#: its length (an int, up to 5 bytes) and the bool (up to 2 bytes).
_ARGS_OVERHEAD: Final = 8
#: A map entry's key and value are structs: a begin byte and an end byte each.
_ENTRY_OVERHEAD: Final = 4

_ClientKey = tuple[str, str, str, int, str, int]  # obj, func, host, port, set, code
_ServerKey = tuple[str, int, str, int]  # func, packet type, caller ip, code
_Report = dict[StatF.StatMicMsgHead, StatF.StatMicMsgBody]  # one reportMicMsg map
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def limit(text: str, max_len: int) -> str:
    """C++ ``trimAndLimitStr``: strip ``\\r`` and ``\\t`` at both ends, cut to ``max_len``
    bytes (never inside a UTF-8 character)."""
    text = text.strip("\r\t")
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= max_len:
        return text
    return data[:max_len].decode("utf-8", "ignore")


def parse_set_division(division: str) -> tuple[str, str, str] | None:
    """``"app.sz.1"`` → ``("app", "sz", "1")``; None unless it has three parts and neither the
    name nor the area is ``*`` (C++ ``StatReport::divison2SetInfo``)."""
    parts = division.split(".")
    if len(parts) != 3 or parts[0] == "*" or parts[1] == "*":
        return None
    return parts[0], parts[1], parts[2]


def slave_name(servant_name: str) -> str:
    """``App.Server.Obj`` → ``App.Server``: the name cut before its second dot (C++
    ``AdapterProxy::getSlaveName``)."""
    first = servant_name.find(".")
    if first < 0:
        return servant_name
    second = servant_name.find(".", first + 1)
    return servant_name if second < 0 else servant_name[:second]


def split_by_size(entries: Iterable[tuple[K, V]], max_size: int) -> list[dict[K, V]]:
    """Pack map entries, in order, into maps whose encoded report stays within ``max_size``.

    Each entry costs its key and value encoded plus the struct markers; each map also carries
    ``_ARGS_OVERHEAD`` bytes. An entry too big on its own travels alone.
    """
    batches: list[dict[K, V]] = []
    batch: dict[K, V] = {}
    size = _ARGS_OVERHEAD
    for key, value in entries:
        cost = len(encode(key)) + len(encode(value)) + _ENTRY_OVERHEAD
        if batch and size + cost > max_size:
            batches.append(batch)
            batch = {}
            size = _ARGS_OVERHEAD
        batch[key] = value
        size += cost
    if batch:
        batches.append(batch)
    return batches


def _new_slot() -> list[int]:
    return [0] * _SLOT_LEN


def _merge(into: list[int], add: list[int]) -> None:
    """Add one slot to another as C++ ``AdapterProxy::merge`` adds bodies (min: non-zero)."""
    into[_COUNT] += add[_COUNT]
    into[_TIMEOUT] += add[_TIMEOUT]
    into[_EXEC] += add[_EXEC]
    into[_TOTAL] += add[_TOTAL]
    if add[_MAX] > into[_MAX]:
        into[_MAX] = add[_MAX]
    low = add[_MIN]
    if low and (into[_MIN] == 0 or low < into[_MIN]):
        into[_MIN] = low
    for i in range(_BUCKET0, _SLOT_LEN):
        into[i] += add[i]


def _body(slot: list[int]) -> StatF.StatMicMsgBody:
    buckets = slot[_BUCKET0 : _BUCKET0 + len(INTERVAL_BOUNDS)]
    return StatF.StatMicMsgBody(
        count=slot[_COUNT],
        timeoutCount=slot[_TIMEOUT],
        execCount=slot[_EXEC],
        intervalCount=dict(zip(INTERVAL_BOUNDS, buckets, strict=True)),
        totalRspTime=slot[_TOTAL],
        maxRspTime=slot[_MAX],
        minRspTime=slot[_MIN],
    )


class StatReporter:
    """Collects call statistics and reports them to tarsstat.

    - *communicator*: makes the ``StatF`` proxy (and is usually also observed, see
      ``attach_client``).
    - *stat_obj*: ``tars.tarsstat.StatObj`` (through the communicator's locator) or a direct
      proxy string (``...StatObj@tcp -h H -p 18293``): the config's ``<client><stat>``.
    - *module_name*: this program's name in reports, the config's ``<client><modulename>``
      (``App.Server`` for a server under a node).
    - *report_interval_ms*, *report_timeout_ms*, *max_report_size*: the config's
      ``report-interval``, ``report-timeout`` and ``max-report-size``, with C++'s limits.
      *min_report_interval_ms* lowers the interval's floor (tests only).
    - *set_division*: this program's set (``name.area.group``); default: the communicator's,
      when set mode is on.
    - *tars_version*: the version after ``@`` in client-side ``masterName``.

    Everything runs on the event loop of the communicator and adapters observed: observers are
    plain (not thread-safe) counter updates.
    """

    def __init__(
        self,
        communicator: Communicator,
        stat_obj: str,
        module_name: str,
        *,
        report_interval_ms: int = DEFAULT_REPORT_INTERVAL_MS,
        report_timeout_ms: int = DEFAULT_REPORT_TIMEOUT_MS,
        max_report_size: int = DEFAULT_MAX_REPORT_SIZE,
        min_report_interval_ms: int = MIN_REPORT_INTERVAL_MS,
        set_division: str | None = None,
        tars_version: str = tarsus.__version__,
    ) -> None:
        if not module_name.strip("\r\t"):
            raise ValueError("module_name is empty: pass the config's <client><modulename>")
        self.stat_obj = stat_obj
        self.module_name = limit(module_name, MAX_NAME_LEN)
        self.report_interval_ms = max(min_report_interval_ms, report_interval_ms)
        self.report_timeout_ms = max(MIN_REPORT_TIMEOUT_MS, report_timeout_ms)
        if not MIN_REPORT_SIZE <= max_report_size <= MAX_REPORT_SIZE:
            max_report_size = MAX_REPORT_SIZE
        self.max_report_size = max_report_size
        if set_division is None:
            set_division = communicator.setdivision if communicator.enableset else ""
        self.set_info = parse_set_division(set_division) if set_division else None
        self.tars_version = tars_version
        self._proxy = communicator.string_to_proxy(StatF.StatFProxy, stat_obj).with_options(
            timeout_ms=self.report_timeout_ms
        )
        self._master_name = self._client_master_name()
        self._client: dict[_ClientKey, list[int]] = {}
        self._server: dict[_ServerKey, list[int]] = {}
        self._communicators: list[Communicator] = []
        self._adapters: list[Adapter] = []
        # Reports on a grid of report_interval_ms from start, as TarsCpp's StatReport::run.
        self._reporting = Periodic(
            "tarsus-stat-report", self.report_interval_ms / 1000.0, self._tick, fixed_rate=True
        )
        self._sending: set[asyncio.Task[None]] = set()
        self._last_warning = float("-inf")
        #: reportMicMsg calls made / failed (for viewstatus and tests)
        self.sent = 0
        self.failed = 0

    # -- wiring --------------------------------------------------------------------------

    def attach_client(self, communicator: Communicator) -> None:
        """Count every two-way call made through ``communicator`` (``bFromClient=true``)."""
        if self.observe_call not in communicator.observers:
            communicator.observers.append(self.observe_call)
            self._communicators.append(communicator)

    def attach_server(self, adapter: Adapter) -> None:
        """Count every request ``adapter`` answers (``bFromClient=false``)."""
        if adapter.stats_hook is not None and adapter.stats_hook != self.observe_request:
            raise ValueError(f"adapter {adapter.name} already reports its calls elsewhere")
        adapter.stats_hook = self.observe_request
        if adapter not in self._adapters:
            self._adapters.append(adapter)

    def detach(self) -> None:
        """Stop counting: remove the observer and hooks this reporter installed."""
        for communicator in self._communicators:
            with contextlib.suppress(ValueError):
                communicator.observers.remove(self.observe_call)
        for adapter in self._adapters:
            if adapter.stats_hook == self.observe_request:
                adapter.stats_hook = None
        self._communicators.clear()
        self._adapters.clear()

    # -- the hot path --------------------------------------------------------------------

    def observe_call(self, record: CallRecord) -> None:
        """The communicator observer: one finished client call."""
        ep = record.endpoint
        code = record.code
        key = (record.obj_name, record.func, ep.host, ep.port, ep.set_id, code)
        slot = self._client.get(key)
        if slot is None:
            slot = self._client[key] = _new_slot()
        if code == 0:
            ms = int(record.elapsed * 1000.0)
            slot[_COUNT] += 1
            slot[_TOTAL] += ms
            if ms > slot[_MAX]:
                slot[_MAX] = ms
            if ms and (ms < slot[_MIN] or not slot[_MIN]):
                slot[_MIN] = ms
            slot[_BUCKET0 + bisect_right(INTERVAL_BOUNDS, ms)] += 1
        elif code == _TIMEOUT_CODE:
            slot[_TIMEOUT] += 1
        else:
            slot[_EXEC] += 1

    def observe_request(self, current: Current, code: int, elapsed: float) -> None:
        """The adapter's ``stats_hook``: one request answered (or a one-way call served)."""
        peer = current.peer
        key = (current.func_name, current.packet_type, peer[0] if peer else "", code)
        slot = self._server.get(key)
        if slot is None:
            slot = self._server[key] = _new_slot()
        if code == 0:
            ms = int(elapsed * 1000.0)
            slot[_COUNT] += 1
            slot[_TOTAL] += ms
            if ms > slot[_MAX]:
                slot[_MAX] = ms
            if ms and (ms < slot[_MIN] or not slot[_MIN]):
                slot[_MIN] = ms
            slot[_BUCKET0 + bisect_right(INTERVAL_BOUNDS, ms)] += 1
        else:
            slot[_EXEC] += 1

    # -- heads ---------------------------------------------------------------------------

    def _client_master_name(self) -> str:
        name = self.module_name
        if self.set_info is not None:
            name = f"{name}.{''.join(self.set_info)}"
        return limit(f"{name}@{self.tars_version}", MAX_NAME_LEN)

    def _client_head(self, key: _ClientKey) -> StatF.StatMicMsgHead:
        obj_name, func, host, port, set_id, code = key
        slave = slave_name(obj_name)
        slave_set = parse_set_division(set_id) if set_id else None
        if slave_set is not None:
            slave = f"{slave}.{''.join(slave_set)}"
        name, area, group = slave_set or ("", "", "")
        return StatF.StatMicMsgHead(
            masterName=self._master_name,
            slaveName=limit(slave, MAX_NAME_LEN),
            interfaceName=limit(func, MAX_NAME_LEN),
            masterIp="",  # filled in by tarsstat (the caller's address)
            slaveIp=limit(host, MAX_IP_LEN),
            slavePort=port,
            returnValue=code,
            slaveSetName=name,
            slaveSetArea=area,
            slaveSetID=group,
        )

    def _server_head(self, key: _ServerKey) -> StatF.StatMicMsgHead:
        func, packet_type, caller_ip, code = key
        slave = self.module_name
        if self.set_info is not None:
            slave = f"{slave}.{''.join(self.set_info)}"
        name, area, group = self.set_info or ("", "", "")
        return StatF.StatMicMsgHead(
            masterName=MASTER_ONE_WAY if packet_type == 1 else MASTER_STAT_FROM_SERVER,
            slaveName=limit(slave, MAX_NAME_LEN),
            interfaceName=limit(func, MAX_NAME_LEN),
            masterIp=limit(caller_ip, MAX_IP_LEN),
            slaveIp="",  # filled in by tarsstat (our address)
            slavePort=0,
            returnValue=code,
            slaveSetName=name,
            slaveSetArea=area,
            slaveSetID=group,
        )

    # -- reporting -----------------------------------------------------------------------

    def take(self) -> tuple[_Report, _Report]:
        """Hand over what was counted since the last call, as ``{StatMicMsgHead:
        StatMicMsgBody}`` maps (client side, server side), and start counting afresh."""
        client, self._client = self._client, {}
        server, self._server = self._server, {}
        return _build(client, self._client_head), _build(server, self._server_head)

    async def flush(self) -> None:
        """Send what was counted so far; returns when the reports are answered or failed."""
        client, server = self.take()
        sends: list[Awaitable[None]] = []
        for batch in split_by_size(client.items(), self.max_report_size):
            sends.append(self._send(batch, True))
        for batch in split_by_size(server.items(), self.max_report_size):
            sends.append(self._send(batch, False))
        if sends:
            await asyncio.gather(*sends)

    async def _send(self, batch: _Report, from_client: bool) -> None:
        self.sent += 1
        try:
            await self._proxy.reportMicMsg(batch, from_client)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the stat service's trouble must never become ours
            self.failed += 1
            now = time.monotonic()
            if now - self._last_warning >= WARN_EVERY:
                self._last_warning = now
                log.warning(
                    "stat %s: %d rows dropped: %s (not logged again for %ds)",
                    self.stat_obj,
                    len(batch),
                    e,
                    WARN_EVERY,
                )
            else:
                log.debug("stat %s: %d rows dropped: %s", self.stat_obj, len(batch), e)

    async def start(self) -> None:
        """Report every ``report_interval_ms`` in the background until ``stop``."""
        self._reporting.start()

    async def _tick(self) -> None:
        # A slow service never delays the next round: each flush runs on its own.
        task: asyncio.Task[None] = asyncio.ensure_future(self.flush())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def stop(self) -> None:
        """Stop the background reports, stop counting, and send what is left."""
        await self._reporting.stop()
        self.detach()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self.flush()

    @property
    def running(self) -> bool:
        return self._reporting.running


def _build(slots: dict[K, list[int]], head_of: Callable[[K], StatF.StatMicMsgHead]) -> _Report:
    """Counter slots → ``{head: body}``, merging slots whose heads come out equal (two
    servants of one server share its ``App.Server`` name, as in C++ ``mergeStat``)."""
    merged: dict[StatF.StatMicMsgHead, list[int]] = {}
    for key, slot in slots.items():
        head = head_of(key)
        into = merged.get(head)
        if into is None:
            merged[head] = slot
        else:
            _merge(into, slot)
    return {head: _body(slot) for head, slot in merged.items()}
