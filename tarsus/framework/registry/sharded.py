"""A read-only mapping whose updated copies share what they do not change.

The route cache is replaced, never changed in place: readers hold one snapshot for a whole
lookup (:mod:`tarsus.framework.registry.routes`). An incremental load or a node's report
changes a few servers of 10,000, and copying the snapshot's three 10,000-entry dicts for that
cost little to copy but much to the garbage collector afterwards: every collection of the
young generations walks each new dict whole, touching every key and value it holds (scattered
objects: cache misses), 3-10 ms a time under the registry bench's load while lookups waited
(docs/registry.md, "Latency").

:class:`ShardedMap` keeps its entries in :data:`SHARDS` small dicts, chosen by the key's hash.
:meth:`ShardedMap.updated` copies the list of shards and only the shards it changes, so a copy
that changes 100 keys makes about 100 small dicts and one list of :data:`SHARDS` references
for the collector to walk, whatever the size of the map.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any, Generic, TypeVar, overload

__all__ = ["SHARDS", "ShardedMap", "shard_of"]

#: Shards per map (a power of two): 10,000 entries make about 10 per shard.
SHARDS = 1024
_MASK = SHARDS - 1

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class ShardedMap(Mapping[K, V], Generic[K, V]):
    """A mapping that is not changed once made; :meth:`updated` makes a changed copy."""

    __slots__ = ("_len", "_shards")

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        shards: list[dict[K, V]] = [{} for _ in range(SHARDS)]
        if items:
            for key, value in items.items():
                shards[hash(key) & _MASK][key] = value
        self._shards = shards
        self._len = len(items) if items else 0

    @classmethod
    def shards_to_fill(cls) -> list[dict[K, V]]:
        """Empty shards for a caller that fills them a part at a time (with :func:`shard_of`)
        and then makes the map with :meth:`from_shards`."""
        return [{} for _ in range(SHARDS)]

    @classmethod
    def from_shards(cls, shards: list[dict[K, V]]) -> ShardedMap[K, V]:
        """The map of ``shards`` (taken over, not copied; each key in its :func:`shard_of`)."""
        if len(shards) != SHARDS:
            raise ValueError(f"{len(shards)} shards, not {SHARDS}")
        return cls._made(shards, sum(map(len, shards)))

    @classmethod
    def _made(cls, shards: list[dict[K, V]], size: int) -> ShardedMap[K, V]:
        made: ShardedMap[K, V] = cls.__new__(cls)
        made._shards = shards
        made._len = size
        return made

    def updated(self, changes: Mapping[K, V | None]) -> ShardedMap[K, V]:
        """A copy with ``changes`` applied: a key to a value is set, a key to None removed (a
        missing one is ignored). This map is left as it is; the copy shares the shards that
        no change falls in."""
        if not changes:
            return self
        shards = list(self._shards)
        copied: set[int] = set()
        size = self._len
        for key, value in changes.items():
            at = hash(key) & _MASK
            if at not in copied:
                shards[at] = dict(shards[at])
                copied.add(at)
            shard = shards[at]
            if value is None:
                if shard.pop(key, _ABSENT) is not _ABSENT:
                    size -= 1
            else:
                if key not in shard:
                    size += 1
                shard[key] = value
        return self._made(shards, size)

    def shards(self) -> list[dict[K, V]]:
        """The shards (a new list of this map's own dicts: read them, do not change them)."""
        return list(self._shards)

    # -- Mapping -------------------------------------------------------------------------------

    def __getitem__(self, key: K) -> V:
        return self._shards[hash(key) & _MASK][key]

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D, /) -> V | D: ...
    def get(self, key: K, default: Any = None, /) -> Any:
        return self._shards[hash(key) & _MASK].get(key, default)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._shards[hash(key) & _MASK]
        except TypeError:  # unhashable: never a key
            return False

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        for shard in self._shards:
            yield from shard

    def items(self) -> ItemsView[K, V]:
        return _Items(self)

    def values(self) -> ValuesView[V]:
        return _Values(self)

    def __repr__(self) -> str:
        return f"ShardedMap({len(self)} entries)"


class _Items(ItemsView[K, V]):
    """The items shard by shard (the view Mapping gives looks every key up again: 10,000
    entries took milliseconds)."""

    _mapping: ShardedMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        for shard in self._mapping._shards:
            yield from shard.items()


class _Values(ValuesView[V]):
    _mapping: ShardedMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        for shard in self._mapping._shards:
            yield from shard.values()


def shard_of(key: object) -> int:
    """The index of the shard ``key`` belongs in."""
    return hash(key) & _MASK


_ABSENT: Any = object()
