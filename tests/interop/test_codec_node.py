"""Wire compatibility of ``tarsus.codec`` with the Node Tars SDK (@tars/stream 2.0.3).

Every case runs both ways — Tarsus encodes and Node decodes, Node encodes and Tarsus decodes —
and, where both sides make the same encoding choices, also checks that the bytes are
identical. Where upstream SDKs legitimately differ, the test says so and checks what must
still hold:

- 0.0 as float/double: Node writes ZeroTag; C++/Go write a typed zero. Either is accepted by
  every reader (docs/codec.md), so Tarsus may pick either: both are checked.
- Map entry order: Node keeps map entries in a JS object, so integer-like keys ("0", "7",
  "42") come out first in ascending order, before the other keys in insertion order. Tarsus
  keeps dict order. Byte-exact cases therefore build their dicts in the order V8 iterates.
- Optional fields equal to their IDL default: Node writes every field; tars2cpp's
  check-default omits them. Only decoding is compared for those.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peer import NodeCodecPeer, NodePeerError, struct_schema

import tarsus.codec
import tarsus.idl
from tarsus.codec import types as T

HERE = Path(__file__).resolve().parent
M: Any = tarsus.idl.load(str(HERE / "Interop.tars")).Interop

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


# ---------------------------------------------------------------------------------------------
# helpers


def js_order(d: dict[Any, Any]) -> dict[Any, Any]:
    """``d`` re-ordered the way V8 iterates an object with these keys (see module docstring)."""

    def is_index(k: Any) -> bool:
        s = str(k)
        return s.isdigit() and str(int(s)) == s and int(s) <= 2**32 - 2

    index_keys = sorted((k for k in d if is_index(k)), key=lambda k: int(str(k)))
    return {k: d[k] for k in [*index_keys, *(k for k in d if not is_index(k))]}


def assert_same_bytes(ours: bytes, theirs: bytes) -> None:
    """Byte-exact comparison that reports where the first difference is (not 2 MB of hex)."""
    if ours == theirs:
        return
    n = next(
        (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
        min(len(ours), len(theirs)),
    )
    lo = max(0, n - 16)
    pytest.fail(
        f"Tarsus and Node bytes differ at offset {n} (lengths {len(ours)} vs {len(theirs)}):\n"
        f"  tarsus [{lo}:]: {ours[lo : n + 24].hex(' ')}\n"
        f"  node   [{lo}:]: {theirs[lo : n + 24].hex(' ')}"
    )


def field_diff(got: Any, want: Any) -> str:
    """The fields where two struct values differ (to keep failure messages readable)."""
    if type(got) is not type(want) or not hasattr(want, "_tars_fields_"):
        return f"{got!r:.300} != {want!r:.300}"
    return "; ".join(
        f"{f.name}: {getattr(got, f.name)!r:.200} != {getattr(want, f.name)!r:.200}"
        for f in want._tars_fields_
        if getattr(got, f.name) != getattr(want, f.name)
    )


def both_ways(peer: NodeCodecPeer, obj: Any, *, exact: bool = True) -> tuple[bytes, bytes]:
    """Tarsus→Node and Node→Tarsus must both give ``obj`` back; optionally bytes must match."""
    cls = type(obj)
    ours = tarsus.codec.encode(obj)
    from_ours = peer.decode(ours, cls)
    assert from_ours == obj, f"Node read Tarsus's bytes differently: {field_diff(from_ours, obj)}"
    theirs = peer.encode(obj)
    from_theirs = tarsus.codec.decode(theirs, cls)
    assert from_theirs == obj, f"Tarsus read Node's bytes wrongly: {field_diff(from_theirs, obj)}"
    if exact:
        assert_same_bytes(ours, theirs)
    return ours, theirs


def point(x: int, y: int, label: str = "") -> Any:
    return M.Point(x=x, y=y, label=label)


# ---------------------------------------------------------------------------------------------
# the peer itself


def test_peer_runs_the_pinned_sdk(node_peer: NodeCodecPeer) -> None:
    assert node_peer.versions["stream"] == "2.0.3"
    assert node_peer.versions["rpc"] == "2.0.15"


def test_peer_reports_errors_and_keeps_running(node_peer: NodeCodecPeer) -> None:
    with pytest.raises(NodePeerError, match="unknown op"):
        node_peer.request({"op": "no-such-op"})
    with pytest.raises(NodePeerError):
        node_peer.decode(b"\x05", M.Floats)  # truncated
    assert node_peer.request({"op": "ping"})["ok"] is True


# ---------------------------------------------------------------------------------------------
# scalars and integer widths

# fmt: off
INT_CASES: dict[str, list[int]] = {
    "by": [0, 1, -1, 127, -128],
    "sh": [0, 1, -1, 127, 128, -128, -129, 32767, -32768],
    "i": [0, 1, -1, 127, 128, -128, -129, 32767, 32768, -32768, -32769, 2**31 - 1, -(2**31)],
    "l": [
        0, 1, -1, 127, 128, -128, -129, 32767, 32768, -32768, -32769,
        2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
        2**32, 2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1,
        INT64_MAX - 1, INT64_MAX, INT64_MIN + 1, INT64_MIN,
    ],
    "ub": [0, 1, 127, 128, 255],
    "us": [0, 1, 127, 128, 255, 256, 32767, 32768, 65535],
    "ui": [0, 1, 127, 128, 32767, 32768, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1],
}
# fmt: on


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f, values in INT_CASES.items() for v in values],
    ids=[f"{f}={v}" for f, values in INT_CASES.items() for v in values],
)
def test_integer_boundaries(node_peer: NodeCodecPeer, field: str, value: int) -> None:
    both_ways(node_peer, M.Ints(**{field: value}))


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "0c"),
        (1, "0001"),
        (-128, "0080"),
        (128, "010080"),
        (-129, "01ff7f"),
        (32768, "0200008000"),
        (-32769, "02ffff7fff"),
        (2**31, "030000000080000000"),
        (-(2**31) - 1, "03ffffffff7fffffff"),
        (INT64_MAX, "037fffffffffffffff"),
        (INT64_MIN, "038000000000000000"),
    ],
)
def test_long_narrows_like_node(node_peer: NodeCodecPeer, value: int, wire: str) -> None:
    """The writer picks the smallest integer form (``TarsOutputStream::write``); tag 3 is ``l``."""
    obj = M.Ints(l=value)
    ours, _ = both_ways(node_peer, obj)
    head = int(wire[:2], 16)
    # Fields by..i are zero (ZeroTag, one byte each); l is tag 3.
    assert ours[3] == 0x30 | (head & 0x0F)
    assert ours[4 : 4 + (len(wire) - 2) // 2] == bytes.fromhex(wire[2:])


def test_scalars(node_peer: NodeCodecPeer) -> None:
    obj = M.Scalars(
        b=True, by=-7, sh=-300, i=70000, l=-(2**40), ub=200, us=40000, ui=3_000_000_000,
        f=1.5, d=-2.718281828459045, s="scalars", color=M.Color.GREEN,
    )  # fmt: skip
    both_ways(node_peer, obj)


def test_bool_false_and_enum_values(node_peer: NodeCodecPeer) -> None:
    for color in M.Color:
        obj = M.Scalars(b=False, f=0.5, d=0.5, color=color)
        both_ways(node_peer, obj)
    assert [int(c) for c in M.Color] == [0, 5, 6]


@pytest.mark.parametrize(
    ("f", "d"),
    [
        (1.5, 1.5),
        (-0.375, math.pi),
        (3.4028234663852886e38, 1.7976931348623157e308),  # largest finite
        (1.401298464324817e-45, 5e-324),  # smallest subnormal
        (1.1754943508222875e-38, 2.2250738585072014e-308),  # smallest normal
        (16777216.0, 2.0**53 + 2),
        (math.inf, -math.inf),
    ],
)
def test_float_and_double(node_peer: NodeCodecPeer, f: float, d: float) -> None:
    ours, _ = both_ways(node_peer, M.Floats(f=f, d=d))
    assert ours[0] == 0x04, "float must go on the wire as type 4"
    assert ours[5] == 0x15, "double must go on the wire as type 5 (Node rejects a float)"


def test_float_is_rounded_to_float32_on_both_sides(node_peer: NodeCodecPeer) -> None:
    obj = M.Floats(f=0.1, d=0.1)
    ours = tarsus.codec.encode(obj)
    assert_same_bytes(ours, node_peer.encode(obj))
    back = node_peer.decode(ours, M.Floats)
    assert back.d == 0.1
    assert back.f == tarsus.codec.decode(ours, M.Floats).f == 0.10000000149011612


def test_nan(node_peer: NodeCodecPeer) -> None:
    obj = M.Floats(f=math.nan, d=math.nan)
    ours = tarsus.codec.encode(obj)
    back = node_peer.decode(ours, M.Floats)
    assert math.isnan(back.f) and math.isnan(back.d)
    theirs = node_peer.encode(obj)
    back = tarsus.codec.decode(theirs, M.Floats)
    assert math.isnan(back.f) and math.isnan(back.d)


def test_zero_float_and_double(node_peer: NodeCodecPeer) -> None:
    """Node writes 0.0 as ZeroTag; C++ and Go write a typed zero. Tarsus may do either."""
    ours, theirs = both_ways(node_peer, M.Floats(f=0.0, d=0.0), exact=False)
    assert theirs == bytes.fromhex("0c1c")
    typed = bytes.fromhex("04 00000000 15 0000000000000000")
    assert ours in (theirs, typed), ours.hex(" ")
    # Whatever Tarsus writes, it must read both forms.
    for form in (theirs, typed):
        assert tarsus.codec.decode(form, M.Floats) == M.Floats(f=0.0, d=0.0)


# ---------------------------------------------------------------------------------------------
# strings and bytes

STRINGS = {
    "empty": "",
    "ascii": "hello",
    "latin": "héllo wörld",
    "cjk": "中文字符测试",
    "emoji": "emoji 🎉🚀 and \u0000 nul",
    "255-bytes": "a" * 255,
    "256-bytes": "a" * 256,
    "255-bytes-multibyte": "€" * 85,
    "258-bytes-multibyte": "€" * 86,
    "254+1-bytes": "é" * 127 + "a",
    "100KB": "x" * 100_000,
    "100KB-unicode": "ünï© 🎉 " * 7000,
}


@pytest.mark.parametrize("name", list(STRINGS))
def test_strings(node_peer: NodeCodecPeer, name: str) -> None:
    s = STRINGS[name]
    ours, _ = both_ways(node_peer, M.Text(s=s))
    n = len(s.encode("utf-8"))
    if n <= 255:
        assert ours[:2] == bytes([0x06, n]), "String1 up to 255 bytes"
    else:
        assert ours[:5] == bytes([0x07]) + n.to_bytes(4, "big"), "String4 above 255 bytes"


BLOBS = {
    "empty": b"",
    "one-zero": b"\x00",
    "all-bytes": bytes(range(256)),
    "1MB": random.Random(20240601).randbytes(1 << 20),
}


@pytest.mark.parametrize("name", list(BLOBS))
def test_vector_byte(node_peer: NodeCodecPeer, name: str) -> None:
    data = BLOBS[name]
    ours, _ = both_ways(node_peer, M.Blob(data=data))
    assert ours[:2] == b"\x0d\x00", "vector<byte> is a SimpleList"


# ---------------------------------------------------------------------------------------------
# containers and structs


def full_containers() -> Any:
    return M.Containers(
        bytes=b"\x01\x02\xff",
        ints=[0, 1, -1, 300, -70000, 2**31 - 1],
        strs=["", "a", "中", "x" * 300],
        points=[point(1, 2, "a"), point(-1, -2), point(2**31 - 1, -(2**31), "z" * 256)],
        ss={"k": "v", "empty": "", "ключ": "значение"},
        ip=js_order({0: point(0, 0), 7: point(7, 7, "seven"), 70000: point(1, 1), -5: point(5, 5)}),
        svp={"none": [], "two": [point(1, 1), point(2, 2)]},
        longs=[INT64_MIN, -1, 0, 2**53 + 1, INT64_MAX],
        doubles=[1.5, -1e300, math.pi],
        floats=[0.5, -2.0, 2.0**-140],  # float32-exact (a subnormal)
        blobs=[b"", b"\x00", bytes(range(10))],
        ls=js_order({INT64_MAX: "max", 1: "one", -1: "minus one", 2**40: "big"}),
        bools=[True, False, True],
        colors=[M.Color.RED, M.Color.BLUE, M.Color.GREEN],
        nested={"outer": {"a": 1, "b": -2}, "empty": {}},
        byPoint={point(1, 2): "p12", point(3, 4, "l"): "p34"},
        matrix=[[], [1], [1, 2, 3]],
    )


def test_containers(node_peer: NodeCodecPeer) -> None:
    both_ways(node_peer, full_containers())


def test_empty_containers(node_peer: NodeCodecPeer) -> None:
    ours, _ = both_ways(node_peer, M.Containers())
    assert ours.startswith(bytes.fromhex("0d000c 190c 290c 390c 480c 580c 680c"))


def test_map_order_is_the_only_difference(node_peer: NodeCodecPeer) -> None:
    """Node writes integer-like keys first (JS object order); the maps still decode equal."""
    ss = {"b": "1", "a": "2", "10": "x", "2": "y"}
    obj = M.Containers(ss=ss, ip={9: point(9, 9), 3: point(3, 3)})
    _, theirs = both_ways(node_peer, obj, exact=False)
    assert list(tarsus.codec.decode(theirs, M.Containers).ss) == ["2", "10", "b", "a"]
    reordered = M.Containers(ss=js_order(ss), ip=js_order(obj.ip))
    assert_same_bytes(tarsus.codec.encode(reordered), theirs)


def test_nested_structs_and_high_tags(node_peer: NodeCodecPeer) -> None:
    high = M.HighTags(
        t0=1, t14=2, t15="a", t16=point(3, 4, "p"), t200=INT64_MIN, t254=[1, 2], t255=b"\xff"
    )
    ours, _ = both_ways(node_peer, high)
    # tag 14 still fits the one-byte head; 15 and up take 0xF? plus a tag byte.
    assert ours.startswith(bytes.fromhex("0001 e002 f60f0161 fa10"))
    assert bytes.fromhex("f3c8") in ours and bytes.fromhex("fdff00") in ours

    everything = M.Everything(
        scalars=M.Scalars(
            b=True, by=1, sh=2, i=3, l=4, ub=5, us=6, ui=7, f=8.5, d=9.25, s="ten",
            color=M.Color.BLUE,
        ),
        containers=full_containers(),
        defaults=M.Defaults(
            i=1, s="s", d=2.5, flag=False, color=M.Color.RED, big=-1, f=-0.5, v=[1],
            m={"a": "b"}, p=point(1, 1), sh=1, ui=1, by=1, empty="x",
        ),
        point=point(-1, 1, "pt"),
        highs=[high, M.HighTags(t15="", t255=b"")],
        high=high,
        last="the end",
    )  # fmt: skip
    both_ways(node_peer, everything)


def test_defaults_from_the_idl() -> None:
    assert M.Defaults() == M.Defaults(
        i=23, s="hi", d=1.5, flag=True, color=M.Color.BLUE, big=9007199254740993, f=0.25,
        v=[], m={}, p=M.Point(x=0, y=0, label=""), sh=-7, ui=4294967295, by=-128, empty="",
    )  # fmt: skip
    assert tarsus.codec.decode(b"", M.Defaults) == M.Defaults()


def test_optional_fields_at_their_defaults(node_peer: NodeCodecPeer) -> None:
    """Node writes every field; Tarsus may omit optional defaults. Both must read the other."""
    ours, theirs = both_ways(node_peer, M.Defaults(), exact=False)
    assert tarsus.codec.decode(theirs, M.Defaults) == M.Defaults()
    if ours != theirs:  # Tarsus omitted fields: Node must still see the IDL defaults
        assert node_peer.decode(ours, M.Defaults) == M.Defaults()


def test_optional_fields_away_from_defaults(node_peer: NodeCodecPeer) -> None:
    obj = M.Defaults(
        i=0, s="", d=0.5, flag=False, color=M.Color.RED, big=2**62, f=1.0, v=[0], m={"": ""},
        p=point(0, 1), sh=0, ui=0, by=0, empty="not empty",
    )  # fmt: skip
    both_ways(node_peer, obj)


def test_unknown_fields_are_skipped(node_peer: NodeCodecPeer) -> None:
    """An old reader (Point) skips tags it does not know, in both directions."""
    v2 = M.PointV2(
        x=1, y=-2, label="v2", extra=[point(5, 6, "x")], more={"k": "v"}, z=2.5,
    )  # fmt: skip
    old = point(1, -2, "v2")
    assert tarsus.codec.decode(node_peer.encode(v2), M.Point) == old
    assert node_peer.decode(tarsus.codec.encode(v2), M.Point) == old

    poly2 = M.PolygonV2(pts=[v2, M.PointV2(x=3, y=4, z=1.0)], n=2)
    poly = M.Polygon(pts=[old, point(3, 4)], n=2)
    assert tarsus.codec.decode(node_peer.encode(poly2), M.Polygon) == poly
    assert node_peer.decode(tarsus.codec.encode(poly2), M.Polygon) == poly


def test_missing_require_field_fails_on_both_sides(node_peer: NodeCodecPeer) -> None:
    data = tarsus.codec.encode(M.OnlyX(x=5))
    assert data == node_peer.encode(M.OnlyX(x=5))
    with pytest.raises(tarsus.codec.DecodeError):
        tarsus.codec.decode(data, M.Point)
    with pytest.raises(NodePeerError, match="require field not exist"):
        node_peer.decode(data, M.Point)


def test_truncated_node_bytes_raise_decode_error(node_peer: NodeCodecPeer) -> None:
    """(Node itself does not notice a truncated string: Buffer.copy stops short silently.)"""
    data = node_peer.encode(M.Text(s="hello"))
    for cut in range(1, len(data)):
        with pytest.raises(tarsus.codec.DecodeError):
            tarsus.codec.decode(data[:cut], M.Text)


# ---------------------------------------------------------------------------------------------
# other wire forms of the same value (Node written with a different declared type)


def node_encode_as(peer: NodeCodecPeer, cls: type, types: dict[str, Any], value: Any) -> bytes:
    """Node's bytes for ``value`` (JSON form) when ``cls``'s fields ``types`` are re-declared."""
    schema = struct_schema(cls)
    for f in schema["fields"]:
        if f["name"] in types:
            f["type"] = types[f["name"]]
    return bytes.fromhex(peer.request({"op": "encode", "schema": schema, "value": value})["hex"])


def test_vector_byte_read_from_a_list_of_char(node_peer: NodeCodecPeer) -> None:
    """C++ and Go accept vector<byte> as a List of Char too; Node's readBytes does not."""
    as_list = {"kind": "vector", "elem": {"kind": "byte"}}
    data = node_encode_as(node_peer, M.Blob, {"data": as_list}, {"data": [1, -1, 0, 127]})
    assert data[0] == 0x09  # a List, not a SimpleList
    assert tarsus.codec.decode(data, M.Blob) == M.Blob(data=b"\x01\xff\x00\x7f")
    with pytest.raises(NodePeerError, match="type mismatch"):
        node_peer.decode(data, M.Blob)


def test_double_read_from_a_float(node_peer: NodeCodecPeer) -> None:
    """C++ and Go read a Float-typed value into a double; Node's readDouble refuses it."""
    data = node_encode_as(node_peer, M.Floats, {"d": {"kind": "float"}}, {"f": 1.5, "d": 0.5})
    assert data == bytes.fromhex("04 3fc00000 14 3f000000")
    assert tarsus.codec.decode(data, M.Floats) == M.Floats(f=1.5, d=0.5)
    with pytest.raises(NodePeerError, match="type mismatch"):
        node_peer.decode(data, M.Floats)


@pytest.mark.parametrize(
    ("field", "wider", "value"),
    [
        ("by", "short", 200),
        ("sh", "int", 70000),
        ("i", "long", str(2**40)),
        ("ub", "int", 70000),
        ("us", "long", str(2**33)),
    ],
)
def test_wider_wire_type_than_declared_is_refused(
    node_peer: NodeCodecPeer, field: str, wider: str, value: Any
) -> None:
    """A value on the wire wider than the declared type is a type mismatch on both sides."""
    data = node_encode_as(node_peer, M.Ints, {field: {"kind": wider}}, {field: value})
    with pytest.raises(tarsus.codec.DecodeError):
        tarsus.codec.decode(data, M.Ints)
    with pytest.raises(NodePeerError, match="mismatch"):
        node_peer.decode(data, M.Ints)


def test_narrower_wire_type_is_widened(node_peer: NodeCodecPeer) -> None:
    """Declared long, written by Node as an int field: read back sign-extended."""
    data = node_encode_as(node_peer, M.Ints, {"l": {"kind": "byte"}}, {"l": -5})
    assert tarsus.codec.decode(data, M.Ints) == M.Ints(l=-5)


# ---------------------------------------------------------------------------------------------
# packets (@tars/rpc's own RequestF.js classes)

# Captured on loopback: Node client request for echo("hello") with context {k: v}, without the
# 4-byte length prefix.
NODE_REQUEST = bytes.fromhex(
    "1001 2c 3c 4002 5617" + b"Test.NodeServer.EchoObj".hex() + "6604" + b"echo".hex()
    + "7d000007 1605" + b"hello".hex() + "810bb8 98000106016b160176 a80c"
)  # fmt: skip
# Captured on loopback: Node server response to a request with iRequestId 42.
NODE_RESPONSE = bytes.fromhex(
    "1001 2c 302a 4c 5c 6d000015 0007 2611" + b"echo:py|ctx=pyctx".hex() + "780c 8600 980c"
)


def test_decode_captured_node_request() -> None:
    pkt = tarsus.codec.decode(NODE_REQUEST, tarsus.codec.RequestPacket)
    assert pkt == tarsus.codec.RequestPacket(
        iVersion=1, cPacketType=0, iMessageType=0, iRequestId=2,
        sServantName="Test.NodeServer.EchoObj", sFuncName="echo",
        sBuffer=bytes.fromhex("1605") + b"hello", iTimeout=3000, context={"k": "v"}, status={},
    )  # fmt: skip
    assert tarsus.codec.encode(pkt) == NODE_REQUEST


def test_decode_captured_node_response() -> None:
    pkt = tarsus.codec.decode(NODE_RESPONSE, tarsus.codec.ResponsePacket)
    assert pkt == tarsus.codec.ResponsePacket(
        iVersion=1, cPacketType=0, iRequestId=42, iMessageType=0, iRet=0,
        sBuffer=bytes.fromhex("0007 2611") + b"echo:py|ctx=pyctx",
        status={}, sResultDesc="", context={},
    )  # fmt: skip
    assert tarsus.codec.encode(pkt) == NODE_RESPONSE


REQUESTS = {
    "echo": dict(
        iVersion=1, iRequestId=2, sServantName="Test.NodeServer.EchoObj", sFuncName="echo",
        sBuffer=bytes.fromhex("1605") + b"hello", iTimeout=3000, context={"k": "v"},
    ),
    "tup-dyed-oneway": dict(
        iVersion=3, cPacketType=1, iMessageType=0x04 | 0x80, iRequestId=2**31 - 1,
        sServantName="App.Server.Obj", sFuncName="f", sBuffer=bytes(300), iTimeout=60000,
        context={"a": "1", "b": "2"},
        status={"STATUS_DYED_KEY": "user42", "STATUS_SETNAME_VALUE": "app.sz.1"},
    ),
    "empty": dict(),
}  # fmt: skip


@pytest.mark.parametrize("name", list(REQUESTS))
def test_request_packet(node_peer: NodeCodecPeer, name: str) -> None:
    pkt = tarsus.codec.RequestPacket(**REQUESTS[name])
    theirs = node_peer.rpc_encode("RequestPacket", pkt)
    assert tarsus.codec.decode(theirs, tarsus.codec.RequestPacket) == pkt
    ours = tarsus.codec.encode(pkt)
    assert node_peer.rpc_decode("RequestPacket", ours, tarsus.codec.RequestPacket) == pkt
    assert_same_bytes(ours, theirs)


@pytest.mark.parametrize("iret", [0, -1, -3, -99, 1])
def test_response_packet(node_peer: NodeCodecPeer, iret: int) -> None:
    pkt = tarsus.codec.ResponsePacket(
        iVersion=1,
        iRequestId=12345,
        iRet=iret,
        sBuffer=b"" if iret else b"\x00\x07",
        status={"STATUS_RESULT_CODE": str(iret)} if iret else {},
        sResultDesc="failed" if iret else "",
        context={"trace": "t1"},
    )
    theirs = node_peer.rpc_encode("ResponsePacket", pkt)
    assert tarsus.codec.decode(theirs, tarsus.codec.ResponsePacket) == pkt
    ours = tarsus.codec.encode(pkt)
    assert node_peer.rpc_decode("ResponsePacket", ours, tarsus.codec.ResponsePacket) == pkt
    assert_same_bytes(ours, theirs)


# ---------------------------------------------------------------------------------------------
# TUP (UniAttribute v3)


def tup_items() -> list[tuple[str, Any, Any]]:
    return [
        ("", 0, T.INT),  # the return value's key
        ("s", "hello", T.STRING),
        ("b", True, T.BOOL),
        ("by", -5, T.BYTE),
        ("sh", 1000, T.SHORT),
        ("l", INT64_MIN, T.LONG),
        ("big", 2**53 + 1, T.LONG),
        ("ub", 200, T.UNSIGNED_BYTE),
        ("us", 60000, T.UNSIGNED_SHORT),
        ("ui", 2**32 - 1, T.UNSIGNED_INT),
        ("f", 1.5, T.FLOAT),
        ("d", -2.25, T.DOUBLE),
        ("raw", b"\x00\x01\xff", T.BYTES),
        ("empty_raw", b"", T.BYTES),
        ("p", point(1, 2, "p"), M.Point),
        ("v", [1, 2, 3], T.vector(T.INT)),
        ("vs", ["x", "中"], T.vector(T.STRING)),
        ("vp", [point(1, 1), point(2, 2)], T.vector(M.Point)),
        ("m", {"a": point(3, 3)}, T.map(T.STRING, M.Point)),
        ("mi", js_order({5: "five", 1: "one"}), T.map(T.INT, T.STRING)),
        ("c", M.Color.GREEN, M.Color),
        ("all", full_containers(), M.Containers),
    ]


def test_tup_tarsus_to_node(node_peer: NodeCodecPeer) -> None:
    ua = tarsus.codec.UniAttribute()
    for name, value, t in tup_items():
        ua.put(name, value, t)
    data = ua.encode()
    values, names = node_peer.tup_decode(data, [(n, t) for n, _, t in tup_items()])
    assert names == [n for n, _, _ in tup_items()]
    assert values == {n: v for n, v, _ in tup_items()}


def test_tup_node_to_tarsus(node_peer: NodeCodecPeer) -> None:
    data = node_peer.tup_encode(tup_items())
    ua = tarsus.codec.UniAttribute.decode(data, version=3)
    for name, value, t in tup_items():
        assert ua.get(name, t) == value, name


def test_tup_bytes_match_node(node_peer: NodeCodecPeer) -> None:
    ua = tarsus.codec.UniAttribute()
    for name, value, t in tup_items():
        ua.put(name, value, t)
    assert_same_bytes(ua.encode(), node_peer.tup_encode(tup_items()))


def test_tup_captured_node_request() -> None:
    """Captured on loopback: the sBuffer of Node's TUP echo("hello")."""
    captured = bytes.fromhex("080001 060173 1d000007 0605") + b"hello"
    assert tarsus.codec.UniAttribute.decode(captured, version=3).get("s", T.STRING) == "hello"
    ua = tarsus.codec.UniAttribute()
    ua.put("s", "hello", T.STRING)
    assert ua.encode() == captured


def test_tup_empty(node_peer: NodeCodecPeer) -> None:
    assert tarsus.codec.UniAttribute().encode() == node_peer.tup_encode([]) == b"\x08\x0c"
    _, names = node_peer.tup_decode(tarsus.codec.UniAttribute().encode(), [])
    assert names == []


def test_tup_v2_node_to_tarsus(node_peer: NodeCodecPeer) -> None:
    """TUP v2 ("complex", Node and old Java): Tarsus reads it (and writes only v3)."""
    data = node_peer.tup_encode(tup_items(), version=2)
    ua = tarsus.codec.UniAttribute.decode(data, version=2)
    for name, value, t in tup_items():
        assert ua.get(name, t) == value, name


# ---------------------------------------------------------------------------------------------
# random values of every struct: both sides must read each other's bytes back to the value


def strategy(t: Any) -> st.SearchStrategy[Any]:
    """Values of Tars type ``t`` (floats are float32-exact for ``float``; no NaN)."""
    if t == T.BYTES:
        return st.binary(max_size=40)
    if isinstance(t, T.Scalar):
        if t == T.BOOL:
            return st.booleans()
        if t == T.FLOAT:
            return st.floats(width=32, allow_nan=False)
        if t == T.DOUBLE:
            return st.floats(allow_nan=False)
        if t == T.STRING:
            return st.text(max_size=20) | st.text(min_size=250, max_size=300)
        return st.integers(t.lo, t.hi)
    if isinstance(t, T.Vector):
        return st.lists(strategy(t.elem), max_size=4)
    if isinstance(t, T.Map):
        # @tars/stream keeps maps in plain JS objects, where "__proto__" is not a key (a Node
        # quirk, not ours): leave it out of generated keys.
        keys = strategy(t.key).filter(lambda k: k != "__proto__")
        return st.dictionaries(keys, strategy(t.value), max_size=4)
    if isinstance(t, type) and hasattr(t, "_tars_fields_"):
        return st.builds(t, **{f.name: strategy(f.type) for f in t._tars_fields_})
    return st.sampled_from(list(t))  # an enum


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["Scalars", "Ints", "Floats", "Containers", "Defaults", "HighTags", "Everything"]
)
def test_random_values(node_peer: NodeCodecPeer, name: str) -> None:
    cls = getattr(M, name)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy(cls))
    def check(obj: Any) -> None:
        both_ways(node_peer, obj, exact=False)

    check()
