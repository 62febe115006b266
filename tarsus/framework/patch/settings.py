"""What a package store (``tars.tarspatch``) can be tuned with, read from upstream's keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tarsus.conf import ConfigError, TCConfig
from tarsus.rpc.logs import parse_size

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DISK_RESERVE",
    "DEFAULT_MAX_CHUNK",
    "MAX_FILE_SIZE",
    "PatchSettings",
]

#: Bytes a ``download`` answers at most (upstream's template: ``size=1M``).
DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Bytes an ``upload`` chunk may carry: above, refused (below the 10 MiB a server adapter
#: takes in one packet, so a too-big chunk gets a return code, not a closed connection).
DEFAULT_MAX_CHUNK = 8 * 1024 * 1024
#: The largest file the store keeps: ``FileInfo.size`` and ``download``'s ``pos`` are
#: Tars ``int`` (32 bits), so a bigger file could be neither listed nor downloaded.
MAX_FILE_SIZE = 2**31 - 1
#: Bytes an upload or a staging must leave free on the store's disk.
DEFAULT_DISK_RESERVE = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PatchSettings:
    """Where the store keeps its files and how much it takes.

    ``directory`` is what ``listFileInfo``/``download`` see (staged packages under
    ``TARSBatchPatching/``); ``upload_directory`` holds what ``upload`` received, per
    ``<App>/<Server>/``. Upstream's template puts both side by side (``patchs/tars`` and
    ``patchs/tars.upload``)."""

    directory: Path
    upload_directory: Path
    #: bytes per ``download`` answer
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: bytes an ``upload`` chunk may carry
    max_chunk: int = DEFAULT_MAX_CHUNK
    #: bytes one stored file may have
    max_file_size: int = MAX_FILE_SIZE
    #: bytes that must stay free on the disk after an upload chunk or a staging
    disk_reserve: int = DEFAULT_DISK_RESERVE

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= DEFAULT_MAX_CHUNK:
            raise ValueError(f"chunk size must be 1 byte to 8 MiB, got {self.chunk_size}")
        if self.max_chunk < 1:
            raise ValueError(f"the upload chunk cap must be >= 1 byte, got {self.max_chunk}")
        if not 1 <= self.max_file_size <= MAX_FILE_SIZE:
            raise ValueError(
                f"the file size cap must be 1 byte to {MAX_FILE_SIZE} (Tars int), "
                f"got {self.max_file_size}"
            )
        if self.disk_reserve < 0:
            raise ValueError(f"the disk reserve must be >= 0, got {self.disk_reserve}")

    @classmethod
    def under(cls, root: Path, **kw: int) -> PatchSettings:
        """Upstream's layout under ``root``: ``root/tars`` and ``root/tars.upload``."""
        return cls(directory=root / "tars", upload_directory=root / "tars.upload", **kw)

    @classmethod
    def from_tcconfig(cls, tc: TCConfig, *, base: Path | None = None) -> PatchSettings:
        """Upstream's ``tars.tarspatch`` keys: ``/tars<directory>``, ``/tars<uploadDirectory>``
        and ``/tars<size>`` (TarsFramework ``PatchServer::initialize``); ours under
        ``/tars/tarsus``: ``maxChunk``, ``maxFileSize``, ``diskReserve`` (sizes as ``512K``,
        ``8M``, ``2G``). Without ``directory``, ``<base>/patchs/tars`` (``base``: the server's
        data path), as upstream's defaults ``/usr/local/app/patchs/tars...``."""

        def size(path: str, default: int) -> int:
            text = tc.get(path, "").strip()
            if not text:
                return default
            try:
                return parse_size(text)
            except ValueError as e:
                raise ConfigError(f"{path}: {e}") from None

        root = base if base is not None else Path("patchs")
        directory = tc.get("/tars<directory>", "").strip()
        upload = tc.get("/tars<uploadDirectory>", "").strip()
        try:
            return cls(
                directory=Path(directory) if directory else root / "patchs" / "tars",
                upload_directory=Path(upload) if upload else root / "patchs" / "tars.upload",
                chunk_size=size("/tars<size>", DEFAULT_CHUNK_SIZE),
                max_chunk=size("/tars/tarsus<maxChunk>", DEFAULT_MAX_CHUNK),
                max_file_size=min(size("/tars/tarsus<maxFileSize>", MAX_FILE_SIZE), MAX_FILE_SIZE),
                disk_reserve=size("/tars/tarsus<diskReserve>", DEFAULT_DISK_RESERVE),
            )
        except ValueError as e:
            raise ConfigError(f"tars.tarspatch: {e}") from None
