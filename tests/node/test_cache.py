"""The node's local cache file: round trip, atomic rewrite, corruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from node_support import hello_descriptor

from tarsus.framework.node import CacheEntry, NodeCache


def entry(pid: int = 123, enabled: bool = True) -> CacheEntry:
    return CacheEntry(hello_descriptor(18601), enabled=enabled, pid=pid, create_time=1700000000.5)


def test_round_trip_and_only_changes_are_written(tmp_path: Path) -> None:
    path = tmp_path / "serversCache.json"
    cache = NodeCache(path)
    assert len(cache) == 0 and not path.exists()
    cache.put("Test.HelloServer", entry())
    data = json.loads(path.read_text())
    assert data["format"] == 1
    assert data["servers"]["Test.HelloServer"]["pid"] == 123
    assert data["servers"]["Test.HelloServer"]["descriptor"]["serverName"] == "HelloServer"
    again = NodeCache(path).get("Test.HelloServer")
    assert again is not None
    assert (again.pid, again.enabled, again.create_time) == (123, True, 1700000000.5)
    assert again.descriptor == hello_descriptor(18601)
    before = path.stat().st_mtime_ns
    cache.put("Test.HelloServer", entry())  # same content: not rewritten
    assert path.stat().st_mtime_ns == before
    cache.remove("Test.HelloServer")
    assert NodeCache(path).get("Test.HelloServer") is None
    assert [p.name for p in tmp_path.iterdir()] == ["serversCache.json"]  # no temp files


def test_a_corrupt_cache_is_kept_aside_and_the_node_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "serversCache.json"
    path.write_text('{"format": 1, "servers": {"Test.HelloServer": ')
    cache = NodeCache(path)
    assert len(cache) == 0
    corrupt = tmp_path / "serversCache.json.corrupt"
    assert corrupt.read_text().startswith('{"format": 1')
    cache.put("Test.HelloServer", entry())
    assert NodeCache(path).get("Test.HelloServer") is not None


def test_a_bad_entry_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "serversCache.json"
    NodeCache(path).put("Test.HelloServer", entry())
    data: Any = json.loads(path.read_text())
    data["servers"]["Bad.One"] = {"descriptor": {"application": 5}, "pid": "x"}
    data["servers"]["Wrong.Name"] = data["servers"]["Test.HelloServer"]
    path.write_text(json.dumps(data))
    cache = NodeCache(path)
    assert set(cache.entries()) == {"Test.HelloServer"}
