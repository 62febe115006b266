"""What the stat and property services can be tuned with (``tars.tarsstat``,
``tars.tarsproperty``), read from their TC_Config."""

from __future__ import annotations

from dataclasses import dataclass

from tarsus.conf import ConfigValues, TCConfig

__all__ = ["IngestSettings"]


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Windows, retention and the bounds that keep a flood or a database outage from eating
    the process's memory.

    Differences from upstream, on purpose: the window is 1 minute by default (upstream 5, its
    minimum), and what the database refuses is kept and written when it returns (upstream
    drops a window it could not write)."""

    #: seconds per aggregation window; a multiple of 60 in production (``f_tflag`` is HHMM),
    #: anything >= 1 for tests (rows of one minute then share a ``f_tflag``)
    window_s: int = 60
    #: days of hourly tables kept (upstream ``stat_reserve_time`` / ``property_reserve_time``)
    reserve_days: int = 31
    #: distinct rows one window holds; reports past it are dropped (counted)
    max_keys: int = 1_000_000
    #: distinct rows one caller (IP) may add to a window; past it, dropped (a flood)
    max_keys_per_source: int = 100_000
    #: closed-window rows held while the database cannot take them; past it the oldest
    #: windows are dropped (counted)
    max_pending_rows: int = 2_000_000
    #: rows per insert transaction
    chunk_rows: int = 5000
    #: seconds between looks for closed windows to write
    flush_interval: float = 1.0
    #: ``source_id`` of the rows (upstream: the stat server's IP)
    source_id: str = ""

    def __post_init__(self) -> None:
        for name in ("window_s", "max_keys", "max_keys_per_source", "max_pending_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"IngestSettings.{name} must be an integer >= 1, got {value!r}")
        if not 1 <= self.chunk_rows <= 100_000:
            raise ValueError(f"IngestSettings.chunk_rows must be 1-100000, got {self.chunk_rows}")
        if self.reserve_days < 2:
            raise ValueError(f"IngestSettings.reserve_days must be >= 2, got {self.reserve_days}")
        if not self.flush_interval > 0:
            raise ValueError("IngestSettings.flush_interval must be > 0")

    @classmethod
    def from_tcconfig(cls, tc: TCConfig, *, reserve_key: str, source_id: str) -> IngestSettings:
        """Upstream's ``/tars/hashmap<insertInterval>`` (minutes; here from 1) and
        ``/tars/reapSql<{reserve_key}>`` (days, min 2); ours under ``/tars/tarsus``:
        ``window`` (seconds, overrides insertInterval), ``maxKeys``, ``maxKeysPerSource``,
        ``maxPendingRows``."""
        values = ConfigValues(tc)
        window = values.integer("/tars/hashmap<insertInterval>", 1, within=(1, 60)) * 60
        window = values.integer("/tars/tarsus<window>", window, within=(1, 3600))
        return cls(
            window_s=window,
            reserve_days=values.integer(f"/tars/reapSql<{reserve_key}>", 31, within=(2, 3650)),
            max_keys=values.integer("/tars/tarsus<maxKeys>", 1_000_000, within=(1, 10**8)),
            max_keys_per_source=values.integer(
                "/tars/tarsus<maxKeysPerSource>", 100_000, within=(1, 10**8)
            ),
            max_pending_rows=values.integer(
                "/tars/tarsus<maxPendingRows>", 2_000_000, within=(1, 10**9)
            ),
            source_id=source_id,
        )
