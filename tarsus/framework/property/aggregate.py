"""Properties summed per window, as TarsFramework's ``PropertyImp::reportPropMsg``.

A row is one (module, caller IP, property, set, policy); the caller's address replaces the
head's ``ip``. Within a window ``Sum`` and ``Count`` add, ``Max`` and ``Min`` keep the extreme,
``Distr`` adds its buckets (``"bound|count,..."``) one by one, and ``Avg`` adds both parts of
``"sum=count"`` (a bare value counts once) and is stored as the mean. A value that is no
finite number, an unknown policy or a malformed distribution is dropped (counted).
"""

from __future__ import annotations

import math
from typing import Any, Final

from tarsus.framework.monitor.ingest import Aggregator, Row
from tarsus.framework.monitor.windows import WindowSlot
from tarsus.protocol.gen import PropertyF

__all__ = ["POLICIES", "PropertyAggregator", "format_value"]

POLICIES: Final = frozenset({"Sum", "Avg", "Distr", "Count", "Max", "Min"})
#: the largest magnitude a value may have
MAX_VALUE: Final = 1e18
#: buckets a ``Distr`` value may carry
MAX_BUCKETS: Final = 64
NAME_LIMIT: Final = 127


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit]


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_VALUE:
        raise ValueError(text)
    return value


def _distr(text: str) -> dict[str, float]:
    """``bound|count,...``; a bound is a number or a word (the clients' last one: ``max``)."""
    out: dict[str, float] = {}
    parts = [p for p in text.split(",") if p]
    if len(parts) > MAX_BUCKETS:
        raise ValueError(text)
    for part in parts:
        bound, _bar, count = part.partition("|")
        n = _number(count)
        if n < 0 or not bound or len(bound) > 20:
            raise ValueError(text)
        out[bound] = out.get(bound, 0.0) + n
    return out


def _bucket_order(bound: str) -> tuple[int, float, str]:
    try:
        return 0, float(bound), bound
    except ValueError:
        return 1, 0.0, bound


def format_value(value: float) -> str:
    """A number as stored: whole numbers without a point, others with up to 6 decimals."""
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


class PropertyAggregator(Aggregator):
    def add(
        self,
        msg: dict[PropertyF.StatPropMsgHead, PropertyF.StatPropMsgBody],
        caller_ip: str,
        now: float,
    ) -> int:
        """Sum one ``reportPropMsg`` into the window of ``now``; the rows taken."""
        window, sources, room = self.window(now)
        drops = self.drops
        caller_ip = _cut(caller_ip, 50)
        used = sources[caller_ip]
        limit = self.settings.max_keys_per_source
        taken = 0
        for head, body in msg.items():
            base = (
                _cut(head.moduleName, NAME_LIMIT),
                caller_ip,
                _cut(head.propertyName, 100),
                _cut(head.setName, 15),
                _cut(head.setArea, 15),
                _cut(head.setID, 15),
            )
            for info in body.vInfo[:16]:
                policy = info.policy
                if policy not in POLICIES:
                    drops.malformed += 1
                    continue
                try:
                    if policy == "Distr":
                        value: Any = _distr(info.value)
                    elif policy == "Avg":
                        total, _eq, count = info.value.partition("=")
                        value = [_number(total), _number(count) if count else 1.0]
                    else:
                        value = _number(info.value)
                except ValueError:
                    drops.absurd += 1
                    continue
                key = (*base, policy)
                acc = window.get(key)
                if acc is None:
                    if room <= 0:
                        drops.full += 1
                        continue
                    if used >= limit:
                        drops.flood += 1
                        continue
                    window[key] = value
                    room -= 1
                    used += 1
                elif policy == "Sum" or policy == "Count":
                    window[key] = acc + value
                elif policy == "Max":
                    window[key] = max(acc, value)
                elif policy == "Min":
                    window[key] = min(acc, value)
                elif policy == "Avg":
                    acc[0] += value[0]
                    acc[1] += value[1]
                else:  # Distr
                    for bound, n in value.items():
                        acc[bound] = acc.get(bound, 0.0) + n
                taken += 1
        sources[caller_ip] = used
        self.accepted += taken
        return taken

    def rows(self, slot: WindowSlot, window: dict[Any, Any]) -> list[Row]:
        head = (slot.stattime, slot.f_date, slot.f_tflag)
        out: list[Row] = []
        for key, acc in window.items():
            policy = key[6]
            if policy == "Avg":
                text = format_value(acc[0] / acc[1] if acc[1] else 0.0)
            elif policy == "Distr":
                text = ",".join(
                    f"{b}|{format_value(acc[b])}" for b in sorted(acc, key=_bucket_order)
                )
            else:
                text = format_value(acc)
            # columns: master_name, master_ip, property_name, set_name/area/id, policy, value
            out.append((*head, *key, text[:255]))
        return out
