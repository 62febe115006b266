"""Call statistics summed per window, as TarsFramework's ``StatImp::reportMicMsg``.

A row's key is everything the head says, after two changes upstream makes: ``masterName``
``App.Server@version`` is split into the name and ``tars_version``, and the caller's own
address replaces ``masterIp`` (client-side reports) or ``slaveIp`` (server-side ones). Bodies
of one key add up: counts, latency buckets and total time summed, the largest ``maxRspTime``
and the smallest ``minRspTime`` kept. All-zero bodies are dropped (as upstream); so is a row
with negative or absurd numbers, or more than :data:`MAX_BUCKETS` buckets (counted).
"""

from __future__ import annotations

from typing import Any, Final

from tarsus.framework.monitor.ingest import Aggregator, Row
from tarsus.framework.monitor.windows import WindowSlot
from tarsus.protocol.gen import StatF

__all__ = ["MAX_BUCKETS", "MAX_COUNT", "StatAggregator"]

#: calls one report row may count, per counter (a day of 20,000 calls a second)
MAX_COUNT: Final = 2**31 - 1
#: milliseconds of latency one report row may sum
MAX_TOTAL_MS: Final = 2**53
#: latency buckets one row may carry (clients send 9)
MAX_BUCKETS: Final = 32
#: characters kept of a name (C++ ``trimAndLimitStr``: 127) and of an IP (50)
NAME_LIMIT: Final = 127
IP_LIMIT: Final = 50

_COUNT, _TIMEOUT, _EXEC, _TOTAL, _MAX, _MIN, _BUCKETS = range(7)

StatKey = tuple[str, str, str, str, str, int, int, str]


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit]


class StatAggregator(Aggregator):
    def add(
        self,
        msg: dict[StatF.StatMicMsgHead, StatF.StatMicMsgBody],
        from_client: bool,
        caller_ip: str,
        now: float,
    ) -> int:
        """Sum one ``reportMicMsg`` into the window of ``now``; the rows taken."""
        window, sources, room = self.window(now)
        drops = self.drops
        limit = self.settings.max_keys_per_source
        caller_ip = _cut(caller_ip, IP_LIMIT)
        used = sources[caller_ip]
        taken = 0
        for head, body in msg.items():
            count, timeout, exc = body.count, body.timeoutCount, body.execCount
            total, high, low = body.totalRspTime, body.maxRspTime, body.minRspTime
            buckets = body.intervalCount
            if not (
                0 <= count <= MAX_COUNT
                and 0 <= timeout <= MAX_COUNT
                and 0 <= exc <= MAX_COUNT
                and 0 <= total <= MAX_TOTAL_MS
                and high >= 0
                and low >= 0
                and len(buckets) <= MAX_BUCKETS
                and (not buckets or min(buckets.values()) >= 0)
            ):
                drops.absurd += 1
                continue
            if count == 0 and timeout == 0 and exc == 0:
                drops.empty += 1
                continue
            master, _at, version = head.masterName.partition("@")
            if not version:
                version = head.tarsVersion
            if from_client:
                master_ip, slave_ip = caller_ip, _cut(head.slaveIp, IP_LIMIT)
            else:
                master_ip, slave_ip = _cut(head.masterIp, IP_LIMIT), caller_ip
            key: StatKey = (
                _cut(master, NAME_LIMIT),
                _cut(head.slaveName, NAME_LIMIT),
                _cut(head.interfaceName, NAME_LIMIT),
                master_ip,
                slave_ip,
                head.slavePort,
                head.returnValue,
                _cut(version, 16),
            )
            acc = window.get(key)
            if acc is None:
                if room <= 0:
                    drops.full += 1
                    continue
                if used >= limit:
                    drops.flood += 1
                    continue
                window[key] = [count, timeout, exc, total, high, low, dict(buckets)]
                room -= 1
                used += 1
                taken += 1
                continue
            acc[_COUNT] += count
            acc[_TIMEOUT] += timeout
            acc[_EXEC] += exc
            acc[_TOTAL] += total
            if high > acc[_MAX]:
                acc[_MAX] = high
            if low and (low < acc[_MIN] or not acc[_MIN]):
                acc[_MIN] = low
            if buckets:
                mine = acc[_BUCKETS]
                for bound, n in buckets.items():
                    mine[bound] = mine.get(bound, 0) + n
            taken += 1
        sources[caller_ip] = used
        self.accepted += taken
        return taken

    def rows(self, slot: WindowSlot, window: dict[Any, Any]) -> list[Row]:
        source = self.settings.source_id
        head = (slot.stattime, slot.f_date, slot.f_tflag, source)
        out = []
        texts: dict[tuple[tuple[int, int], ...], str] = {}  # bucket counts repeat a lot
        for key, acc in window.items():
            count, total = acc[_COUNT], acc[_TOTAL]
            buckets = tuple(acc[_BUCKETS].items())
            interv = texts.get(buckets)
            if interv is None:
                interv = texts[buckets] = ",".join(f"{b}|{n}" for b, n in sorted(buckets))[:128]
            out.append(
                (
                    *head,
                    key[0],  # master_name
                    key[1],  # slave_name
                    key[2],  # interface_name
                    key[7],  # tars_version
                    key[3],  # master_ip
                    key[4],  # slave_ip
                    key[5],  # slave_port
                    key[6],  # return_value
                    count,
                    acc[_TIMEOUT],
                    acc[_EXEC],
                    interv,
                    total,
                    total // count if count else 0,
                    min(acc[_MAX], MAX_COUNT),
                    min(acc[_MIN], MAX_COUNT),
                )
            )
        return out
