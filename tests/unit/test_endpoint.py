"""Endpoint and proxy strings, checked against what upstream C++ does with the same text.

The expected values in ``CXX_PARSED`` and ``CXX_REJECTED`` were produced by compiling
``TC_Endpoint::parse`` from TarsCpp 622165c (v3.0.22-33) and running it on each string.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarsus.rpc.endpoint import Endpoint, EndpointError, ProxyTarget, parse_proxy, split_endpoints

# text -> (protocol, host, port, timeout, grid, qos, weight, weight_type, auth_type)
CXX_PARSED: dict[str, tuple[str, str, int, int, int, int, int, int, int]] = {
    "tcp -h 1.2.3.4 -p 10000 -t 60000": ("tcp", "1.2.3.4", 10000, 60000, 0, 0, -1, 0, 0),
    "udp -h 10.0.0.1 -p 5": ("udp", "10.0.0.1", 5, 3000, 0, 0, -1, 0, 0),
    "ssl -h example.com -p 443 -t 0": ("ssl", "example.com", 443, 0, 0, 0, -1, 0, 0),
    "tcp -h * -p 80": ("tcp", "0.0.0.0", 80, 3000, 0, 0, -1, 0, 0),
    "tcp -h ::1 -p 9": ("tcp", "::1", 9, 3000, 0, 0, -1, 0, 0),
    "tcp -h a -p 010": ("tcp", "a", 10, 3000, 0, 0, -1, 0, 0),
    "tcp -h a -p +80": ("tcp", "a", 80, 3000, 0, 0, -1, 0, 0),
    "tcp -h a -w 50": ("tcp", "a", 0, 3000, 0, 0, 50, 0, 0),
    "tcp -h a -w 50 -v 1": ("tcp", "a", 0, 3000, 0, 0, 50, 1, 0),
    "tcp -h a -v 1": ("tcp", "a", 0, 3000, 0, 0, 100, 1, 0),
    "tcp -h a -w 500 -v 1": ("tcp", "a", 0, 3000, 0, 0, 100, 1, 0),
    "tcp -h a -w 0 -v 1": ("tcp", "a", 0, 3000, 0, 0, 0, 1, 0),
    "tcp -h a -e 1": ("tcp", "a", 0, 3000, 0, 0, -1, 0, 1),
    "tcp -h a -g 3 -q 46": ("tcp", "a", 0, 3000, 3, 46, -1, 0, 0),
    "tcp -h a -x foo -p 7": ("tcp", "a", 7, 3000, 0, 0, -1, 0, 0),
    "tcp -h a -- -p 7": ("tcp", "a", 7, 3000, 0, 0, -1, 0, 0),
    "tcp\t-h\ta\r\n-p\t7": ("tcp", "a", 7, 3000, 0, 0, -1, 0, 0),
    "tcp -h a -h b": ("tcp", "b", 0, 3000, 0, 0, -1, 0, 0),
}

CXX_REJECTED = [
    "tcp -p 10000",  # no host
    "tcp -h -p 10000",  # -h without argument
    "tcp -h a -p 65536",
    "tcp -h a -p -1",
    "tcp -h a -p 0x10",
    "tcp -h a -p",
    "tcp -h a -t 2147483648",
    "tcp -h a -w -1 -v 1",  # an argument never starts with '-': -w has none
    "tcp -h a -e 2",
    "tcp -h a -port 7",  # options are exactly two characters
    "tcp -h a 7",
    "TCP -h a",
    "tcpx -h a",
    "   ",
    "",
    "tcp -h a -p 1 tcp -h b -p 2",
]


def fields(ep: Endpoint) -> tuple[str, str, int, int, int, int, int, int, int]:
    return (
        ep.protocol,
        ep.host,
        ep.port,
        ep.timeout,
        ep.grid,
        ep.qos,
        ep.weight,
        ep.weight_type,
        ep.auth_type,
    )


@pytest.mark.parametrize(("text", "expected"), CXX_PARSED.items())
def test_parse_matches_cxx(text: str, expected: tuple[Any, ...]) -> None:
    assert fields(Endpoint.parse(text)) == expected


@pytest.mark.parametrize("text", CXX_REJECTED)
def test_parse_rejects_what_cxx_rejects(text: str) -> None:
    with pytest.raises(EndpointError) as info:
        Endpoint.parse(text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_messages_say_what_is_wrong() -> None:
    with pytest.raises(EndpointError, match=r"-p '70000' is out of range 0\.\.65535"):
        Endpoint.parse("tcp -h a -p 70000")
    with pytest.raises(EndpointError, match=r"no host \(-h\)"):
        Endpoint.parse("tcp -p 1")
    with pytest.raises(EndpointError, match="separate endpoints with ':'"):
        Endpoint.parse("tcp -h a -p 1 tcp -h b -p 2")
    with pytest.raises(EndpointError, match="must start with tcp, udp or ssl, not 'http'"):
        Endpoint.parse("http -h a -p 1")


def test_set_id_from_registry_form() -> None:
    ep = Endpoint.parse("tcp -h 10.0.0.1 -p 10000 -t 60000 -s app.sz.1")
    assert ep.set_id == "app.sz.1"
    assert str(ep) == "tcp -h 10.0.0.1 -p 10000 -t 60000 -s app.sz.1"


def test_canonical_string() -> None:
    assert str(Endpoint.parse("tcp -p 10000 -h 1.2.3.4")) == "tcp -h 1.2.3.4 -p 10000 -t 3000"
    ep = Endpoint("ssl", "h", 1, timeout=5, grid=2, qos=3, weight=40, weight_type=1, auth_type=1)
    assert str(ep) == "ssl -h h -p 1 -t 5 -g 2 -q 3 -w 40 -v 1 -e 1"
    # C++ toString drops "-w 0", which reads back as 100; ours keeps it.
    zero = Endpoint.parse("tcp -h a -p 1 -w 0 -v 1")
    assert Endpoint.parse(str(zero)) == zero


def test_construction_applies_cxx_weight_rules() -> None:
    assert Endpoint("tcp", "a", 1, weight_type=1).weight == 100
    assert Endpoint("tcp", "a", 1, weight=300, weight_type=1).weight == 100
    assert Endpoint("tcp", "a", 1, weight=300).weight == 300  # round-robin: kept as given
    assert Endpoint("tcp", "*", 1).host == "0.0.0.0"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocol": "http"},
        {"host": ""},
        {"host": "a b"},
        {"host": "-a"},
        {"port": 65536},
        {"port": -1},
        {"timeout": -5},
        {"weight": -2},
        {"auth_type": 2},
        {"set_id": "a b"},
        {"port": True},
    ],
)
def test_construction_rejects_unwritable_values(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"protocol": "tcp", "host": "a", "port": 1}
    with pytest.raises(EndpointError):
        Endpoint(**{**base, **kwargs})


def test_derived_properties() -> None:
    ep = Endpoint.parse("ssl -h 10.0.0.1 -p 9000")
    assert (ep.istcp, ep.is_tcp, ep.address) == (2, True, ("10.0.0.1", 9000))
    assert ep.cmp_desc == "2:10.0.0.1:9000"
    assert not Endpoint.parse("udp -h a -p 1").is_tcp
    assert dataclasses.replace(ep, port=1).port == 1
    assert len({ep, Endpoint.parse("ssl -h 10.0.0.1 -p 9000 -t 3000")}) == 1


hosts = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,20}", fullmatch=True),
    st.ip_addresses().map(str),
)
endpoints = st.builds(
    Endpoint,
    protocol=st.sampled_from(["tcp", "udp", "ssl"]),
    host=hosts,
    port=st.integers(0, 65535),
    timeout=st.integers(0, 2**31 - 1),
    weight=st.integers(-1, 2**31 - 1),
    weight_type=st.integers(0, 2**32 - 1),
    grid=st.integers(0, 2**31 - 1),
    qos=st.integers(0, 2**31 - 1),
    auth_type=st.integers(0, 1),
    set_id=st.one_of(st.just(""), st.from_regex(r"[a-z]+\.[a-z]+\.[0-9*]", fullmatch=True)),
)


@given(endpoints)
def test_str_parses_back_equal(ep: Endpoint) -> None:
    assert Endpoint.parse(str(ep)) == ep


@given(endpoints)
def test_endpointf_round_trip(ep: Endpoint) -> None:
    ef = ep.to_endpointf()
    assert ef.nodeName == ep.host
    assert Endpoint.from_endpointf(ef) == ep


def test_endpointf_fields() -> None:
    ep = Endpoint.parse("udp -h 10.0.0.7 -p 8 -t 9 -g 1 -q 2 -w 30 -v 1 -e 1 -s a.b.c")
    ef = ep.to_endpointf(node_name="node-7")
    assert (ef.host, ef.port, ef.timeout, ef.istcp, ef.grid, ef.qos) == ("10.0.0.7", 8, 9, 0, 1, 2)
    assert (ef.weight, ef.weightType, ef.authType, ef.setId, ef.nodeName) == (
        30,
        1,
        1,
        "a.b.c",
        "node-7",
    )


def test_from_endpointf_checks_values() -> None:
    ef = Endpoint.parse("tcp -h a -p 1").to_endpointf()
    endpointf = type(ef)

    def changed(**changes: Any) -> Any:
        return endpointf(**{**{name: getattr(ef, name) for name in FIELDS}, **changes})

    with pytest.raises(EndpointError, match="istcp must be 0"):
        Endpoint.from_endpointf(changed(istcp=7))
    with pytest.raises(EndpointError, match="'a':70000"):
        Endpoint.from_endpointf(changed(port=70000))
    # A weight below -1 means "no weight": unset under round-robin, no traffic under static.
    assert Endpoint.from_endpointf(changed(weight=-5)).weight == -1
    assert Endpoint.from_endpointf(changed(weight=-5, weightType=1)).weight == 0
    # Absent optional fields decode as 0: weight 0 under round-robin is kept as given.
    bare = endpointf(host="b", port=2, timeout=3, istcp=1, grid=0)
    assert Endpoint.from_endpointf(bare) == Endpoint("tcp", "b", 2, timeout=3, weight=0)


FIELDS: tuple[str, ...] = ("host", "port", "timeout", "istcp", "grid", "setId", "qos", "weight")
FIELDS += ("weightType", "authType", "nodeName", "groupworkid", "grouprealid", "bakFlag")


def test_endpoints_parse_no_idl() -> None:
    # The framework's types are generated modules (tarsus/protocol/gen): no IDL compiler runs.
    code = (
        "import sys, tarsus.rpc.endpoint as m\n"
        "m.Endpoint.parse('tcp -h a -p 1')\n"
        "m.Endpoint('tcp', 'a', 1).to_endpointf()\n"
        "assert 'tarsus.idl.parser' not in sys.modules, 'IDL parsed'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- proxy strings -----------------------------------------------------------------------------


def test_direct_form() -> None:
    target = parse_proxy("App.Server.Obj@tcp -h 1.2.3.4 -p 10000 -t 60000:tcp -h 1.2.3.5 -p 10000")
    assert target.obj_name == "App.Server.Obj"
    assert target.direct
    assert [str(ep) for ep in target.endpoints] == [
        "tcp -h 1.2.3.4 -p 10000 -t 60000",
        "tcp -h 1.2.3.5 -p 10000 -t 3000",
    ]
    assert target.hash_suffix == ""


def test_registry_form() -> None:
    target = parse_proxy("  App.Server.Obj ")
    assert target == ProxyTarget("App.Server.Obj")
    assert not target.direct
    assert str(target) == "App.Server.Obj"


def test_hash_suffix_is_split_off() -> None:
    assert parse_proxy("App.Server.Obj#3") == ProxyTarget("App.Server.Obj", (), "3")
    target = parse_proxy("App.Server.Obj#2@udp -h a -p 1")
    assert (target.obj_name, target.hash_suffix) == ("App.Server.Obj", "2")
    assert str(target) == "App.Server.Obj#2@udp -h a -p 1 -t 3000"
    assert parse_proxy(str(target)) == target


def test_separators_and_ipv6() -> None:
    target = parse_proxy("A.B.C@ tcp -h ::1 -p 1 : ssl -h fe80::2 -p 2 :: udp -h c -p 3 :")
    assert [ep.address for ep in target.endpoints] == [("::1", 1), ("fe80::2", 2), ("c", 3)]
    assert [ep.protocol for ep in target.endpoints] == ["tcp", "ssl", "udp"]


def test_host_containing_a_keyword() -> None:
    # C++ sepEndpoint would cut inside "udp-gw"; only a keyword after ':' starts an endpoint.
    target = parse_proxy("A.B.C@tcp -h udp-gw.example -p 1:tcp -h tcp -p 2")
    assert [ep.host for ep in target.endpoints] == ["udp-gw.example", "tcp"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp -h 1 -p 2:tcp -h 3 -p 4", ["tcp -h 1 -p 2", "tcp -h 3 -p 4"]),
        (":tcp -h a -p 1::udp -h b -p 2:", ["tcp -h a -p 1", "udp -h b -p 2"]),
        ("  ssl -h a -p 1 : tcp -h b -p 2  ", ["ssl -h a -p 1", "tcp -h b -p 2"]),
        ("", []),
        (" : ", []),
    ],
)
def test_split_endpoints_like_cxx(text: str, expected: list[str]) -> None:
    assert split_endpoints(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no object name"),
        ("@tcp -h a -p 1", "no object name"),
        ("#3@tcp -h a -p 1", "no object name"),
        ("App.Server.Obj@", "no endpoints after '@'"),
        ("App.Server.Obj@ : ", "no endpoints after '@'"),
        ("App Server.Obj@tcp -h a -p 1", "contains blanks"),
        ("App.Server.Obj@tcp -h a -p x", "-p 'x' is not a number"),
        ("App.Server.Obj@junk tcp -h a -p 1", "not 'junk'"),
        ("App.Server.Obj@tcp -h a -p 1 tcp -h b -p 2", "separate endpoints with ':'"),
    ],
)
def test_bad_proxy_strings(text: str, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        parse_proxy(text)
