"""ShardedMap: the route cache's tables, whose changed copies share what they do not change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarsus.framework.registry.routes import RouteRow, RouteSnapshot, compile_rows
from tarsus.framework.registry.sharded import SHARDS, ShardedMap, shard_of


def test_a_mapping_like_a_dict() -> None:
    m = ShardedMap({f"k{i}": i for i in range(5000)})
    assert len(m) == 5000 and m["k7"] == 7 and m.get("k7") == 7
    assert m.get("nope") is None and m.get("nope", -1) == -1
    assert "k4999" in m and "nope" not in m and [] not in m  # unhashable: not a key
    assert dict(m) == {f"k{i}": i for i in range(5000)}
    assert m == {f"k{i}": i for i in range(5000)}
    assert sorted(m.items()) == sorted((f"k{i}", i) for i in range(5000))
    assert sorted(m.values()) == list(range(5000)) and ("k3", 3) in m.items()
    with pytest.raises(KeyError):
        m["nope"]
    assert len(ShardedMap()) == 0 and list(ShardedMap()) == []


def test_an_updated_copy_shares_the_shards_it_does_not_change() -> None:
    m = ShardedMap({f"k{i}": i for i in range(10_000)})
    before = dict(m)
    copy = m.updated({"k1": 100, "k2": None, "new": 5, "missing": None})
    assert dict(m) == before  # the original is left as it is
    assert copy["k1"] == 100 and "k2" not in copy and copy["new"] == 5
    assert len(copy) == 10_000  # one removed, one added
    changed = {shard_of(k) for k in ("k1", "k2", "new", "missing")}
    shared = sum(a is b for a, b in zip(m.shards(), copy.shards(), strict=True))
    assert shared == SHARDS - len(changed)
    assert m.updated({}) is m


@given(
    st.dictionaries(st.integers(0, 300), st.integers()),
    st.dictionaries(st.integers(0, 300), st.one_of(st.none(), st.integers())),
)
def test_updated_is_a_dict_update_with_removals(
    start: dict[int, int], changes: dict[int, int | None]
) -> None:
    expected = dict(start)
    for key, value in changes.items():
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    copy = ShardedMap(start).updated(changes)
    assert dict(copy) == expected and len(copy) == len(expected)


def test_from_shards_takes_filled_shards() -> None:
    shards: list[dict[str, int]] = ShardedMap.shards_to_fill()
    for i in range(100):
        shards[shard_of(f"k{i}")][f"k{i}"] = i
    m = ShardedMap.from_shards(shards)
    assert len(m) == 100 and m["k42"] == 42
    with pytest.raises(ValueError, match="shards"):
        ShardedMap.from_shards([{}])


def _row(app: str, server: str, node: str, port: int) -> RouteRow:
    return RouteRow(
        app, server, node, f"{app}.{server}.Obj", f"tcp -h {node} -p {port}",
        setting_state="active", present_state="active",
    )  # fmt: skip


def test_an_incremental_load_leaves_the_other_servers_shared() -> None:
    """One server of 2,000 changed: the new snapshot answers its new endpoint and shares
    every table shard but the changed ones with the old snapshot (what a collection of the
    young objects then walks is a few small dicts, not three tables of 2,000 entries)."""
    rows = [_row("A", f"S{s}", f"10.0.0.{n}", 9000 + s) for s in range(2000) for n in (1, 2)]
    old = RouteSnapshot.build(rows)
    changed = [_row("A", "S7", "10.0.0.3", 9999)]
    new = old.merged(compile_rows(changed, old.groups), replaced=[("A", "S7")])
    assert [e.host for e in new.find_by_id("A.S7.Obj")] == ["10.0.0.3"]
    assert [e.host for e in old.find_by_id("A.S7.Obj")] == ["10.0.0.1", "10.0.0.2"]
    assert len(new) == len(old) == 2000
    fresh = [b for a, b in zip(old.parts(), new.parts(), strict=True) if a is not b]
    assert len(fresh) == 3  # one shard of each table
    assert sum(len(shard) for shard in fresh) < 20  # not 3 x 2,000 entries
