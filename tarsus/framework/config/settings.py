"""What a config center (``tars.tarsconfig``) can be tuned with (docs/config-center.md)."""

from __future__ import annotations

from dataclasses import dataclass

from tarsus.conf import ConfigError, ConfigValues, TCConfig
from tarsus.rpc.logs import parse_size
from tarsus.store.configs import MAX_CONFIG_SIZE

__all__ = ["ConfigSettings"]


@dataclass(frozen=True, slots=True)
class ConfigSettings:
    """Upstream's rate limit (``ConfigImp``) and our own bounds.

    A caller (application, server, caller's address, file name) may load a file or list files
    ``limit + 1`` times within ``interval`` seconds; then it gets 429 until the window ends.
    ``limit = 0`` turns the limit off."""

    #: seconds of one window (upstream ``interval``, in minutes, default 1)
    interval: float = 60.0
    #: calls allowed in a window beyond the first (upstream ``limitinterval``, default 10)
    limit: int = 10
    #: callers remembered at most; beyond, the oldest windows are forgotten
    max_callers: int = 100_000
    #: bytes a stored file may hold
    max_file_size: int = MAX_CONFIG_SIZE

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"the rate-limit interval must be > 0 s, got {self.interval}")
        if self.limit < 0:
            raise ValueError(f"the rate limit must be >= 0 (0: off), got {self.limit}")
        if self.max_callers < 1:
            raise ValueError(f"max callers must be >= 1, got {self.max_callers}")
        if not 1 <= self.max_file_size <= 8 * 1024 * 1024:
            raise ValueError(f"the file size cap must be 1 byte to 8 MiB, got {self.max_file_size}")

    @classmethod
    def from_tcconfig(cls, tc: TCConfig) -> ConfigSettings:
        """Upstream's ``/tars/limit<interval>`` (minutes) and ``<limitinterval>``; ours under
        ``/tars/tarsus``: ``limitSeconds`` (wins over ``interval``), ``maxCallers`` and
        ``maxFileSize`` (``512K``, ``2M``)."""
        v = ConfigValues(tc)
        try:
            interval = v.number("/tars/limit<interval>", 1.0) * 60.0
            interval = v.number("/tars/tarsus<limitSeconds>", interval)
            size_text = v.text("/tars/tarsus<maxFileSize>")
            return cls(
                interval=interval,
                limit=v.integer("/tars/limit<limitinterval>", 10),
                max_callers=v.integer("/tars/tarsus<maxCallers>", 100_000),
                max_file_size=parse_size(size_text) if size_text else MAX_CONFIG_SIZE,
            )
        except ValueError as e:
            raise ConfigError(f"tars.tarsconfig: {e}") from None
