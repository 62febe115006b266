"""The C codec (``tarsus.codec._speedups``) against the pure-Python reference codec.

Most tests are differential: hypothesis builds struct classes and values (or garbage bytes),
both codecs run on them, and the outcomes must be identical: the same bytes, equal values of
the same types, or the same error (type, reason, field, tag and offset for decoding; type and
field for encoding, whose messages are worded differently).
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import math
import os
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarsus.codec import api, compiler, plan
from tarsus.codec import types as T
from tarsus.codec.errors import DecodeError, EncodeError
from tarsus.codec.packet import RequestPacket, ResponsePacket
from tarsus.codec.struct import Struct
from tarsus.codec.types import Field, TarsType

pytestmark = pytest.mark.skipif(not plan.AVAILABLE, reason="the C codec is not built")

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------- the two paths


def c_encode(obj: Any) -> bytes:
    return plan.struct_codec(type(obj)).encode(obj)  # type: ignore[no-any-return]


def c_decode(data: bytes, cls: type) -> Any:
    return plan.struct_codec(cls).decode(data)


def c_encode_value(value: Any, t: TarsType) -> bytes:
    return plan.value_codec(t).encode(value)  # type: ignore[no-any-return]


def c_decode_value(data: bytes, t: TarsType) -> Any:
    return plan.value_codec(t).decode(data)


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """What a call did, comparable across the two codecs."""
    try:
        return ("ok", fn(*args))
    except DecodeError as e:
        return ("DecodeError", e.reason, e.field, e.tag, e.offset)
    except EncodeError as e:
        return ("EncodeError", e.field)
    except Exception as e:  # anything else must at least be the same kind of failure
        return ("raised", type(e).__name__)


def same(a: Any, b: Any) -> bool:
    """Deep equality that also compares types (True vs 1, member vs int) and float bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, Struct):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in a._tars_fields_)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(k1, k2) and same(v1, v2)
            for (k1, v1), (k2, v2) in zip(a.items(), b.items(), strict=True)
        )
    return bool(a == b)


def assert_same_outcome(c: tuple[Any, ...], py: tuple[Any, ...]) -> None:
    if c[0] == "ok" and py[0] == "ok":
        assert same(c[1], py[1]), f"C decoded {c[1]!r}, Python {py[1]!r}"
    else:
        assert c == py


# --------------------------------------------------------------------------------- schemas


class Color(enum.IntEnum):
    RED = 0
    GREEN = 1
    BLUE = 7


class Sparse(enum.IntEnum):
    """No zero member, negative and wide values: defaults and unknown values get exercised."""

    LOW = -(2**31)
    MID = 300
    HIGH = 2**31 - 1


SCALARS: list[TarsType] = [
    T.BOOL,
    T.BYTE,
    T.SHORT,
    T.INT,
    T.LONG,
    T.UNSIGNED_BYTE,
    T.UNSIGNED_SHORT,
    T.UNSIGNED_INT,
    T.FLOAT,
    T.DOUBLE,
    T.STRING,
    T.BYTES,
]
KEY_TYPES: list[TarsType] = [
    T.BOOL,
    T.BYTE,
    T.SHORT,
    T.INT,
    T.LONG,
    T.UNSIGNED_INT,
    T.STRING,
    T.BYTES,
    Color,
]
_names = itertools.count()


def make_struct(specs: Sequence[tuple[int, TarsType, bool, Any]]) -> type[Any]:
    """A struct class like the IDL compiler generates: __slots__, defaults, _tars_fields_."""
    fields = tuple(
        Field(tag, f"f{tag}", t, req, default, default is not None)
        for tag, t, req, default in sorted(specs, key=lambda s: s[0])
    )

    def __init__(self: Any) -> None:
        for f in fields:
            value = compiler.zero_value(f.type) if f.default is None else f.default
            setattr(self, f.name, value)

    n = next(_names)
    cls: type[Struct] = type(
        f"S{n}", (Struct,), {"__slots__": tuple(f.name for f in fields), "__init__": __init__}
    )
    cls._tars_name_ = f"Fuzz.S{n}"
    cls._tars_fields_ = fields
    return cls


def int_range(t: TarsType) -> tuple[int, int]:
    if isinstance(t, T.Scalar) and t.lo is not None and t.hi is not None:
        return t.lo, t.hi
    return -(2**31), 2**31 - 1  # enums


def scalar_default(t: TarsType) -> st.SearchStrategy[Any]:
    """An IDL default for an optional field of type t (None: the type's zero value)."""
    if t in T.INTEGERS:
        lo, hi = int_range(t)
        return st.none() | st.integers(lo, hi)
    if t is T.STRING:
        return st.none() | st.text(max_size=5)
    if t is T.BOOL:
        return st.none() | st.booleans()
    if t is T.DOUBLE:
        return st.none() | st.floats(allow_nan=False)
    if t is Color:
        return st.none() | st.sampled_from([0, 1, 7, 5])  # 5 is no member: stays an int
    return st.none()


@st.composite
def field_specs(draw: st.DrawFn, types: st.SearchStrategy[TarsType]) -> list[Any]:
    # Mostly small tags, some two-byte heads (>= 15), up to the 255 maximum.
    tags = draw(
        st.lists(st.integers(0, 20) | st.integers(15, 255), unique=True, min_size=0, max_size=5)
    )
    return [
        (tag, t, draw(st.booleans()), draw(scalar_default(t)))
        for tag in tags
        for t in [draw(types)]
    ]


def type_strategy() -> st.SearchStrategy[TarsType]:
    leaves = st.sampled_from([*SCALARS, Color, Sparse])
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(T.vector),
            st.tuples(st.sampled_from(KEY_TYPES), inner).map(lambda kv: T.map(*kv)),
            field_specs(inner).map(make_struct),
        ),
        max_leaves=6,
    )


TYPES = type_strategy()
STRUCTS = field_specs(TYPES).map(make_struct)


# --------------------------------------------------------------------------------- values


def escaped_text() -> st.SearchStrategy[str]:
    """Strings as decoded from arbitrary bytes (lone surrogates from surrogateescape)."""
    return st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape"))


def values(t: Any, *, key: bool = False) -> st.SearchStrategy[Any]:
    """Valid values of type t (hashable ones for map keys)."""
    if t is T.BOOL:
        return st.booleans()
    if t in T.INTEGERS:
        lo, hi = int_range(t)
        # the edges of every wire width, within the kind's range
        edges = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769]
        edges += [2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1, lo, hi]
        return st.sampled_from(sorted(x for x in set(edges) if lo <= x <= hi)) | st.integers(lo, hi)
    if t is T.FLOAT:
        return st.floats(width=32, allow_nan=not key)
    if t is T.DOUBLE:
        return st.floats(allow_nan=not key)
    if t is T.STRING:
        return st.text(max_size=20) | escaped_text() | st.text(min_size=256, max_size=300)
    if t == T.BYTES:
        raw = st.binary(max_size=20) | st.binary(min_size=128, max_size=300)
        return raw if key else raw | st.builds(bytearray, st.binary(max_size=8))
    if isinstance(t, T.Vector):
        items = st.lists(values(t.elem), max_size=4)
        return items | items.map(tuple)
    if isinstance(t, T.Map):
        return st.dictionaries(values(t.key, key=True), values(t.value), max_size=4)
    if t is Color or t is Sparse:
        return st.sampled_from(list(t)) | st.integers(-(2**31), 2**31 - 1)
    assert T.is_struct(t)
    return st.fixed_dictionaries({f.name: values(f.type) for f in t._tars_fields_}).map(
        lambda kw: build(t, kw)
    )


def build(cls: Any, kw: dict[str, Any]) -> Any:
    obj = object.__new__(cls)
    for k, v in kw.items():
        setattr(obj, k, v)
    return obj


class MyStr(str):
    pass


def bad_values(t: Any) -> st.SearchStrategy[Any]:
    """Values both codecs must reject (or, for quirks both share, accept alike)."""
    common = st.sampled_from([None, object(), "x", 1.5, [1], {"a": 1}])
    if t in T.INTEGERS:
        lo, hi = int_range(t)
        return common | st.sampled_from([lo - 1, hi + 1, 2**64, 0.0, 2.0])
    if t is T.STRING:
        return common | st.just(MyStr("subclass"))
    if isinstance(t, T.Vector | T.Map) and t != T.BYTES:
        return common | st.integers()
    return common


def maybe_bad(t: Any) -> st.SearchStrategy[Any]:
    if T.is_struct(t):
        return st.fixed_dictionaries({f.name: maybe_bad(f.type) for f in t._tars_fields_}).map(
            lambda kw: build(t, kw)
        ) | bad_values(t)
    if isinstance(t, T.Vector) and t != T.BYTES:
        return st.lists(maybe_bad(t.elem), max_size=3) | bad_values(t)
    return values(t) | bad_values(t)


@st.composite
def struct_and_value(draw: st.DrawFn) -> tuple[type, Any]:
    cls = draw(STRUCTS)
    return cls, draw(values(cls))


@st.composite
def type_and_value(draw: st.DrawFn) -> tuple[Any, Any]:
    t = draw(TYPES)
    return t, draw(values(t))


# --------------------------------------------------------------------------------- encode


@pytest.mark.slow
@SETTINGS
@given(struct_and_value())
def test_struct_encoding_is_byte_identical(case: tuple[type, Any]) -> None:
    cls, obj = case
    data = api.py_encode(obj)
    assert c_encode(obj) == data
    # And both decode it to the same value, which re-encodes to the same bytes.
    c, py = outcome(c_decode, data, cls), outcome(api.py_decode, data, cls)
    assert_same_outcome(c, py)
    assert c[0] == "ok", c
    assert c_encode(c[1]) == data


def test_reference_decodes_floats_after_many_fields() -> None:
    for n in range(100):
        cls = make_struct(
            [(i, T.INT, True, None) for i in range(n)]
            + [
                (n, T.STRING, True, None),
                (n + 1, T.DOUBLE, True, None),
                (n + 2, T.FLOAT, True, None),
            ]
        )
        obj = build(
            cls,
            {
                f.name: 1.5 if f.type in (T.FLOAT, T.DOUBLE) else ("s" if f.type is T.STRING else 7)
                for f in cls._tars_fields_
            },
        )
        data = api.py_encode(obj)
        assert same(c_decode(data, cls), obj)
        assert same(api.py_decode(data, cls), obj), f"pure path fails with {n} int fields first"


@SETTINGS
@given(type_and_value())
def test_value_encoding_is_byte_identical(case: tuple[Any, Any]) -> None:
    t, value = case
    data = api.py_encode_value(value, t)
    assert c_encode_value(value, t) == data
    c, py = outcome(c_decode_value, data, t), outcome(api.py_decode_value, data, t)
    assert_same_outcome(c, py)
    assert c[0] == "ok", c
    assert c_encode_value(c[1], t) == data


@pytest.mark.slow
@SETTINGS
@given(st.data())
def test_bad_values_fail_alike(data: st.DataObject) -> None:
    cls = data.draw(STRUCTS)
    obj = data.draw(maybe_bad(cls))
    c, py = outcome(c_encode, obj), outcome(api.py_encode, obj)
    if c[0] == "ok" or py[0] == "ok":
        assert c == py
    else:
        assert c == py  # ("EncodeError", field): rejected, and by the same field


# --------------------------------------------------------------------------------- decode


@pytest.mark.slow
@SETTINGS
@given(STRUCTS, st.binary(max_size=64))
def test_garbage_decodes_alike(cls: type, data: bytes) -> None:
    c, py = outcome(c_decode, data, cls), outcome(api.py_decode, data, cls)
    assert_same_outcome(c, py)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[type, bytes]:
    """A valid encoding with a few bytes changed, inserted or deleted: mostly-valid input
    reaches much deeper into the decoders than random bytes."""
    cls, obj = draw(struct_and_value())
    data = bytearray(api.py_encode(obj))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if op == "insert" or not data:
            data[pos:pos] = bytes([byte])
        elif op == "set":
            data[min(pos, len(data) - 1)] = byte
        else:
            del data[min(pos, len(data) - 1)]
    return cls, bytes(data)


@pytest.mark.slow
@settings(SETTINGS, max_examples=1000)
@given(mutated())
def test_mutated_encodings_decode_alike(case: tuple[type, bytes]) -> None:
    cls, data = case
    c, py = outcome(c_decode, data, cls), outcome(api.py_decode, data, cls)
    assert_same_outcome(c, py)


@pytest.mark.slow
@SETTINGS
@given(type_and_value())
def test_every_truncated_value_is_rejected(case: tuple[Any, Any]) -> None:
    """A value's encoding is self-delimiting: every strict prefix must fail, alike."""
    t, value = case
    data = api.py_encode_value(value, t)
    for k in range(len(data)):
        c, py = outcome(c_decode_value, data[:k], t), outcome(api.py_decode_value, data[:k], t)
        assert_same_outcome(c, py)
        assert c[0] == "DecodeError"


@pytest.mark.slow
@SETTINGS
@given(struct_and_value())
def test_every_truncated_struct_decodes_alike(case: tuple[type, Any]) -> None:
    cls, obj = case
    data = api.py_encode(obj)
    required = all(f.required for f in cls._tars_fields_)  # type: ignore[attr-defined]
    for k in range(len(data)):
        c, py = outcome(c_decode, data[:k], cls), outcome(api.py_decode, data[:k], cls)
        assert_same_outcome(c, py)
        if required:
            assert c[0] == "DecodeError"


@pytest.mark.slow
@SETTINGS
@given(TYPES, st.binary(max_size=48))
def test_garbage_values_decode_alike(t: Any, data: bytes) -> None:
    c, py = outcome(c_decode_value, data, t), outcome(api.py_decode_value, data, t)
    assert_same_outcome(c, py)


# --------------------------------------------------------------------------------- fixed cases


# RequestPacket as captured from @tars/stream on loopback: 126 bytes.
NODE_REQUEST = bytes.fromhex(
    "10012c3c4130395619546573742e48656c6c6f5365727665722e48656c6c6f4f626a66087361"
    "7948656c6c6f7d000040000102030405060708090a0b0c0d0e0f101112131415161718191a1b"
    "1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f810b"
    "b898000106016b160176a80c"
)


def request() -> RequestPacket:
    return RequestPacket(
        iVersion=1,
        iRequestId=12345,
        sServantName="Test.HelloServer.HelloObj",
        sFuncName="sayHello",
        sBuffer=bytes(range(64)),
        iTimeout=3000,
        context={"k": "v"},
    )


def test_request_packet_matches_the_node_capture() -> None:
    assert c_encode(request()) == NODE_REQUEST
    assert c_decode(NODE_REQUEST, RequestPacket) == request()


def test_response_packet_optional_fields_default() -> None:
    resp = ResponsePacket(iRequestId=9, iRet=-1, sBuffer=b"\x00" * 300, status={"a": "b"})
    full = c_encode(resp)
    assert full == api.py_encode(resp)
    without_optionals = full[: full.index(b"\x86")]  # cut before tag 8 (sResultDesc)
    got = c_decode(without_optionals, ResponsePacket)
    assert got.sResultDesc == "" and got.context == {}
    assert got.status == {"a": "b"}


def test_public_api_uses_the_c_codec() -> None:
    if os.environ.get("TARSUS_NO_SPEEDUPS"):
        pytest.skip("TARSUS_NO_SPEEDUPS is set")
    from tarsus.codec import _speedups

    assert api.SPEEDUPS is True
    assert api.encode is _speedups.encode and api.decode is _speedups.decode
    assert api.encode(request()) == NODE_REQUEST
    assert api.decode(bytearray(NODE_REQUEST), RequestPacket) == request()
    assert api.decode(memoryview(NODE_REQUEST), RequestPacket) == request()
    assert api.decode_value(api.encode_value([1, 2], T.vector(T.INT)), T.vector(T.INT)) == [1, 2]


def test_no_speedups_env_var_selects_the_pure_codec() -> None:
    code = (
        "from tarsus.codec import api;"
        "print(api.SPEEDUPS, api.encode is api.py_encode, api.decode is api.py_decode)"
    )
    env = dict(os.environ, TARSUS_NO_SPEEDUPS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True", "True"]


def test_codecs_are_cached_and_nested_structs_shared() -> None:
    inner = make_struct([(0, T.INT, True, None)])
    outer = make_struct([(1, inner, True, None), (2, T.vector(inner), False, None)])
    assert plan.struct_codec(outer) is plan.struct_codec(outer)
    assert inner in plan._codecs  # compiled along with outer, once
    assert plan.value_codec(T.vector(T.INT)) is plan.value_codec(T.vector(T.INT))


def test_objects_are_built_without_init() -> None:
    class Strict(Struct):
        __slots__ = ("a",)
        _tars_name_ = "Test.Strict"
        _tars_fields_ = (Field(0, "a", T.INT, True),)

        def __init__(self) -> None:
            raise AssertionError("decode must not call __init__")

    assert c_decode(b"\x00\x05", Strict).a == 5


def test_long_heads_and_unknown_fields() -> None:
    """Tags >= 15 take two-byte heads; fields a newer peer added are skipped, nested too."""
    old_inner = make_struct([(0, T.INT, True, None)])
    new_inner = make_struct(
        [
            (0, T.INT, True, None),
            (1, T.vector(T.STRING), True, None),
            (200, T.map(T.INT, T.BYTES), True, None),
        ]
    )
    old = make_struct([(20, old_inner, True, None), (255, T.STRING, True, None)])
    new = make_struct(
        [
            (3, T.DOUBLE, True, None),
            (20, new_inner, True, None),
            (100, T.vector(new_inner), True, None),
            (255, T.STRING, True, None),
        ]
    )
    obj = build(
        new,
        {
            "f3": 1.5,
            "f20": build(new_inner, {"f0": 7, "f1": ["a"], "f200": {1: b"x"}}),
            "f100": [],
            "f255": "end",
        },
    )
    data = c_encode(obj)
    assert data == api.py_encode(obj)
    assert data[-6:-4] == bytes([0xF6, 255])  # String1 at tag 255
    got = c_decode(data, old)
    assert got.f20.f0 == 7 and got.f255 == "end"


def test_enums_and_defaults() -> None:
    cls = make_struct([(0, Color, False, 7), (1, Sparse, False, None), (2, Color, True, None)])
    got = c_decode(b"\x20\x05", cls)  # only tag 2, a value Color does not know
    assert got.f0 is Color.BLUE
    assert got.f1 is Sparse.LOW  # no zero member: the first one, as compiler.zero_value
    assert got.f2 == 5 and type(got.f2) is int
    assert c_decode(b"\x20\x07", cls).f2 is Color.BLUE


def test_fresh_mutable_defaults() -> None:
    inner = make_struct([(0, T.INT, False, None)])
    cls = make_struct(
        [
            (0, T.vector(T.INT), False, None),
            (1, T.map(T.INT, T.INT), False, None),
            (2, inner, False, None),
        ]
    )
    a, b = c_decode(b"", cls), c_decode(b"", cls)
    assert a.f0 == [] and a.f1 == {} and a.f2 == inner()
    assert a.f0 is not b.f0 and a.f1 is not b.f1 and a.f2 is not b.f2


ERROR_CASES = [
    # (description, data): decode errors with their location, checked against Python
    ("missing required", b""),
    ("type mismatch", b"\x16\x01a"),
    ("truncated string", b"\x16\x05ab"),
    ("string4 over 100 MiB", b"\x17\x07\x00\x00\x00"),
    ("string4 past the end", b"\x17\x05\xf5\xe1\x00abc"),
    ("negative count", b"\x19\x00\xff"),
    ("count over the data", b"\x19\x02\x7f\xff\xff\xff\x00"),
    ("invalid type in skip", b"\x0e"),
    ("StructEnd in a container", b"\x09\x00\x01\x0b"),
]


@pytest.mark.parametrize(("what", "data"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_decode_errors_are_located_like_python(what: str, data: bytes) -> None:
    cls = make_struct([(1, T.vector(T.STRING), True, None)])
    c = outcome(c_decode, data, cls)
    assert c[0] == "DecodeError"
    assert c == outcome(api.py_decode, data, cls)
    assert c[2] == f"{cls._tars_name_}.f1"


def test_errors_in_nested_structs_name_the_inner_field() -> None:
    inner = make_struct([(0, T.INT, True, None), (1, T.UNSIGNED_BYTE, True, None)])
    outer = make_struct([(0, T.vector(inner), True, None)])
    obj = build(
        outer, {"f0": [build(inner, {"f0": 1, "f1": 2}), build(inner, {"f0": 1, "f1": 256})]}
    )
    with pytest.raises(EncodeError) as c_err:
        c_encode(obj)
    assert c_err.value.field == f"{inner._tars_name_}.f1"
    assert "256 is out of range 0..255" in str(c_err.value)
    assert outcome(api.py_encode, obj) == outcome(c_encode, obj)

    data = bytes.fromhex("0900020a000110020b0a00")  # second element cut short inside f0
    c = outcome(c_decode, data, outer)
    assert c == outcome(api.py_decode, data, outer)
    assert c[2] == f"{inner._tars_name_}.f0"


def test_value_errors_name_the_type() -> None:
    t = T.map(T.STRING, T.vector(T.INT))
    with pytest.raises(EncodeError) as e:
        c_encode_value({"a": [1, "x"]}, t)
    assert e.value.field == "map<string, vector<int>>"
    with pytest.raises(DecodeError) as d:
        c_decode_value(b"\x08\x00\x01\x06\x01a\x19\x00\x01\x06", t)
    assert d.value.field == "map<string, vector<int>>"
    assert outcome(c_decode_value, b"\x08\x00\x01\x06\x01a\x19\x00\x01\x06", t) == outcome(
        api.py_decode_value, b"\x08\x00\x01\x06\x01a\x19\x00\x01\x06", t
    )


def test_user_exceptions_pass_through() -> None:
    """Only the low-level errors api.py converts become codec errors; others propagate."""

    class Boom(Exception):
        pass

    class Weird:
        def __bool__(self) -> bool:
            raise Boom

    cls = make_struct([(0, T.BOOL, True, None)])
    with pytest.raises(Boom):
        c_encode(build(cls, {"f0": Weird()}))
    with pytest.raises(Boom):
        api.py_encode(build(cls, {"f0": Weird()}))


def test_encoding_accepts_sequences_and_buffers() -> None:
    t = T.vector(T.SHORT)
    for v in ([1, 300], (1, 300), range(1, 301, 299)):
        assert c_encode_value(v, t) == api.py_encode_value(v, t)
    for b in (b"abc", bytearray(b"abc"), memoryview(b"abc")):
        assert c_encode_value(b, T.BYTES) == api.py_encode_value(b, T.BYTES)
        assert c_encode_value(b, T.STRING) == api.py_encode_value(b, T.STRING)


def test_strings_round_trip_any_bytes() -> None:
    raw = bytes(range(256))
    got = c_decode_value(b"\x07\x00\x00\x01\x00" + raw, T.STRING)
    assert got == raw.decode("utf-8", "surrogateescape")
    assert c_encode_value(got, T.STRING)[5:] == raw


# --------------------------------------------------------------------------------- hostile input


DEEP = 10**6


@pytest.mark.slow
@pytest.mark.parametrize(
    ("what", "unit"),
    [
        ("struct begins", b"\x0a"),
        ("lists of one", b"\x09\x00\x01"),
        ("maps of one key", b"\x08\x00\x01\x0c\x18\x00\x01"),
    ],
)
def test_nesting_bombs_fail_cleanly(what: str, unit: bytes) -> None:
    cls = make_struct([(5, T.INT, True, None)])
    data = unit * DEEP
    for decode in (c_decode, api.py_decode):
        with pytest.raises(DecodeError):
            decode(data, cls)


def test_deep_but_valid_nesting_is_skipped() -> None:
    cls = make_struct([(5, T.INT, True, None)])
    data = b"\x0a" * DEEP + b"\x0b" * DEEP + b"\x50\x2a"
    assert c_decode(data, cls).f5 == 42
    assert api.py_decode(data, cls).f5 == 42


@pytest.mark.parametrize(
    "data",
    [
        b"\x07\x06\x40\x00\x00abc",  # String4 of 100 MiB, 3 bytes there
        b"\x09\x02\x7f\xff\xff\xff\x0c",  # List of 2^31-1 elements
        b"\x08\x02\x06\x40\x00\x00\x0c",  # Map of 100M entries
        b"\x0d\x00\x02\x06\x40\x00\x00",  # SimpleList of 100 MiB
        b"\x0a\x17\x06\x40\x00\x00",  # an unknown String4 field inside an unknown struct
    ],
)
def test_huge_length_prefixes_fail_without_allocating(data: bytes) -> None:
    cls = make_struct([(0, T.vector(T.STRING), True, None)])
    tracemalloc.start()
    try:
        for t in (T.STRING, T.vector(T.INT), T.map(T.INT, T.INT), T.BYTES):
            with pytest.raises(DecodeError):
                c_decode_value(data, t)
        with pytest.raises(DecodeError):
            c_decode(data[:1] + data, cls)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.slow
def test_no_leaks() -> None:
    """Encode, decode and every error path, many times: traced memory must not grow."""
    t = T.map(T.STRING, T.vector(Color))
    inner = make_struct([(0, T.INT, False, None), (1, T.STRING, False, None)])
    cls = make_struct([(0, inner, False, None), (1, t, True, None), (2, T.BYTES, False, None)])
    good = build(cls, {"f0": inner(), "f1": {"a": [Color.RED, 5]}, "f2": b"x" * 40})
    bad = build(cls, {"f0": inner(), "f1": {"a": [2**40]}, "f2": b""})
    data = c_encode(good)

    calls: list[Callable[[], Any]] = [
        lambda: c_encode(good),
        lambda: c_decode(data, cls),
        lambda: c_encode_value(good.f1, t),
        lambda: c_decode_value(c_encode_value(good.f1, t), t),
        # error paths: each builds, locates and drops an exception
        lambda: c_encode(bad),
        lambda: c_decode(b"", cls),
        lambda: c_decode(data[:-3], cls),
        lambda: c_decode(b"\x1e", cls),
        lambda: c_decode_value(b"\x08\x00\x01\x06", t),
    ]

    def work() -> None:
        for call in calls:
            with contextlib.suppress(EncodeError, DecodeError):
                call()

    for _ in range(2000):
        work()
    tracemalloc.start()
    try:
        for _ in range(1000):
            work()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(20000):
            work()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, f"traced memory grew by {after - before} bytes"


def test_nan_and_inf_floats() -> None:
    t = T.vector(T.FLOAT)
    v = [math.inf, -math.inf, math.nan, -0.0, 3.4e38]
    assert c_encode_value(v, t) == api.py_encode_value(v, t)
    with pytest.raises(EncodeError):
        c_encode_value([1e39], t)  # overflows a float, as struct.pack('>f') does
    with pytest.raises(EncodeError):
        api.py_encode_value([1e39], t)


def test_huge_string_rejected_on_encode() -> None:
    big = b"x" * (100 * 1024 * 1024 + 1)
    with pytest.raises(EncodeError, match="exceeds 100 MiB"):
        c_encode_value(big, T.STRING)


# ------------------------------------------------------------------------- the server's reply


@SETTINGS
@given(
    version=st.integers(-(2**15), 2**15 - 1),
    packet_type=st.integers(-128, 127),
    request_id=st.integers(-(2**31), 2**31 - 1),
    message_type=st.integers(-(2**31), 2**31 - 1),
    ret=st.integers(-(2**31), 2**31 - 1),
    body=st.binary(max_size=2000),
    desc=st.text(max_size=300),
)
def test_frame_response_is_the_framed_response_packet(
    version: int,
    packet_type: int,
    request_id: int,
    message_type: int,
    ret: int,
    body: bytes,
    desc: str,
) -> None:
    from tarsus.codec._speedups import frame_response
    from tarsus.codec.packet import py_frame_response

    args = (version, packet_type, request_id, message_type, ret, body, desc)
    framed = frame_response(*args)
    assert framed == py_frame_response(*args)
    assert int.from_bytes(framed[:4], "big") == len(framed)
    packet = api.decode(framed[4:], ResponsePacket)
    assert (packet.iRequestId, packet.iRet, packet.sBuffer, packet.sResultDesc) == (
        request_id,
        ret,
        body,
        desc,
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((1, 0, 2**31, 0, 0, b"", ""), EncodeError),  # request id out of int range
        ((2**15, 0, 1, 0, 0, b"", ""), EncodeError),  # version out of short range
        ((1, 0, 1, 0, "0", b"", ""), EncodeError),  # not an integer
        ((1, 0, 1, 0, 0, "text", ""), TypeError),  # a body that is not bytes
        ((1, 0, 1, 0, 0, b"", b"\xff" * 3), None),  # bytes for the description are taken
    ],
)
def test_frame_response_refuses_what_does_not_fit(args: tuple[Any, ...], error: Any) -> None:
    from tarsus.codec._speedups import frame_response

    if error is None:
        frame_response(*args)
        return
    with pytest.raises(error):
        frame_response(*args)
    with pytest.raises(TypeError):
        frame_response(*args[:6])


def test_encode_values_writes_what_encoding_an_instance_writes() -> None:
    class Pair(Struct):
        __slots__ = ("a", "b")

    Pair._tars_fields_ = (
        Field(0, "a", T.INT, True),
        Field(2, "b", T.map(T.STRING, T.vector(T.INT)), True),
    )
    codec = plan.struct_codec(Pair)
    obj = Pair.__new__(Pair)
    obj.a, obj.b = -7, {"x": [1, 2, 3], "": []}
    assert codec.encode_values((-7, {"x": [1, 2, 3], "": []})) == api.py_encode(obj)
    assert codec.encode_values([-7, {"x": [1, 2, 3], "": []}]) == api.py_encode(obj)
    with pytest.raises(EncodeError) as e:
        codec.encode_values((2**40, {}))  # does not fit an int
    assert e.value.field is not None and e.value.field.endswith("a")
    with pytest.raises(TypeError, match="takes 2 values, got 1"):
        codec.encode_values((1,))
    with pytest.raises(TypeError):
        codec.encode_values(5)
