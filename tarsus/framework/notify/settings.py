"""What the notification service (``tars.tarsnotify``) can be tuned with."""

from __future__ import annotations

from dataclasses import dataclass, field

from tarsus.conf import ConfigError, TCConfig
from tarsus.conf.values import ConfigValues

__all__ = ["NotifySettings"]


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Upstream's keys (TarsFramework ``NotifyServer``/``NotifyImp::loadconf``) and ours."""

    #: rows kept per server instance (upstream ``retainHistory``, 100)
    retain_history: int = 100
    #: rows older than this many days go (ours; 0 keeps them whatever their age)
    retain_days: float = 30.0
    #: seconds between two retention rounds (upstream: once a day, ``cron=0 0 3 * * *``)
    prune_interval: float = 3600.0
    #: notifications held in memory while the database is slow or down; past that the
    #: oldest are dropped (and counted)
    buffer_rows: int = 10_000
    #: seconds between two writes of what arrived (the rows of a write go in one statement)
    flush_interval: float = 0.5
    #: characters of a message kept (the rest is cut, with a note)
    max_message: int = 8192
    #: rows a ``getNotifyInfo`` page holds (upstream ``/tars/hash<max_page_size>``)
    page_size: int = 50
    #: ``App+Server`` (concatenated, as upstream) or ``default`` -> texts: a notification
    #: whose message holds one of them is dropped (upstream ``/tars/filter``)
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.retain_history < 1:
            raise ValueError(f"retainHistory must be >= 1, got {self.retain_history}")
        if self.retain_days < 0:
            raise ValueError(f"retainDays must be >= 0, got {self.retain_days}")
        if self.buffer_rows < 1:
            raise ValueError(f"bufferRows must be >= 1, got {self.buffer_rows}")
        if self.flush_interval <= 0 or self.prune_interval <= 0:
            raise ValueError("flushInterval and pruneInterval must be > 0 seconds")
        if self.max_message < 16:
            raise ValueError(f"maxMessage must be >= 16 characters, got {self.max_message}")
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"max_page_size must be 1-1000, got {self.page_size}")

    def filtered(self, app_server: str, message: str) -> bool:
        """Whether ``message`` of ``App+Server`` is dropped by a filter (upstream
        ``IsNeedFilte``)."""
        for key in (app_server, "default"):
            if any(text in message for text in self.filters.get(key, ())):
                return True
        return False

    @classmethod
    def from_tcconfig(cls, tc: TCConfig) -> NotifySettings:
        """Upstream's ``/tars<retainHistory>``, ``/tars/hash<max_page_size>`` and the
        ``/tars/filter`` keys (texts separated by ``;`` or ``|``); ours under
        ``/tars/tarsus``: ``retainDays``, ``pruneInterval``, ``bufferRows``,
        ``flushInterval``, ``maxMessage``."""
        v = ConfigValues(tc)
        filters: dict[str, tuple[str, ...]] = {}
        for key, value in tc.params("/tars/filter").items():
            texts = tuple(t for t in value.replace("|", ";").split(";") if t)
            if texts:
                filters[key] = texts
        try:
            return cls(
                retain_history=v.integer("/tars<retainHistory>", 100),
                retain_days=v.number("/tars/tarsus<retainDays>", 30.0),
                prune_interval=v.number("/tars/tarsus<pruneInterval>", 3600.0),
                buffer_rows=v.integer("/tars/tarsus<bufferRows>", 10_000),
                flush_interval=v.number("/tars/tarsus<flushInterval>", 0.5),
                max_message=v.integer("/tars/tarsus<maxMessage>", 8192),
                page_size=v.integer("/tars/hash<max_page_size>", 50),
                filters=filters,
            )
        except ValueError as e:
            raise ConfigError(f"tars.tarsnotify: {e}") from None
