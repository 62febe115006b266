"""Endpoint selection: round-robin, static weight, hash and consistent hash, as C++ routes.

Golden values marked "C++" were produced by compiling the upstream code at TarsCpp 622165c
(``TC_ConsistentHashNew`` with the ketama algorithm, ``EndpointManager::dispatchEndpointCache``)
and running it on the same input.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarsus.rpc.balance import (
    EndpointSelector,
    KetamaRing,
    build_static_weight_table,
    consistent_key_code,
    ketama_hash,
    tars_string_hash,
)
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.health import AdapterHealth, ShieldPolicy

POLICY = ShieldPolicy.V3_0_22  # one failure shields: short walks


@dataclass(eq=False)
class Node:
    endpoint: Endpoint
    health: AdapterHealth = field(default_factory=lambda: AdapterHealth(POLICY))

    def __repr__(self) -> str:
        return f"Node({self.endpoint.host}:{self.endpoint.port})"


def node(host: str, port: int = 10000, **options: int) -> Node:
    return Node(Endpoint("tcp", host, port, **options))  # type: ignore[arg-type]


def shield(n: Node, now: float = 0.0) -> None:
    n.health.finish_invoke(True, now)
    assert n.health.shielded


def hosts(picks: list[Node | None]) -> list[str]:
    return [p.endpoint.host if p else "-" for p in picks]


# -- round-robin -------------------------------------------------------------------------------


def test_round_robin_cycles_in_cmp_desc_order() -> None:
    a, b, c = node("10.0.0.1"), node("10.0.0.2"), node("10.0.0.3")
    sel = EndpointSelector([c, a, b])
    assert sel.candidates == (a, b, c)
    assert not sel.static_weight
    # C++ pre-increments a position that starts at 0, so the first call goes to the second.
    assert hosts([sel.select(0.0) for _ in range(6)]) == ["10.0.0.2", "10.0.0.3", "10.0.0.1"] * 2


def test_duplicates_collapse_and_empty_gives_none() -> None:
    a, a2 = node("a"), node("a")
    sel = EndpointSelector([a, a2])
    assert sel.candidates == (a,)
    assert EndpointSelector([]).select(0.0) is None
    assert EndpointSelector([]).select(0.0, hash_code=3) is None
    assert EndpointSelector([]).select(0.0, consistent_key="k") is None


def test_round_robin_skips_shielded_and_sends_one_probe_when_due() -> None:
    a, b, c = node("a"), node("b"), node("c")
    sel = EndpointSelector([a, b, c])
    shield(b, now=0.0)  # retry due at 5.0
    assert b not in [sel.select(1.0) for _ in range(10)]
    picks = [sel.select(5.0) for _ in range(9)]
    assert picks.count(b) == 1  # the probe; then it is closed for another interval
    assert b.health.retry_at == 10.0
    b.health.finish_invoke(False, 5.1)  # the probe succeeded
    assert Counter(sel.select(6.0) for _ in range(9)) == {a: 3, b: 3, c: 3}


def test_all_shielded_still_routes_preferring_nodes_that_connect() -> None:
    a, b, c = node("a"), node("b"), node("c")
    sel = EndpointSelector([a, b, c], rng=random.Random(1))
    shield(a)
    shield(b)
    c.health.connect_failed(0.0)
    picks = {sel.select(1.0) for _ in range(20)}
    assert picks <= {a, b}  # c cannot even connect
    assert picks  # each pick was a probe: the rest wait for their retry time
    sel2 = EndpointSelector([c])
    assert sel2.select(1.0) is c  # nothing better: c anyway


@given(st.integers(1, 12), st.integers(1, 5), st.integers(0, 20))
def test_round_robin_is_even(n: int, rounds: int, start: int) -> None:
    nodes = [node(f"10.0.0.{i}") for i in range(n)]
    sel = EndpointSelector(nodes)
    for _ in range(start):
        sel.select(0.0)
    counts = Counter(sel.select(0.0) for _ in range(n * rounds))
    assert set(counts.values()) == {rounds}


def test_update_keeps_the_position() -> None:
    a, b, c, d = node("a"), node("b"), node("c"), node("d")
    sel = EndpointSelector([a, b, c])
    assert sel.select(0.0) is b
    sel.update([a, b, c, d])
    assert hosts([sel.select(0.0) for _ in range(4)]) == ["c", "d", "a", "b"]


# -- static weight -----------------------------------------------------------------------------


def test_weight_table_matches_cxx() -> None:
    assert build_static_weight_table((100, 50)) == (0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0)
    three = "2,0,1,0,1,2,1,2,0,2,0,1,0,1,2,1,2,0,2,0,1,0,1,2,1,2,0,2,0,1"
    assert build_static_weight_table((100, 100, 100)) == tuple(map(int, three.split(",")))
    mixed = "2,1,0,2,1,2,2,0,1,2,2,1,0,2,1,2,2,0,1,2"
    assert build_static_weight_table((20, 30, 50)) == tuple(map(int, mixed.split(",")))
    # 3 is too light for the 1..33 scale: one slot up front, as C++ does.
    table = build_static_weight_table((3, 100, 7))
    assert table[:10] == (0, 1, 1, 1, 1, 1, 1, 1, 1, 2)
    assert Counter(table) == {0: 1, 1: 33, 2: 2}
    with pytest.raises(ValueError):
        build_static_weight_table((0, 10))


@given(st.lists(st.integers(1, 100), min_size=1, max_size=8))
def test_weight_table_follows_the_scaled_weights(weights: list[int]) -> None:
    table = build_static_weight_table(tuple(weights))
    scale = min(max(max(weights) // min(weights), 10), 100)
    for i, w in enumerate(weights):
        assert table.count(i) == max(1, w * scale // max(weights))


def test_static_weight_when_every_endpoint_says_so() -> None:
    a, b = node("a", weight=100, weight_type=1), node("b", weight=50, weight_type=1)
    sel = EndpointSelector([a, b])
    assert sel.static_weight
    assert Counter(sel.select(0.0) for _ in range(15)) == {a: 10, b: 5}
    mixed = EndpointSelector([a, b, node("c", weight=50)])
    assert not mixed.static_weight  # C++: one round-robin endpoint turns weighting off


def test_static_weight_skips_shielded_and_zero_weights() -> None:
    a, b = node("a", weight=100, weight_type=1), node("b", weight=50, weight_type=1)
    z = node("z", weight=0, weight_type=1)
    sel = EndpointSelector([a, b, z])
    assert z not in {sel.select(0.0) for _ in range(30)}
    shield(a, now=0.0)
    assert {sel.select(1.0) for _ in range(30)} == {b}
    # From the registry, weight-0 endpoints are dropped altogether.
    assert z not in EndpointSelector([a, b, z], direct=False).candidates


def test_static_weight_with_no_weighted_node_falls_back_to_round_robin() -> None:
    z1, z2 = node("z1", weight=0, weight_type=1), node("z2", weight=0, weight_type=1)
    sel = EndpointSelector([z1, z2])
    assert Counter(sel.select(0.0) for _ in range(4)) == {z1: 2, z2: 2}


# -- hash --------------------------------------------------------------------------------------


def test_hash_is_code_mod_n_over_the_registry_list() -> None:
    a, b, c = node("a"), node("b"), node("c")
    gone = node("b2")  # inactive in the registry, still counted
    sel = EndpointSelector([c, a, b], inactive=[gone])
    # ordered by cmp_desc strings, as C++ orders them: "1:b2:10000" < "1:b:10000"
    assert [p.endpoint.host for p in sel.registry] == ["a", "b2", "b", "c"]
    # code 1 names the inactive b2: C++ hashes again among the active [a, b, c]: 1 % 3 -> b
    assert hosts([sel.select(0.0, hash_code=k) for k in range(5)]) == ["a", "b", "b", "c", "a"]
    # b2 leaving the registry reshuffles codes, which is why C++ keeps inactive nodes listed
    assert EndpointSelector([a, b, c]).select(0.0, hash_code=3) is a


def test_hash_rehashes_among_active_nodes_dropping_misses() -> None:
    a, b, c, d = node("a"), node("b"), node("c"), node("d")
    sel = EndpointSelector([a, b, c, d])
    assert sel.select(0.0, hash_code=5) is b  # 5 % 4
    shield(b)
    # [a, b, c, d]: 5 % 4 -> b (shielded, dropped); [a, c, d]: 5 % 3 -> d
    assert sel.select(1.0, hash_code=5) is d
    shield(d)
    # [a, c, d] after b: 5 % 3 -> d dropped; [a, c]: 5 % 2 -> c
    assert sel.select(1.0, hash_code=5) is c
    assert all(sel.select(1.0, hash_code=5) is c for _ in range(5))  # stable


def test_hash_with_everything_down_prefers_connectable_by_code() -> None:
    a, b, c = node("a"), node("b"), node("c")
    sel = EndpointSelector([a, b, c])
    shield(a)
    shield(c)
    b.health.connect_failed(0.0)
    # code 4 over [a, b, c] -> b, down and cannot connect; [a, c] -> a, down; [c] -> c, down.
    # Nothing available: C++ takes the connectable ones in the order tried, [a, c][4 % 2].
    assert sel.select(1.0, hash_code=4) is a
    assert a.health.retry_at == 6.0  # sent as a probe
    assert sel.select(1.0, hash_code=4) is a  # still forced there, not random


def test_negative_codes_wrap_like_size_t() -> None:
    nodes = [node(f"n{i}") for i in range(3)]
    sel = EndpointSelector(nodes)
    assert sel.select(0.0, hash_code=-1) is sel.registry[(2**64 - 1) % 3]


def test_static_hash_goes_through_the_weighted_table() -> None:
    a, b = node("a", weight=100, weight_type=1), node("b", weight=50, weight_type=1)
    sel = EndpointSelector([a, b])
    table = build_static_weight_table((100, 50))
    for code in range(30):
        assert sel.select(0.0, hash_code=code) is (a, b)[table[code % len(table)]]


def test_hash_and_consistent_hash_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        EndpointSelector([node("a")]).select(0.0, hash_code=1, consistent_key=2)


# -- consistent hash ---------------------------------------------------------------------------

THREE = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]

# C++ TC_ConsistentHashNew (ketama, 25 virtual nodes each): getNodeName(uint32 code)
CXX_CODES = {
    3280387012: "10.0.0.3",
    1095513148: "10.0.0.3",
    1930549411: "10.0.0.3",
    2798570523: "10.0.0.2",
    3387541014: "10.0.0.1",
    403123852: "10.0.0.1",
    3589583794: "10.0.0.1",
    1912923437: "10.0.0.2",
    4059906722: "10.0.0.2",
    3871601465: "10.0.0.2",
    0: "10.0.0.2",
    4294967295: "10.0.0.2",
}
# ... and getNodeName(const string& key)
CXX_KEYS = {
    "user-1": "10.0.0.3",
    "user-2": "10.0.0.2",
    "user-3": "10.0.0.2",
    "order:42": "10.0.0.2",
    "alice": "10.0.0.3",
    "bob": "10.0.0.2",
    "carol": "10.0.0.3",
    "dave": "10.0.0.1",
    "eve": "10.0.0.1",
    "mallory": "10.0.0.3",
}


def test_ring_matches_cxx() -> None:
    ring = KetamaRing([(h, 100) for h in THREE])
    assert len(ring) == 3 * 25 * 4
    for code, host in CXX_CODES.items():
        assert ring.node_for(code) == host
    for key, host in CXX_KEYS.items():
        assert ring.node_for(consistent_key_code(key)) == host


def test_ring_point_counts_follow_weight_over_four() -> None:
    assert len(KetamaRing([("h", 100)])) == 100
    assert len(KetamaRing([("h", 40)])) == 40
    assert len(KetamaRing([("h", 3)])) == 4  # at least one virtual node
    assert len(KetamaRing([("h", 0), ("g", -1)])) == 0
    assert KetamaRing([]).node_for(5) is None


def test_ring_edges() -> None:
    ring = KetamaRing([(h, 100) for h in THREE])
    points = sorted(zip(ring._hashes, ring._owners, strict=True))
    first, last = points[0], points[-1]
    assert ring.lookup(first[0]) == first[1]  # at the first point: that point
    assert ring.lookup(last[0] + 1) == first[1]  # past the last: wraps
    second = points[1]
    assert ring.lookup(first[0] + 1) == second[1]  # strictly after: the next point


def test_consistent_hash_selects_like_cxx_and_by_host() -> None:
    nodes = [node(h) for h in THREE] + [node("10.0.0.1", port=20000)]
    sel = EndpointSelector(nodes)
    for key, host in CXX_KEYS.items():
        picked = sel.select(0.0, consistent_key=key)
        assert picked is not None and picked.endpoint.host == host
        if host == "10.0.0.1":
            assert picked.endpoint.port == 10000  # the host's first endpoint stands for it
    for code, host in CXX_CODES.items():
        picked = sel.select(0.0, consistent_key=code)
        assert picked is not None and picked.endpoint.host == host


def test_consistent_hash_skips_a_shielded_host_only_for_its_keys() -> None:
    nodes = {h: node(h) for h in THREE}
    sel = EndpointSelector(list(nodes.values()))
    keys = [f"k{i}" for i in range(300)]
    before = {k: sel.select(0.0, consistent_key=k) for k in keys}
    shield(nodes["10.0.0.3"], now=0.0)
    after = {k: sel.select(1.0, consistent_key=k) for k in keys}
    ring_without = KetamaRing([(h, 100) for h in THREE[:2]])
    for k in keys:
        if before[k] is nodes["10.0.0.3"]:
            picked = after[k]
            assert picked is not None
            assert picked.endpoint.host == ring_without.node_for(consistent_key_code(k))
        else:
            assert after[k] is before[k]


def test_consistent_hash_with_every_host_down_falls_back_to_hash() -> None:
    a, b = node("a"), node("b")
    sel = EndpointSelector([a, b])
    shield(a)
    shield(b)
    # hash: 7 % 2 -> b down; rehash [a, b] -> b, [a] -> a; connectable [b, a][7 % 2] -> a
    assert sel.select(1.0, consistent_key=7) is a


def test_static_weight_ring_uses_the_weights() -> None:
    a, b = node("a", weight=100, weight_type=1), node("b", weight=8, weight_type=1)
    sel = EndpointSelector([a, b])
    counts = Counter(sel.select(0.0, consistent_key=f"key{i}") for i in range(2000))
    assert counts[a] > 5 * counts[b] > 0  # 25 vs 2 virtual nodes


OLD_HOST = st.from_regex(r"10\.0\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
NEW_HOST = st.from_regex(r"10\.1\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)


@given(
    st.lists(OLD_HOST, min_size=1, max_size=6, unique=True),
    NEW_HOST,
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50),
)
def test_adding_a_node_only_moves_keys_to_it(
    old_hosts: list[str], new_host: str, codes: list[int]
) -> None:
    before = KetamaRing([(h, 100) for h in old_hosts])
    after = KetamaRing([(h, 100) for h in [*old_hosts, new_host]])
    for code in codes:
        moved_to = after.node_for(code)
        assert moved_to in (before.node_for(code), new_host)


def test_key_codes() -> None:
    assert consistent_key_code(12345) == 12345
    assert consistent_key_code("a") == consistent_key_code(b"a")
    assert ketama_hash(b"") == 0xD98C1DD4  # md5("") = d41d8cd9 8f00...: little-endian
    # C++ tars::hash<std::string>: values from the compiled upstream header.
    assert tars_string_hash("user:12345") == 97755061
    assert tars_string_hash("") == 0
