"""The route cache (docs/registry.md): each rule has a case that fails without it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tarsus.framework.registry.routes import (
    ACTIVE,
    INACTIVE,
    GroupIndex,
    GroupPriority,
    GroupRule,
    RouteCache,
    RouteRow,
    RouteSnapshot,
    caller_ip,
    compile_steps,
)

OBJ = "App.Svc.Obj"


def row(
    node: str,
    *,
    host: str | None = None,
    port: int = 9000,
    endpoint: str | None = None,
    servant: str = OBJ,
    app: str = "App",
    server: str = "Svc",
    state: str = "active",
    setting: str = "active",
    flow: str = "active",
    group: str = "N",
    ip_group: str = "",
    set_: tuple[str, str, str] | None = None,
    bak: int = 0,
    registry: bool = False,
) -> RouteRow:
    host = host or node
    if endpoint is None:
        endpoint = f"tcp -h {host} -p {port} -t 60000"
    return RouteRow(
        application=app,
        server_name=server,
        node_name=node,
        servant=servant,
        endpoint=endpoint,
        enable_group=group,
        setting_state=setting,
        present_state=state,
        flow_state=flow,
        enable_set="Y" if set_ else "N",
        set_name=set_[0] if set_ else "",
        set_area=set_[1] if set_ else "",
        set_group=set_[2] if set_ else "",
        ip_group_name=ip_group,
        bak_flag=bak,
        from_registry=registry,
    )


def hosts(endpoints: list[Any]) -> list[str]:
    """The node names (each test row's node name tells it apart)."""
    return [e.nodeName for e in endpoints]


def answer(result: tuple[int, list[Any], list[Any]]) -> tuple[int, list[str], list[str]]:
    ret, active, inactive = result
    return ret, hosts(active), hosts(inactive)


# -- one row -> one EndpointF -------------------------------------------------------------------


def test_endpointf_fields_come_from_the_endpoint_string() -> None:
    snap = RouteSnapshot.build(
        [
            row("n1", endpoint="tcp -h 10.0.0.1 -p 9001 -t 5000 -g 3 -q 7 -w 30 -v 1 -e 1"),
            row("n2", endpoint="udp -h 10.0.0.2 -p 9002"),
            row("n3", endpoint="ssl -h 10.0.0.3 -p 9003 -t 100"),
            row(" n4 ", endpoint="tcp -h * -p 9004 -v 1"),
        ]
    )
    by_host = {e.host: e for e in snap.find_by_id(OBJ)}
    tcp, udp, ssl, star = (by_host[h] for h in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "0.0.0.0"))
    assert (tcp.port, tcp.timeout, tcp.istcp, tcp.weight, tcp.weightType, tcp.authType) == (
        9001,
        5000,
        1,
        30,
        1,
        1,
    )
    assert (tcp.grid, tcp.qos) == (0, 0)  # upstream does not copy -g/-q into EndpointF
    assert (udp.istcp, udp.timeout, udp.weight, udp.weightType) == (0, 3000, -1, 0)
    assert ssl.istcp == 2
    assert tcp.nodeName == "n1"
    assert star.nodeName == "n4"  # trimmed
    assert star.weight == 100  # weightType 1 without -w: 100, as TC_Endpoint
    assert (tcp.groupworkid, tcp.grouprealid, tcp.setId, tcp.bakFlag) == (-1, -1, "", 0)


def test_unparseable_endpoint_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "tarsus.registry.routes")
    snap = RouteSnapshot.build(
        [row("n1"), row("n2", endpoint="tcp -p 80"), row("n3", endpoint="http://x")]
    )
    assert answer(snap.find_4any(OBJ)) == (0, ["n1"], [])
    assert "n2" in caplog.text and "n3" in caplog.text


def test_standby_rows_are_never_returned() -> None:
    rows = [
        row("n1"),
        row("n2", bak=1),
        row("n3", bak=1, state="inactive"),
        row("n4", bak=1, set_=("s", "sz", "1")),
        row("n5", set_=("s", "sz", "1")),
    ]
    snap = RouteSnapshot.build(rows)
    assert hosts(snap.find_by_id(OBJ)) == ["n1", "n5"]
    assert answer(snap.find_4any(OBJ)) == (0, ["n1", "n5"], [])
    assert answer(snap.find_in_same_group(OBJ, "1.2.3.4")) == (0, ["n1", "n5"], [])
    assert answer(snap.find_in_same_set(OBJ, "s.sz.1", "")) == (0, ["n5"], [])


@pytest.mark.parametrize(
    ("setting", "present", "flow", "active"),
    [
        ("active", "active", "active", True),
        ("Active", "ACTIVE", "Active", True),  # enum names as tarsnode writes them
        ("inactive", "active", "active", False),
        ("active", "inactive", "active", False),
        ("active", "activating", "active", False),
        ("active", "active", "inactive", False),
    ],
)
def test_active_needs_setting_present_and_flow(
    setting: str, present: str, flow: str, active: bool
) -> None:
    snap = RouteSnapshot.build([row("n1", setting=setting, state=present, flow=flow)])
    expect = (0, ["n1"], []) if active else (0, [], ["n1"])
    assert answer(snap.find_4any(OBJ)) == expect
    assert hosts(snap.find_by_id(OBJ)) == (["n1"] if active else [])


def test_rows_without_adapter_only_set_the_status_map() -> None:
    cache = RouteCache()
    cache.load_full(
        [
            row("n1"),
            row("n2", servant="", endpoint=""),
            row("n3", servant="", endpoint="", state="inactive"),
            row("n4", servant="", endpoint="", flow="inactive"),  # flow ignored without adapter
            row("n5", flow="inactive"),
            row("r1", registry=True, app="", server=""),
        ]
    )
    assert answer(cache.snapshot.find_4any(OBJ)) == (0, ["n1", "r1"], ["n5"])
    assert "" not in cache.snapshot
    assert cache.status == {
        ("App", "Svc", "n1"): ACTIVE,
        ("App", "Svc", "n2"): ACTIVE,
        ("App", "Svc", "n3"): INACTIVE,
        ("App", "Svc", "n4"): ACTIVE,
        ("App", "Svc", "n5"): INACTIVE,
    }


def test_dynamic_weight_is_answered_as_round_robin_when_active_only() -> None:
    snap = RouteSnapshot.build(
        [
            row("n1", endpoint="tcp -h n1 -p 1 -v 2 -w 40"),
            row("n2", state="inactive", endpoint="tcp -h n2 -p 1 -v 2"),
        ]
    )
    _, active, inactive = snap.find_4any(OBJ)
    assert (active[0].weightType, active[0].weight) == (0, 40)
    assert (inactive[0].weightType, inactive[0].weight) == (2, 100)


# -- groups --------------------------------------------------------------------------------------

RULES = [
    GroupRule(1, "sz", "10.1.0.1|10.1.1.*"),
    GroupRule(2, "sh", "10.2.0.*"),
    GroupRule(3, "bj", "10.3.0.*|10.1.0.9"),
]


def test_group_ids_exact_then_star_then_minus_one() -> None:
    index = GroupIndex(RULES)
    assert index.group_of("10.1.0.1") == 1
    assert index.group_of("10.1.1.200") == 1
    assert index.group_of("10.1.0.2") == -1  # only 10.1.0.1 is in sz
    assert index.group_of("10.1.0.9") == 3
    assert index.group_of("010.002.000.5") == 2  # parts read as numbers, as upstream
    assert index.group_of("fe80::1") == -1
    assert index.group_of("") == -1
    assert index.group_of_name("sh") == 2
    assert index.group_of_name("nope") == -1
    assert index.group_of_name("") == -1


def test_later_rule_wins_an_address() -> None:
    index = GroupIndex([GroupRule(5, "b", "10.0.0.1"), GroupRule(4, "a", "10.0.0.1")])
    assert index.group_of("10.0.0.1") == 5  # rules apply in group_id order


def test_work_group_needs_enable_group_and_real_group_prefers_ip_group_name() -> None:
    snap = RouteSnapshot.build(
        [
            row("a", host="10.1.0.1", group="Y"),
            row("b", host="10.1.0.1", group="N"),
            row("c", host="10.1.0.1", group="y", ip_group="sh"),
            row("d", host="10.9.9.9", group="Y"),
            row("e", host="10.1.0.1", group="Y", ip_group="unknown"),
        ],
        RULES,
    )
    ids = {e.nodeName: (e.grouprealid, e.groupworkid) for e in snap.find_by_id(OBJ)}
    assert ids == {"a": (1, 1), "b": (1, -1), "c": (2, 2), "d": (-1, -1), "e": (-1, -1)}


def group_rows() -> list[RouteRow]:
    return [
        row("sz1", host="10.1.1.1", group="Y"),
        row("sz2", host="10.1.1.2", group="Y", state="inactive"),
        row("sh1", host="10.2.0.1", group="Y"),
        row("bj1", host="10.3.0.1", group="Y"),
        row("free", host="10.9.0.1", group="N"),
    ]


def test_caller_in_a_group_gets_its_group() -> None:
    snap = RouteSnapshot.build(group_rows(), RULES)
    assert answer(snap.find_in_same_group(OBJ, "10.1.1.77")) == (0, ["sz1"], ["sz2"])
    assert answer(snap.find_4all(OBJ, "10.2.0.7")) == (0, ["sh1"], [])


def test_caller_without_group_gets_everything() -> None:
    snap = RouteSnapshot.build(group_rows(), RULES)
    assert answer(snap.find_in_same_group(OBJ, "192.168.0.1")) == (
        0,
        ["sz1", "sh1", "bj1", "free"],
        ["sz2"],
    )


def test_4any_ignores_groups() -> None:
    snap = RouteSnapshot.build(group_rows(), RULES)
    assert answer(snap.find_4any(OBJ)) == (0, ["sz1", "sh1", "bj1", "free"], ["sz2"])


def test_no_active_in_own_group_walks_priorities_in_list_order() -> None:
    rows = [r for r in group_rows() if r.node_name != "sz1"]  # sz: only an inactive one
    priorities = [
        GroupPriority(1, "2|3", list_order=1, station="north"),  # does not hold group 1
        GroupPriority(2, "1|3", list_order=3, station="b"),
        GroupPriority(3, "1,2", list_order=2, station="a"),  # first holding group 1
    ]
    snap = RouteSnapshot.build(rows, RULES, priorities)
    assert answer(snap.find_in_same_group(OBJ, "10.1.1.5")) == (0, ["sh1"], ["sz2"])


def test_priority_row_without_active_is_skipped() -> None:
    rows = [
        row("sz1", host="10.1.1.1", group="Y", state="inactive"),
        row("sh1", host="10.2.0.1", group="Y", state="inactive"),
        row("bj1", host="10.3.0.1", group="Y"),
    ]
    priorities = [GroupPriority(1, "1|2", 1), GroupPriority(2, "1;3", 2)]
    snap = RouteSnapshot.build(rows, RULES, priorities)
    assert answer(snap.find_in_same_group(OBJ, "10.1.1.5")) == (0, ["bj1"], ["sz1"])


def test_then_servers_without_grouping_then_everything() -> None:
    rows = [
        row("sz1", host="10.1.1.1", group="Y", state="inactive"),
        row("sh1", host="10.2.0.1", group="Y"),
        row("free", host="10.9.0.1", group="N"),
        row("free2", host="10.9.0.2", group="N", state="inactive"),
    ]
    snap = RouteSnapshot.build(rows, RULES)
    # no priority rows: ungrouped servers (inactive filtered the same way)
    assert answer(snap.find_in_same_group(OBJ, "10.1.1.5")) == (0, ["free"], ["free2"])
    rows = [r for r in rows if r.node_name != "free"]
    snap = RouteSnapshot.build(rows, RULES)
    # nothing ungrouped active either: everything
    assert answer(snap.find_in_same_group(OBJ, "10.1.1.5")) == (0, ["sh1"], ["sz1", "free2"])


def test_priority_groups_parse_like_upstream() -> None:
    index = GroupIndex(
        [], [GroupPriority(1, "1|2,3;;4", 0, "s"), GroupPriority(2, "0x10|7x|x", 1, "t")]
    )
    assert index.stations == {"s": frozenset({1, 2, 3, 4}), "t": frozenset({16, 7, 0})}


def test_unknown_object_is_an_empty_answer() -> None:
    snap = RouteSnapshot.build(group_rows(), RULES, [GroupPriority(1, "1", 0, "st")])
    assert snap.find_by_id("No.Such.Obj") == []
    assert snap.find_4any("No.Such.Obj") == (0, [], [])
    assert snap.find_in_same_group("No.Such.Obj", "10.1.1.1") == (0, [], [])
    assert snap.find_in_same_station("No.Such.Obj", "st") == (0, [], [])
    assert snap.find_in_same_set("No.Such.Obj", "a.b.c", "") == (0, [], [])


# -- stations ------------------------------------------------------------------------------------


def test_station_uses_real_groups_of_its_first_row() -> None:
    rows = [*group_rows(), row("shfree", host="10.2.0.9", group="N")]
    priorities = [
        GroupPriority(1, "2", 0, "east"),
        GroupPriority(2, "1", 1, "east"),  # a later row of the same station is not used
        GroupPriority(3, "3", 2, "west"),
    ]
    snap = RouteSnapshot.build(rows, RULES, priorities)
    # real group: shfree has no work group but is in sh by address
    assert answer(snap.find_in_same_station(OBJ, "east")) == (0, ["sh1", "shfree"], [])
    assert answer(snap.find_in_same_station(OBJ, "west")) == (0, ["bj1"], [])
    assert snap.find_in_same_station(OBJ, "nowhere") == (-1, [], [])


# -- sets ----------------------------------------------------------------------------------------


def set_rows() -> list[RouteRow]:
    return [
        row("g1a", set_=("app", "sz", "1")),
        row("g1b", set_=("app", "sz", "1"), state="inactive"),
        row("g2", set_=("app", "sz", "2")),
        row("gw", set_=("app", "sz", "*")),
        row("sh1", set_=("app", "sh", "1")),
        row("other", set_=("web", "sz", "1")),
        row("noset"),
    ]


def test_set_exact_group() -> None:
    snap = RouteSnapshot.build(set_rows())
    assert answer(snap.find_in_same_set(OBJ, "app.sz.1", "")) == (0, ["g1a"], ["g1b"])
    assert answer(snap.find_in_same_set(OBJ, "app.sh.1", "")) == (0, ["sh1"], [])


def test_set_group_with_only_dead_members_does_not_fall_to_the_wildcard() -> None:
    rows = [r for r in set_rows() if r.node_name != "g1a"]
    snap = RouteSnapshot.build(rows)
    assert answer(snap.find_in_same_set(OBJ, "app.sz.1", "")) == (0, [], ["g1b"])


def test_set_unknown_group_falls_to_wildcard_group() -> None:
    snap = RouteSnapshot.build(set_rows())
    assert answer(snap.find_in_same_set(OBJ, "app.sz.9", "")) == (0, ["gw"], [])


def test_set_without_group_or_wildcard_is_minus_one_not_another_set() -> None:
    snap = RouteSnapshot.build(set_rows())
    assert snap.find_in_same_set(OBJ, "app.sh.9", "") == (-1, [], [])
    assert snap.find_in_same_set(OBJ, "app.gz.1", "") == (-1, [], [])


def test_set_star_group_takes_the_whole_area() -> None:
    snap = RouteSnapshot.build(set_rows())
    assert answer(snap.find_in_same_set(OBJ, "app.sz.*", "")) == (
        0,
        ["g1a", "g2", "gw"],
        ["g1b"],
    )
    assert snap.find_in_same_set(OBJ, "app.gz.*", "") == (-1, [], [])


def test_set_name_unknown_to_the_servant_falls_back_to_idc_groups() -> None:
    rows = [*set_rows(), row("sz-grouped", host="10.1.1.1", group="Y")]
    snap = RouteSnapshot.build(rows, RULES)
    # no "mobile" set rows: IDC logic for the caller 10.1.1.x (group 1)
    assert answer(snap.find_in_same_set(OBJ, "mobile.sz.1", "10.1.1.9")) == (
        0,
        ["sz-grouped"],
        [],
    )


def test_servant_without_set_rows_falls_back_to_idc_groups() -> None:
    snap = RouteSnapshot.build(group_rows(), RULES)
    assert answer(snap.find_in_same_set(OBJ, "app.sz.1", "10.2.0.3")) == (0, ["sh1"], [])


@pytest.mark.parametrize("bad", ["app.sz", "app.sz.1.2", "*.sz.1", "app.*.1", "app..1", ""])
def test_malformed_caller_set_is_minus_one(bad: str) -> None:
    snap = RouteSnapshot.build(set_rows())
    assert snap.find_in_same_set(OBJ, bad, "") == (-1, [], [])


@pytest.mark.parametrize(
    "division", [("*", "sz", "1"), ("app", "*", "1"), ("", "sz", "1"), ("app", "sz", "")]
)
def test_invalid_set_rows_are_routed_as_non_set(
    division: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "tarsus.registry.routes")
    snap = RouteSnapshot.build([row("bad", set_=division), row("plain")])
    # the servant has no valid set rows: IDC logic (everything, caller in no group)
    assert answer(snap.find_in_same_set(OBJ, "app.sz.1", "")) == (0, ["bad", "plain"], [])
    assert "invalid" in caplog.text
    # the setId is still sent, as upstream
    assert {e.setId for e in snap.find_by_id(OBJ)} == {".".join(division), ""}


def test_set_id_is_sent_for_set_rows() -> None:
    snap = RouteSnapshot.build(set_rows())
    ids = {e.nodeName: e.setId for e in snap.find_by_id(OBJ)}
    assert ids["g1a"] == "app.sz.1" and ids["gw"] == "app.sz.*" and ids["noset"] == ""


# -- loads ---------------------------------------------------------------------------------------


def two_servers() -> list[RouteRow]:
    return [
        row("n1", servant="A.One.Obj", app="A", server="One"),
        row("n2", servant="A.One.Obj", app="A", server="One"),
        row("n1", servant="A.One.Admin", app="A", server="One", port=9001),
        row("n1", servant="A.Two.Obj", app="A", server="Two"),
    ]


def test_incremental_load_replaces_whole_servers() -> None:
    cache = RouteCache()
    before = cache.load_full(two_servers())
    two = before.servants["A.Two.Obj"]
    # A.One now: n2 gone, n1 inactive, A.One.Admin removed from the server
    after = cache.load_servers(
        [row("n1", servant="A.One.Obj", app="A", server="One", state="inactive")],
        replaced=[("A", "One")],
    )
    assert answer(after.find_4any("A.One.Obj")) == (0, [], ["n1"])
    assert "A.One.Admin" not in after
    assert after.servants["A.Two.Obj"] is two  # untouched server: same routes
    # readers holding the old snapshot still see it whole
    assert answer(before.find_4any("A.One.Obj")) == (0, ["n1", "n2"], [])
    assert "A.One.Admin" in before


def test_incremental_load_of_a_server_without_rows_removes_it() -> None:
    cache = RouteCache()
    cache.load_full(two_servers())
    snap = cache.load_servers([], replaced=[("A", "Two")])
    assert "A.Two.Obj" not in snap and "A.One.Obj" in snap


def test_incremental_load_updates_the_status_map() -> None:
    cache = RouteCache()
    cache.load_full(two_servers())
    cache.load_servers(
        [row("n2", servant="A.One.Obj", app="A", server="One", state="inactive")],
        replaced=[("A", "One")],
    )
    assert cache.status[("A", "One", "n2")] == INACTIVE
    assert cache.status[("A", "Two", "n1")] == ACTIVE


def test_full_load_replaces_everything() -> None:
    cache = RouteCache()
    cache.load_full(two_servers())
    snap = cache.load_full([row("n9", servant="B.Three.Obj", app="B", server="Three")])
    assert list(snap.servants) == ["B.Three.Obj"]
    assert set(cache.status) == {("B", "Three", "n9")}


def test_full_load_with_new_group_rules_recomputes_groups() -> None:
    cache = RouteCache()
    rows = [row("a", host="10.1.1.1", group="Y")]
    cache.load_full(rows)
    assert cache.snapshot.find_by_id(OBJ)[0].groupworkid == -1
    cache.load_full(rows, RULES)
    assert cache.snapshot.find_by_id(OBJ)[0].groupworkid == 1


def test_unchanged_full_load_keeps_the_routes() -> None:
    cache = RouteCache()
    first = cache.load_full(two_servers())
    second = cache.load_full(two_servers())
    assert second is not first
    assert second.servants["A.One.Obj"] is first.servants["A.One.Obj"]


def test_full_load_resets_the_status_map_and_shares_what_did_not_change() -> None:
    cache = RouteCache()
    cache.load_full(two_servers())
    cache.status[("A", "One", "n1")] = 1  # a node reported "activating"
    cache.status[("X", "Gone", "n7")] = ACTIVE  # a report for an instance no load has
    unchanged = cache.status.server(("A", "Two"))
    cache.load_full(two_servers())
    assert cache.status == {
        ("A", "One", "n1"): ACTIVE,
        ("A", "One", "n2"): ACTIVE,
        ("A", "Two", "n1"): ACTIVE,
    }
    assert cache.status.server(("A", "Two")) is unchanged  # not rebuilt (docs/registry.md)
    del cache.status[("A", "Two", "n1")]
    assert ("A", "Two", "n1") not in cache.status and len(cache.status) == 2
    assert cache.status.get(("A", "Two", "n1"), -1) == -1
    assert cache.status.server(("A", "Two")) is None


def test_lookups_during_a_stepped_full_load_see_the_old_routes_then_the_new() -> None:
    """What the registry does with a load's steps between lookups: nothing a lookup reads
    changes until the new snapshot is installed, in one assignment."""
    cache = RouteCache()
    cache.load_full(two_servers())
    old = [answer(cache.snapshot.find_4any(o)) for o in ("A.One.Obj", "A.Two.Obj")]
    new_rows = [
        row("n3", servant="A.One.Obj", app="A", server="One"),
        row("n1", servant="A.Two.Obj", app="A", server="Two", state="inactive"),
    ]
    seen = []

    def lookups() -> None:
        seen.append([answer(cache.snapshot.find_4any(o)) for o in ("A.One.Obj", "A.Two.Obj")])

    steps = compile_steps(new_rows, cache.snapshot.groups, cache.snapshot, cache.status)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            compiled = done.value
            break
        lookups()
    build = RouteSnapshot.from_compiled_steps(compiled, previous=cache.snapshot)
    while True:
        try:
            next(build)
        except StopIteration as done:
            snapshot = done.value
            break
        lookups()
    assert len(seen) > 2 and all(answers == old for answers in seen)
    cache.install_full(compiled, snapshot)
    lookups()
    assert seen[-1] == [(0, ["n3"], []), (0, [], ["n1"])]


def test_registry_rows_and_server_rows_of_one_servant_are_merged() -> None:
    registry = row("r1", servant="tars.tarsregistry.QueryObj", app="", server="", registry=True)
    deployed = row("n1", servant="tars.tarsregistry.QueryObj", app="tars", server="tarsregistry")
    cache = RouteCache()
    cache.load_full([deployed, registry])
    assert answer(cache.snapshot.find_4any("tars.tarsregistry.QueryObj")) == (0, ["n1", "r1"], [])
    # an incremental load of the deployed server keeps the registry row, and vice versa
    cache.load_servers(
        [
            row(
                "n1",
                servant="tars.tarsregistry.QueryObj",
                app="tars",
                server="tarsregistry",
                state="inactive",
            )
        ],
        replaced=[("tars", "tarsregistry")],
    )
    assert answer(cache.snapshot.find_4any("tars.tarsregistry.QueryObj")) == (0, ["r1"], ["n1"])


def test_memoised_group_answers_follow_new_loads() -> None:
    cache = RouteCache()
    rows = group_rows()
    cache.load_full(rows, RULES)
    assert answer(cache.snapshot.find_in_same_group(OBJ, "10.2.0.1"))[1] == ["sh1"]
    rows = [
        r if r.node_name != "sh1" else row("sh1", host="10.2.0.1", group="Y", state="inactive")
        for r in rows
    ]
    cache.load_servers(rows, replaced=[("App", "Svc")])
    # sh: nothing active; no priorities; ungrouped "free" next
    assert answer(cache.snapshot.find_in_same_group(OBJ, "10.2.0.1")) == (0, ["free"], [])


def test_present_state_changes_apply_without_a_load() -> None:
    cache = RouteCache()
    before = cache.load_full(two_servers())
    after = cache.set_present_states(
        {("A", "One", "n1"): "inactive", ("A", "Nope", "n1"): "inactive"}
    )
    assert answer(after.find_4any("A.One.Obj")) == (0, ["n2"], ["n1"])
    assert answer(after.find_4any("A.One.Admin")) == (0, [], ["n1"])
    assert answer(before.find_4any("A.One.Obj")) == (0, ["n1", "n2"], [])
    assert after.servants["A.Two.Obj"] is before.servants["A.Two.Obj"]
    back = cache.set_present_states({("A", "One", "n1"): "active"})
    assert answer(back.find_4any("A.One.Obj")) == (0, ["n1", "n2"], [])


def test_unchanged_present_state_keeps_the_snapshot() -> None:
    cache = RouteCache()
    before = cache.load_full(two_servers())
    assert cache.set_present_states({("A", "One", "n1"): "active"}) is before


def test_instances_of_nodes() -> None:
    snap = RouteSnapshot.build(
        [*two_servers(), row("n1", servant="", endpoint="", app="B", server="NoAdapter")]
    )
    assert sorted(snap.nodes_instances(["n1"])) == [
        ("A", "One", "n1"),
        ("A", "Two", "n1"),
        ("B", "NoAdapter", "n1"),
    ]


def test_caller_ip() -> None:
    assert caller_ip(("10.0.0.1", 5)) == "10.0.0.1"
    assert caller_ip(("::ffff:10.0.0.1", 5)) == "10.0.0.1"
    assert caller_ip(("fe80::1", 5)) == "fe80::1"
    assert caller_ip(None) == ""
