"""What a remote log service (``tars.tarslog``) can be tuned with, read from upstream's keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tarsus.conf import ConfigError, TCConfig
from tarsus.rpc.logs import parse_size

__all__ = ["LogSettings"]

_LIST = re.compile(r"[|;,\s]+")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Where remote logs go and how much the service takes in."""

    #: ``<logpath>``: every remote log file lives below it
    directory: Path
    #: prefix each line with the caller's address and the separator (upstream ``ipfix``)
    ip_prefix: bool = True
    #: ``app.server`` names whose ``logger`` files roll hourly whatever they ask
    hourly: frozenset[str] = frozenset()
    #: ``app.server.file`` → log type (``2hour``...), overriding the caller's
    log_types: dict[str, str] = field(default_factory=dict)
    #: writer threads (upstream ``logthread``)
    threads: int = 2
    #: bytes of lines waiting for the disk at most; beyond, batches are dropped and counted
    max_pending: int = 64 * 1024 * 1024
    #: files open at once at most
    max_open: int = 256
    #: characters of one line at most (longer ones are cut)
    max_line: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 64:
            raise ValueError(f"logthread must be 1 to 64, got {self.threads}")
        if self.max_pending < 1024 or self.max_open < 1 or self.max_line < 1:
            raise ValueError("maxPending must be >= 1K, maxOpenFiles and maxLine >= 1")

    @classmethod
    def from_tcconfig(cls, tc: TCConfig, *, base: Path | None = None) -> LogSettings:
        """Upstream's ``tars.tarslog`` keys (TarsFramework ``LogServer::initialize``):
        ``/tars/log<logpath>``, ``<logthread>``, ``<ipfix>``, ``/tars/log/format<hour>``
        (``app.server`` names split by ``|;,``), ``/tars/log/logtype`` (``type = app.server.file
        |...``); ours under ``/tars/tarsus``: ``maxPending``, ``maxOpenFiles``, ``maxLine``.
        Without ``logpath``: ``<base>/remote_app_log`` (``base``: the server's data path)."""

        def size(path: str, default: int) -> int:
            text = tc.get(path, "").strip()
            if not text:
                return default
            try:
                return parse_size(text)
            except ValueError as e:
                raise ConfigError(f"{path}: {e}") from None

        def integer(path: str, default: int) -> int:
            text = tc.get(path, "").strip()
            try:
                return int(text) if text else default
            except ValueError:
                raise ConfigError(f"{path}: {text!r} is not a number") from None

        logpath = tc.get("/tars/log<logpath>", "").strip()
        root = base if base is not None else Path(".")
        hourly = frozenset(n for n in _LIST.split(tc.get("/tars/log/format<hour>", "")) if n)
        log_types: dict[str, str] = {}
        types = tc.get_domain("/tars/log/logtype")
        for kind, names in (types.params() if types is not None else {}).items():
            for name in _LIST.split(names):
                if name:
                    log_types[name] = kind.strip()
        try:
            return cls(
                directory=Path(logpath) if logpath else root / "remote_app_log",
                ip_prefix=tc.get("/tars/log<ipfix>", "true").strip().lower()
                not in ("false", "0", "n", "no"),
                hourly=hourly,
                log_types=log_types,
                threads=integer("/tars/log<logthread>", 2),
                max_pending=size("/tars/tarsus<maxPending>", 64 * 1024 * 1024),
                max_open=integer("/tars/tarsus<maxOpenFiles>", 256),
                max_line=size("/tars/tarsus<maxLine>", 1024 * 1024),
            )
        except ValueError as e:
            raise ConfigError(f"tars.tarslog: {e}") from None
