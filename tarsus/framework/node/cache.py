"""The node's local cache: what it runs, so it can carry on without the registry.

``<data_dir>/serversCache.json`` (upstream keeps the same in ``serversCache.dat``, a hash map
file) holds, per server, its descriptor (with ``settingState`` following the enabled flag),
the enabled flag, whether an operator stopped it, and the pid, start time and command line of
its process. It is rewritten atomically whenever one of those changes. At node start with the
registry unreachable, the supervisor loads every server from here, regenerates the configs,
adopts the processes still running (same pid, start time *and* command line) and starts the
enabled ones that are not. Entries written before ``stopped`` and ``cmdline`` existed read as
not stopped and with no command line.

A cache that cannot be read is kept aside as ``serversCache.json.corrupt`` and the node
starts empty (it then learns its servers from the registry, or from their keepAlives).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tarsus.codec.jsonvalue import JsonValueError, from_jsonable, to_jsonable
from tarsus.framework.node.config import atomic_write
from tarsus.protocol.gen import RegistryDescriptor

__all__ = ["CACHE_FORMAT", "CacheEntry", "NodeCache"]

log = logging.getLogger("tarsus.framework.node.cache")

CACHE_FORMAT = 1


@dataclass
class CacheEntry:
    descriptor: RegistryDescriptor.ServerDescriptor
    enabled: bool = False
    pid: int = 0
    #: the process's start time (epoch seconds, as psutil gives it), 0 without a process
    create_time: float = 0.0
    #: the process's command line, () without a process (or when it could not be read)
    cmdline: tuple[str, ...] = ()
    #: an operator stopped the server: it stays stopped until an operator starts it, whatever
    #: the descriptor's ``settingState`` says (docs/node.md)
    stopped: bool = False


class NodeCache:
    """The cache file, loaded at construction and rewritten on every :meth:`put`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, CacheEntry] = {}
        self._written: bytes | None = None
        self._load()

    # -- reading -----------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            log.error("cannot read the server cache %s: %s; starting empty", self.path, e)
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
                raise ValueError("no 'servers' object")
            if data.get("format") != CACHE_FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
        except ValueError as e:
            self._set_aside(f"{e}")
            return
        cls = RegistryDescriptor.ServerDescriptor
        for sid, item in data["servers"].items():
            try:
                desc = from_jsonable(item["descriptor"], cls, "descriptor")
                entry = CacheEntry(
                    descriptor=desc,
                    enabled=bool(item.get("enabled", False)),
                    pid=int(item.get("pid", 0)),
                    create_time=float(item.get("create_time", 0.0)),
                    cmdline=_cmdline(item.get("cmdline", [])),
                    stopped=bool(item.get("stopped", False)),
                )
            except (KeyError, TypeError, ValueError, JsonValueError) as e:
                log.error(
                    "server cache %s: entry %s is unreadable (%s); skipped", self.path, sid, e
                )
                continue
            if f"{desc.application}.{desc.serverName}" != sid:
                log.error("server cache %s: entry %s holds another server; skipped", self.path, sid)
                continue
            self._entries[sid] = entry
        self._written = raw

    def _set_aside(self, reason: str) -> None:
        corrupt = self.path.with_name(self.path.name + ".corrupt")
        log.error(
            "the server cache %s is corrupt (%s): kept as %s, starting empty",
            self.path,
            reason,
            corrupt,
        )
        try:
            os.replace(self.path, corrupt)
        except OSError as e:
            log.error("cannot move the corrupt cache aside: %s", e)

    def get(self, server_id: str) -> CacheEntry | None:
        return self._entries.get(server_id)

    def entries(self) -> dict[str, CacheEntry]:
        return dict(self._entries)

    def __contains__(self, server_id: str) -> bool:
        return server_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    # -- writing -----------------------------------------------------------------------------

    def put(self, server_id: str, entry: CacheEntry) -> None:
        """Record ``entry`` (writing the file if anything changed)."""
        self._entries[server_id] = entry
        self.save()

    def remove(self, server_id: str) -> None:
        if self._entries.pop(server_id, None) is not None:
            self.save()

    def save(self) -> None:
        """Write the file if its content changed. Errors are logged: a full disk must not
        stop supervision."""
        cls = RegistryDescriptor.ServerDescriptor
        servers = {}
        for sid, entry in sorted(self._entries.items()):
            desc = entry.descriptor
            servers[sid] = {
                "enabled": entry.enabled,
                "pid": entry.pid,
                "create_time": entry.create_time,
                "cmdline": list(entry.cmdline),
                "stopped": entry.stopped,
                "descriptor": to_jsonable(desc, cls),
            }
        data = json.dumps(
            {"format": CACHE_FORMAT, "servers": servers}, indent=1, sort_keys=True
        ).encode()
        if data == self._written:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, data)
        except OSError as e:
            log.error("cannot write the server cache %s: %s", self.path, e)
            return
        self._written = data


def _cmdline(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise ValueError(f"cmdline is not a list of strings: {value!r}")
    return tuple(value)
