"""Choosing the endpoint for a call: round-robin, static weight, hash and consistent hash.

This is the routing half of C++ ``EndpointManager`` (``servant/libservant/EndpointManager.cpp``),
or TarsGo's ``selector`` packages, as pure logic over *candidates*: objects carrying an
``endpoint`` and the ``health`` of its adapter (see :class:`Candidate`). The runtime keeps one
:class:`EndpointSelector` per servant proxy, rebuilds it when the endpoint list changes, and
asks ``select(now, ...)`` for every call.

The rules, all as C++ does them:

- Candidates are ordered by ``Endpoint.cmp_desc`` (``"istcp:host:port"``), duplicates dropped.
- **Round-robin** over the active candidates, skipping shielded ones.
- **Static weight** when *every* active endpoint has ``weight_type`` 1: a smooth weighted
  round-robin table built from the ``-w`` weights (C++ ``dispatchEndpointCache``).
- **Hash** (``hash_code``): ``code % N`` over the registry list, active *and* inactive; when that
  node is inactive or shielded, ``code % n`` again among the active ones, dropping each miss.
  Under static weight the first pick goes through the weighted table instead.
- **Consistent hash** (``consistent_key``): a ketama ring keyed by host (see :class:`KetamaRing`);
  when the host found is shielded the walk skips to the next host on the ring; with no host
  left it falls back to the hash rule.
- When no candidate is available, one is picked at random anyway (preferring nodes whose
  connection works) so calls still go somewhere, and it is treated as a probe.

Selecting a shielded candidate that is due for a retry calls its ``health.begin_probe(now)``.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import random
from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.health import AdapterHealth

__all__ = [
    "Candidate",
    "EndpointSelector",
    "KetamaRing",
    "build_static_weight_table",
    "consistent_key_code",
    "ketama_hash",
    "tars_string_hash",
]

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF

#: C++ ``EndpointManager::iMinWeightLimit`` / ``iMaxWeightLimit``: bounds of the weight
#: scale the router table is built on.
_MIN_WEIGHT_LIMIT = 10
_MAX_WEIGHT_LIMIT = 100
#: Weight of a host on the consistent-hash ring when weights are not in use.
_DEFAULT_RING_WEIGHT = 100


class Candidate(Protocol):
    """What a selector chooses among: an endpoint and its adapter's health."""

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def health(self) -> AdapterHealth: ...


C = TypeVar("C", bound=Candidate)


# -- hash functions ---------------------------------------------------------------------------


def ketama_hash(data: bytes | str) -> int:
    """The first four bytes of ``md5(data)`` as a little-endian uint32 (``TC_KetamaHashAlg``)."""
    raw = data.encode() if isinstance(data, str) else data
    return int.from_bytes(hashlib.md5(raw, usedforsecurity=False).digest()[:4], "little")


def tars_string_hash(data: bytes | str) -> int:
    """C++ ``tars::hash<std::string>`` (``util/include/util/tc_hash_fun.h``) on a 64-bit host.

    Provided for callers that must reproduce codes a C++ client computes with it. It is a
    poor key for consistent hashing (its low 32 bits stay below 2**28); ``select`` uses
    :func:`consistent_key_code` for string keys instead.
    """
    raw = data.encode() if isinstance(data, str) else data
    h = 0
    for byte in raw:
        c = byte - 256 if byte >= 128 else byte  # ``char`` is signed on x86-64
        h = ((h << 4) + c) & _MASK64
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
            h ^= g
    return h


def consistent_key_code(key: int | str | bytes) -> int:
    """The ring position code for a consistent-hash key.

    An int is used as is (C++ ``tars_consistent_hash(code)``; only its low 32 bits place it on
    the ring, so pass a well-mixed code: small integers all land just after ring position 0).
    A string is hashed as ``TC_ConsistentHashNew::getNodeName(const string&)`` does with the
    ketama algorithm: ``ketama_hash(md5(key))``.
    """
    if isinstance(key, int):
        return key
    return _string_key_code(key)


@functools.lru_cache(maxsize=4096)
def _string_key_code(key: str | bytes) -> int:
    raw = key.encode() if isinstance(key, str) else key
    return ketama_hash(hashlib.md5(raw, usedforsecurity=False).digest())


# -- static weight ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def build_static_weight_table(weights: tuple[int, ...]) -> tuple[int, ...]:
    """The smooth weighted round-robin table of C++ ``dispatchEndpointCache``.

    *weights* are the ``-w`` values (all > 0) of the nodes in order; the result lists node
    indexes in the order calls cycle through them. Weights are rescaled to a 10..100 range
    first (``max/min`` clamped), and C++'s tie-breaking is kept: among equal current weights
    the one its ``multimap`` yields first when walked backwards wins.
    """
    if not weights:
        return ()
    if min(weights) <= 0:
        raise ValueError(f"static weights must be > 0, got {weights}")
    max_weight, min_weight = max(weights), min(weights)
    scale = min(max(max_weight // min_weight, _MIN_WEIGHT_LIMIT), _MAX_WEIGHT_LIMIT)
    table: list[int] = []
    scaled: dict[int, int] = {}
    entries: list[tuple[int, int]] = []  # (current weight, node) in multimap order
    for node, weight in enumerate(weights):
        w = weight * scale // max_weight
        if w > 0:
            scaled[node] = w
            entries.append((w, node))
        else:
            table.append(node)  # too light for the scale: one slot, up front
    entries.sort(key=_first)  # stable: equal keys keep insertion order, like multimap
    total = sum(scaled.values())
    for _ in range(total):
        walked = entries[::-1]
        chosen_weight, chosen = walked[0]
        table.append(chosen)
        updated = [(chosen_weight - total + scaled[chosen], chosen)]
        updated.extend((w + scaled[node], node) for w, node in walked[1:])
        updated.sort(key=_first)
        entries = updated
    return tuple(table)


def _first(entry: tuple[int, int]) -> int:
    return entry[0]


# -- consistent hash --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _host_points(host: str, vnodes: int) -> tuple[int, ...]:
    points: list[int] = []
    for j in range(vnodes):
        digest = hashlib.md5(f"{host}_{j}".encode(), usedforsecurity=False).digest()
        points.extend(int.from_bytes(digest[k : k + 4], "little") for k in range(0, 16, 4))
    return tuple(points)


class KetamaRing:
    """C++ ``TC_ConsistentHashNew`` with the ketama algorithm, as ``EndpointManager`` fills it.

    Each node (a host name) with weight *w* gets ``max(1, w // 4)`` virtual nodes
    ``"host_0"``, ``"host_1"``...; each virtual node's md5 gives four ring points (its 16
    bytes read as four little-endian uint32). A code (low 32 bits) belongs to the first point
    *after* it, or to the first point on the ring when it is at or before that point or
    beyond the last one.
    """

    __slots__ = ("_hashes", "_nodes", "_owners")

    def __init__(self, nodes: Iterable[tuple[str, int]]) -> None:
        """*nodes*: ``(host, weight)`` pairs; weights <= 0 leave the host off the ring."""
        self._nodes: tuple[str, ...] = ()
        points: list[tuple[int, int]] = []
        names: list[str] = []
        for host, weight in nodes:
            if weight <= 0:
                continue
            index = len(names)
            names.append(host)
            points.extend((p, index) for p in _host_points(host, max(1, weight // 4)))
        points.sort()
        self._nodes = tuple(names)
        self._hashes = [p for p, _ in points]
        self._owners = [i for _, i in points]

    @property
    def nodes(self) -> tuple[str, ...]:
        """The hosts on the ring, in the order given."""
        return self._nodes

    def __len__(self) -> int:
        """Number of points on the ring."""
        return len(self._hashes)

    def lookup(self, code: int, skip: frozenset[int] | set[int] = frozenset()) -> int | None:
        """Index (into :attr:`nodes`) of the node owning *code*, or None if the ring is empty.

        Nodes in *skip* are treated as removed from the ring, which is how C++ retries after
        a dead node: it erases the node, rebuilds, and looks again.
        """
        hashes, owners = self._hashes, self._owners
        n = len(hashes)
        code &= _MASK32
        first = 0
        if skip:
            while first < n and owners[first] in skip:
                first += 1
        if first >= n:
            return None
        if code <= hashes[first]:
            return owners[first]
        i = bisect.bisect_right(hashes, code)
        if skip:
            while i < n and owners[i] in skip:
                i += 1
        return owners[first] if i >= n else owners[i]

    def node_for(self, code: int) -> str | None:
        """The host owning *code* (``TC_ConsistentHashNew::getNodeName``)."""
        index = self.lookup(code)
        return None if index is None else self._nodes[index]


# -- the selector -----------------------------------------------------------------------------


class EndpointSelector(Generic[C]):
    """Picks a candidate per call; build one per endpoint list (or :meth:`update` it).

    *active* are the candidates to route to; *inactive* are the ones the registry lists as
    inactive, which only count for modulo hashing (so a node going down does not reshuffle
    every hash). With ``direct=False`` (registry answers) and static weighting, candidates
    whose weight is <= 0 are dropped, as C++ drops them. *rng* drives the last-resort random
    pick; pass a seeded ``random.Random`` for reproducible tests.

    Building is O(n log n); the weighted table and the ring are built on first use.
    """

    __slots__ = (
        "_active",
        "_direct",
        "_hash_table",
        "_hash_table_built",
        "_registry",
        "_registry_active",
        "_ring",
        "_ring_members",
        "_rng",
        "_rr_position",
        "_static",
        "_weighted",
        "_weighted_position",
        "_weighted_table",
    )

    def __init__(
        self,
        active: Sequence[C],
        inactive: Sequence[C] = (),
        *,
        direct: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._rr_position = 0
        self._direct = direct
        self._active: list[C] = []
        self._registry: list[C] = []
        self._registry_active: list[bool] = []
        self._static = False
        self._weighted: list[C] = []
        self._weighted_table: tuple[int, ...] | None = None
        self._weighted_position = 0
        self._hash_table: tuple[int, ...] = ()
        self._hash_table_built = False
        self._ring: KetamaRing | None = None
        self._ring_members: list[C] = []
        self.update(active, inactive)

    def update(self, active: Sequence[C], inactive: Sequence[C] = ()) -> None:
        """Replace the candidate lists (the round-robin position carries over, as in C++)."""
        by_key: dict[str, C] = {}
        for candidate in active:
            by_key.setdefault(candidate.endpoint.cmp_desc, candidate)
        static = bool(by_key) and all(c.endpoint.weight_type == 1 for c in by_key.values())
        if static and not self._direct:
            by_key = {k: c for k, c in by_key.items() if c.endpoint.weight > 0}
        active_keys = sorted(by_key)
        registry_map = dict(by_key)
        for candidate in inactive:
            if static and not self._direct and candidate.endpoint.weight <= 0:
                continue
            registry_map.setdefault(candidate.endpoint.cmp_desc, candidate)
        registry_keys = sorted(registry_map)

        self._active = [by_key[k] for k in active_keys]
        self._registry = [registry_map[k] for k in registry_keys]
        self._registry_active = [k in by_key for k in registry_keys]
        self._static = static
        self._weighted = [c for c in self._active if c.endpoint.weight > 0] if static else []
        self._weighted_table = None
        self._weighted_position = 0
        self._hash_table = ()
        self._hash_table_built = False
        self._ring = None
        self._ring_members = []

    # -- introspection -----------------------------------------------------------------------

    @property
    def candidates(self) -> tuple[C, ...]:
        """The active candidates, in routing order (by ``cmp_desc``)."""
        return tuple(self._active)

    @property
    def registry(self) -> tuple[C, ...]:
        """Active and inactive candidates in the order modulo hashing indexes them."""
        return tuple(self._registry)

    @property
    def static_weight(self) -> bool:
        """True when every active endpoint has ``weight_type`` 1."""
        return self._static

    def __len__(self) -> int:
        return len(self._active)

    def __repr__(self) -> str:
        mode = "static-weight" if self._static else "round-robin"
        return (
            f"<EndpointSelector {mode} active={len(self._active)} registry={len(self._registry)}>"
        )

    # -- selection ---------------------------------------------------------------------------

    def select(
        self,
        now: float,
        hash_code: int | None = None,
        consistent_key: int | str | None = None,
    ) -> C | None:
        """The candidate for one call, or None when there is no active candidate.

        *hash_code* selects by modulo hash (C++ ``tars_hash``), *consistent_key* by consistent
        hash (``tars_consistent_hash``; an int is used as the code, a string is hashed with
        :func:`consistent_key_code`); with neither, round-robin or static weight.
        """
        if consistent_key is not None:
            if hash_code is not None:
                raise ValueError("pass hash_code or consistent_key, not both")
            return self._consistent_hash(now, consistent_key_code(consistent_key))
        if hash_code is not None:
            return self._hash(now, hash_code)
        if self._static:
            return self._static_weight(now)
        return self._round_robin(now)

    def _round_robin(self, now: float) -> C | None:
        active = self._active
        n = len(active)
        if n == 0:
            return None
        position = self._rr_position
        tries = n
        while tries:
            tries -= 1
            position += 1
            if position >= n:
                position = 0
            candidate = active[position]
            health = candidate.health
            if health.available(now):
                self._rr_position = position
                if health.shielded:
                    health.begin_probe(now)
                return candidate
        self._rr_position = position
        return self._last_resort(now, active)

    def _static_weight(self, now: float) -> C | None:
        weighted = self._weighted
        if not weighted:
            return self._round_robin(now)
        table = self._weighted_table
        if table is None:
            weights = tuple(c.endpoint.weight for c in weighted)
            table = self._weighted_table = build_static_weight_table(weights)
        size = len(table)
        position = self._weighted_position
        tries = size
        while tries:
            tries -= 1
            position += 1
            if position >= size:
                position = 0
            candidate = weighted[table[position]]
            health = candidate.health
            if health.available(now):
                self._weighted_position = position
                if health.shielded:
                    health.begin_probe(now)
                return candidate
        self._weighted_position = position
        return self._last_resort(now, weighted)

    def _hash(self, now: float, code: int) -> C | None:
        registry = self._registry
        if not registry:
            return None
        code &= _MASK64  # C++ takes the code as size_t
        index = -1
        if self._static:
            table = self._static_hash_table()
            if table:
                index = table[code % len(table)]
        if index < 0:
            index = code % len(registry)
        candidate = registry[index]
        if self._registry_active[index] and candidate.health.available(now):
            return self._chosen(now, candidate)
        return self._rehash(now, code)

    def _rehash(self, now: float, code: int) -> C | None:
        """C++: hash again among the active nodes, dropping each unavailable one tried."""
        active = self._active
        if not active:
            return None
        remaining = list(active)
        connectable: list[C] = []
        while remaining:
            index = code % len(remaining)
            candidate = remaining[index]
            if candidate.health.available(now):
                return self._chosen(now, candidate)
            if not candidate.health.connect_broken:
                connectable.append(candidate)
            del remaining[index]
        if connectable:
            return self._chosen(now, connectable[code % len(connectable)])
        return self._chosen(now, self._rng.choice(active))

    def _static_hash_table(self) -> tuple[int, ...]:
        """The weighted table over the registry list (C++ ``_hashStaticRouterCache``)."""
        if not self._hash_table_built:
            indexes = [i for i, c in enumerate(self._registry) if c.endpoint.weight > 0]
            weights = tuple(self._registry[i].endpoint.weight for i in indexes)
            self._hash_table = tuple(indexes[k] for k in build_static_weight_table(weights))
            self._hash_table_built = True
        return self._hash_table

    def _consistent_hash(self, now: float, code: int) -> C | None:
        if not self._active:
            return None
        ring = self._ring
        if ring is None:
            ring = self._build_ring()
        members = self._ring_members
        skipped: set[int] | None = None
        while True:
            index = ring.lookup(code, skipped or frozenset())
            if index is None:
                break
            candidate = members[index]
            if candidate.health.available(now):
                return self._chosen(now, candidate)
            if skipped is None:
                skipped = set()
            skipped.add(index)
        # Every host on the ring is shielded: C++ falls back to the plain modulo hash.
        return self._normal_hash(now, code)

    def _normal_hash(self, now: float, code: int) -> C | None:
        code &= _MASK64
        index = code % len(self._registry)
        candidate = self._registry[index]
        if self._registry_active[index] and candidate.health.available(now):
            return self._chosen(now, candidate)
        return self._rehash(now, code)

    def _build_ring(self) -> KetamaRing:
        members: dict[str, C] = {}
        for candidate in self._active:  # first endpoint (by cmp_desc) of a host stands for it
            members.setdefault(candidate.endpoint.host, candidate)
        hosts = sorted(members)  # C++ keeps them in a map<string, AdapterProxy*>
        if self._static:
            nodes = [(h, members[h].endpoint.weight) for h in hosts]
        else:
            nodes = [(h, _DEFAULT_RING_WEIGHT) for h in hosts]
        ring = KetamaRing(nodes)
        self._ring_members = [members[h] for h in ring.nodes]
        self._ring = ring
        return ring

    def _chosen(self, now: float, candidate: C) -> C:
        health = candidate.health
        if health.shielded:
            health.begin_probe(now)
        return candidate

    def _last_resort(self, now: float, pool: Sequence[C]) -> C:
        """Nothing available: a random node that at least connects, else any (C++ rule)."""
        connectable = [c for c in pool if not c.health.connect_broken]
        candidate = self._rng.choice(connectable or pool)
        candidate.health.begin_probe(now)
        return candidate
