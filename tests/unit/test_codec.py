"""The tagged binary codec: exact bytes, reader widening, compatibility rules, bad input."""

from __future__ import annotations

import contextlib
import math
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarsus.codec import (
    DecodeError,
    EncodeError,
    RequestPacket,
    ResponsePacket,
    decode,
    decode_value,
    encode,
    encode_value,
)
from tarsus.codec import types as T

# --------------------------------------------------------------------------- exact bytes


def test_request_packet_matches_the_node_sdk_capture() -> None:
    # captured on loopback: echo("hello") with context {k: v} from @tars/rpc, minus the length.
    captured = bytes.fromhex(
        "1001 2c 3c 4002 5617"
        + b"Test.NodeServer.EchoObj".hex()
        + "6604"
        + b"echo".hex()
        + "7d000007 1605"
        + b"hello".hex()
        + "810bb8 9800010601"
        + b"k".hex()
        + "1601"
        + b"v".hex()
        + "a80c"
    )
    pkt = RequestPacket(
        iRequestId=2,
        sServantName="Test.NodeServer.EchoObj",
        sFuncName="echo",
        sBuffer=bytes.fromhex("1605") + b"hello",
        iTimeout=3000,
        context={"k": "v"},
    )
    assert encode(pkt) == captured
    assert decode(captured, RequestPacket) == pkt


def test_response_packet_from_the_node_sdk_decodes() -> None:
    # captured on loopback: Node server's answer to request id 42.
    data = bytes.fromhex("1001 2c 302a 4c 5c 6d000015 0007 2611") + b"echo:py|ctx=pyctx"
    data += bytes.fromhex("780c 8600 980c")
    rsp = decode(data, ResponsePacket)
    assert (rsp.iVersion, rsp.iRequestId, rsp.iRet) == (1, 42, 0)
    assert rsp.sBuffer == bytes.fromhex("0007 2611") + b"echo:py|ctx=pyctx"
    assert rsp.status == {} and rsp.context == {} and rsp.sResultDesc == ""


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "0c"),
        (1, "0001"),
        (-1, "00ff"),
        (127, "007f"),
        (-128, "0080"),
        (128, "010080"),
        (-129, "01ff7f"),
        (32767, "017fff"),
        (-32768, "018000"),
        (32768, "0200008000"),
        (-32769, "02ffff7fff"),
        (2**31 - 1, "027fffffff"),
        (-(2**31), "0280000000"),
        (2**31, "030000000080000000"),
        (-(2**31) - 1, "03ffffffff7fffffff"),
        (2**63 - 1, "037fffffffffffffff"),
        (-(2**63), "038000000000000000"),
    ],
)
def test_integers_are_written_in_the_narrowest_form(value: int, wire: str) -> None:
    assert encode_value(value, T.LONG) == bytes.fromhex(wire)
    assert decode_value(bytes.fromhex(wire), T.LONG) == value


def test_tags_above_14_use_the_two_byte_head() -> None:
    assert encode_value({"a": 1}, T.map(T.STRING, T.INT))[:1] == b"\x08"
    data = encode_value(b"", T.BYTES)
    assert data == bytes.fromhex("0d000c")


def test_strings_switch_to_string4_above_255_bytes() -> None:
    assert encode_value("x" * 255, T.STRING)[:2] == b"\x06\xff"
    assert encode_value("x" * 256, T.STRING)[:5] == b"\x07\x00\x00\x01\x00"
    assert decode_value(encode_value("é" * 200, T.STRING), T.STRING) == "é" * 200


def test_bool_float_double_forms() -> None:
    assert encode_value(True, T.BOOL) == b"\x00\x01"
    assert encode_value(False, T.BOOL) == b"\x0c"
    assert encode_value(0.0, T.DOUBLE) == b"\x05" + bytes(8)  # never a Float for a double
    assert encode_value(1.5, T.FLOAT) == b"\x04" + struct.pack(">f", 1.5)


def test_high_tags_round_trip(codec_idl: Any) -> None:
    v = codec_idl.AllTypes(grid=[[1, 2**40], []], last="fin")
    data = encode(v)
    assert b"\xf9\xc8" in data  # List at tag 200, two-byte head
    assert b"\xf6\xff\x03fin" in data  # String1 at tag 255
    assert decode(data, codec_idl.AllTypes) == v


# --------------------------------------------------------------------------- reading rules


def test_reader_widens_narrower_wire_types() -> None:
    assert decode_value(b"\x00\x05", T.INT) == 5
    assert decode_value(b"\x01\x01\x00", T.LONG) == 256
    assert decode_value(b"\x0c", T.DOUBLE) == 0.0
    assert decode_value(b"\x04" + struct.pack(">f", 2.5), T.DOUBLE) == 2.5
    assert decode_value(b"\x00\x02", T.BOOL) is True  # C++/Go: any non-zero byte


def test_reader_refuses_wider_wire_types_than_declared() -> None:
    with pytest.raises(DecodeError, match="type mismatch: expected int, found Int64"):
        decode_value(encode_value(2**40, T.LONG), T.INT)
    with pytest.raises(DecodeError, match="expected short"):
        decode_value(encode_value(70000, T.INT), T.SHORT)


def test_byte_vector_accepts_a_list_of_char() -> None:
    list_of_short = encode_value([300], T.vector(T.SHORT))
    with pytest.raises(DecodeError, match="vector<byte> element is Short"):
        decode_value(list_of_short, T.BYTES)
    list_of_char = bytes.fromhex("0900030001 00ff 0c")
    assert decode_value(list_of_char, T.BYTES) == b"\x01\xff\x00"


def test_unknown_fields_are_skipped_by_an_older_reader(codec_idl: Any) -> None:
    new = codec_idl.Holder(inner=codec_idl.Inner(id=3, label="x" * 300), after=9)
    old = decode(encode(new), codec_idl.OldHolder)
    assert old.inner.id == 3 and old.after == 9


def test_every_field_type_is_skipped(codec_idl: Any) -> None:
    full = codec_idl.AllTypes(
        b=True, i8=-1, i16=300, i32=70000, i64=2**40, u8=255, u16=65535, u32=2**32 - 1,
        f32=1.5, f64=-2.25, s="é", raw=b"\x00\xff", ints=[1, -1], strs=["a", ""],
        inners=[codec_idl.Inner(id=1)], smap={"k": "v"}, imap={5: codec_idl.Inner(id=5)},
        nested={"n": [codec_idl.Inner(id=2, label="l")]}, one=codec_idl.Inner(id=9),
        color=codec_idl.Color.BLUE, grid=[[1], [2, 3]], last="z",
    )  # fmt: skip
    assert decode_value(encode_value(full, codec_idl.AllTypes), codec_idl.AllTypes) == full
    # An OldInner knows only tag 0: everything after it, up to its StructEnd, is unknown.
    holder = b"\x0a\x00\x01" + encode(full) + b"\x0b\x10\x09"
    old = decode(holder, codec_idl.OldHolder)
    assert (old.inner.id, old.after) == (1, 9)


def test_optional_fields_take_their_idl_defaults(codec_idl: Any) -> None:
    v = decode(b"", codec_idl.AllTypes)
    assert v.color == codec_idl.Color.GREEN and v.last == "end" and v.ints == []
    assert v.one == codec_idl.Inner()
    assert codec_idl.Inner().label == "none"


def test_an_enum_value_the_reader_does_not_know_stays_an_int(codec_idl: Any) -> None:
    v = decode(b"\xf0\x13\x63", codec_idl.AllTypes)  # tag 19 (two-byte head), Char 99
    assert v.color == 99 and not isinstance(v.color, codec_idl.Color)


# --------------------------------------------------------------------------- errors


def test_missing_required_field_names_the_field(codec_idl: Any) -> None:
    with pytest.raises(DecodeError) as e:
        decode(b"\x16\x01x", codec_idl.Inner)  # only tag 1
    assert e.value.tag == 0
    assert "Codec.Inner.id" in str(e.value)
    assert "required field is missing" in str(e.value)


def test_truncated_data_names_the_field_and_offset() -> None:
    data = encode(RequestPacket(sServantName="A.B.C", sFuncName="f"))
    with pytest.raises(DecodeError) as e:
        decode(data[:10], RequestPacket)  # cut inside "A.B.C"
    assert e.value.field == "tars.RequestPacket.sServantName"
    assert e.value.offset is not None and e.value.offset <= 10


def test_encode_errors_name_the_field(codec_idl: Any) -> None:
    with pytest.raises(EncodeError, match=r"AllTypes\.i8"):
        encode(codec_idl.AllTypes(i8=200))
    with pytest.raises(EncodeError, match="out of range"):
        encode(codec_idl.AllTypes(u8=-1))
    with pytest.raises(EncodeError, match=r"AllTypes\.i32"):
        encode(codec_idl.AllTypes(i32="7"))
    with pytest.raises(EncodeError):
        encode(codec_idl.AllTypes(u32=2**32))
    with pytest.raises(EncodeError, match=r"AllTypes\.s"):
        encode(codec_idl.AllTypes(s=5))


def test_length_larger_than_the_data_fails_fast() -> None:
    bomb = b"\x09\x02\x7f\xff\xff\xff"  # List claiming 2^31-1 elements
    with pytest.raises(DecodeError, match="larger than"):
        decode_value(bomb, T.vector(T.INT))
    string_bomb = b"\x07\x06\x40\x00\x00"  # String4 of 100 MiB + change, 0 bytes present
    with pytest.raises(DecodeError):
        decode_value(string_bomb, T.STRING)


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(DecodeError, match="negative size"):
        decode_value(b"\x09\x00\xff", T.vector(T.INT))
    with pytest.raises(DecodeError):
        decode_value(b"\x0d\x00\x00\xfe", T.BYTES)


def test_nesting_bomb_in_an_unknown_field_is_an_error_not_a_crash(codec_idl: Any) -> None:
    # Inside OldHolder.inner, after the known tag 0, the reader must skip up to StructEnd.
    bomb = b"\x1a" * 1_000_000  # a million nested structs at tag 1, never closed
    with pytest.raises(DecodeError, match="truncated"):
        decode(b"\x0a\x00\x01" + bomb, codec_idl.OldHolder)
    closed = b"\x1a" * 100_000 + b"\x0b" * 100_000
    assert decode(b"\x0a\x00\x01" + closed + b"\x0b", codec_idl.OldHolder).inner.id == 1


def test_invalid_type_codes_are_refused(codec_idl: Any) -> None:
    for code in (14, 15):
        with pytest.raises(DecodeError, match="invalid type"):
            decode(bytes([code]), codec_idl.OldInner)  # where the int at tag 0 is due
        with pytest.raises(DecodeError, match="invalid type"):  # in an unknown field
            decode(b"\x0a\x00\x01" + bytes([0x10 | code]) + b"\x0b", codec_idl.OldHolder)


# --------------------------------------------------------------------------- properties

_ints = {
    T.BYTE: st.integers(-(2**7), 2**7 - 1),
    T.SHORT: st.integers(-(2**15), 2**15 - 1),
    T.INT: st.integers(-(2**31), 2**31 - 1),
    T.LONG: st.integers(-(2**63), 2**63 - 1),
    T.UNSIGNED_BYTE: st.integers(0, 2**8 - 1),
    T.UNSIGNED_SHORT: st.integers(0, 2**16 - 1),
    T.UNSIGNED_INT: st.integers(0, 2**32 - 1),
}


def _float32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]  # type: ignore[no-any-return]


@st.composite
def all_types(draw: st.DrawFn, idl: Any) -> Any:
    text = st.text(max_size=300)
    inner = st.builds(idl.Inner, id=_ints[T.INT], label=text)
    return idl.AllTypes(
        b=draw(st.booleans()),
        i8=draw(_ints[T.BYTE]),
        i16=draw(_ints[T.SHORT]),
        i32=draw(_ints[T.INT]),
        i64=draw(_ints[T.LONG]),
        u8=draw(_ints[T.UNSIGNED_BYTE]),
        u16=draw(_ints[T.UNSIGNED_SHORT]),
        u32=draw(_ints[T.UNSIGNED_INT]),
        f32=_float32(draw(st.floats(allow_nan=False, width=32))),
        f64=draw(st.floats(allow_nan=False)),
        s=draw(text),
        raw=draw(st.binary(max_size=600)),
        ints=draw(st.lists(_ints[T.INT], max_size=20)),
        strs=draw(st.lists(text, max_size=5)),
        inners=draw(st.lists(inner, max_size=5)),
        smap=draw(st.dictionaries(text, text, max_size=5)),
        imap=draw(st.dictionaries(_ints[T.INT], inner, max_size=5)),
        nested=draw(st.dictionaries(text, st.lists(inner, max_size=3), max_size=3)),
        one=draw(inner),
        color=draw(st.sampled_from(list(idl.Color))),
        grid=draw(st.lists(st.lists(_ints[T.LONG], max_size=4), max_size=4)),
        last=draw(text),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_of_generated_values(codec_idl: Any, data: st.DataObject) -> None:
    v = data.draw(all_types(codec_idl))
    assert decode(encode(v), codec_idl.AllTypes) == v
    assert decode_value(encode_value(v, codec_idl.AllTypes), codec_idl.AllTypes) == v


@settings(max_examples=200)
@given(st.text(), st.binary(), st.dictionaries(st.text(), st.text(), max_size=4))
def test_request_packet_round_trip(name: str, body: bytes, ctx: dict[str, str]) -> None:
    pkt = RequestPacket(sServantName=name, sFuncName=name[:3], sBuffer=body, context=ctx)
    assert decode(encode(pkt), RequestPacket) == pkt


def test_any_bytes_in_a_string_survive(codec_idl: Any) -> None:
    raw = bytes(range(256))
    v = decode_value(encode_value(raw, T.STRING), T.STRING)
    assert isinstance(v, str) and encode_value(v, T.STRING) == encode_value(raw, T.STRING)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=200))
def test_garbage_only_ever_raises_decode_error(codec_idl: Any, garbage: bytes) -> None:
    for cls in (codec_idl.AllTypes, codec_idl.Holder, RequestPacket, ResponsePacket):
        with contextlib.suppress(DecodeError):
            decode(garbage, cls)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_truncation_is_a_value_or_a_decode_error(codec_idl: Any, data: st.DataObject) -> None:
    full = encode(data.draw(all_types(codec_idl)))
    for cut in range(len(full)):
        with contextlib.suppress(DecodeError):
            decode(full[:cut], codec_idl.AllTypes)


@settings(max_examples=300)
@given(st.binary(max_size=100), st.integers(0, 99))
def test_flipped_bytes_only_raise_decode_error(garbage: bytes, pos: int) -> None:
    data = bytearray(encode(RequestPacket(sServantName="a.b.c", sBuffer=garbage)))
    data[pos % len(data)] ^= 0xFF
    with contextlib.suppress(DecodeError):
        decode(bytes(data), RequestPacket)


def test_nan_and_infinities_round_trip() -> None:
    assert math.isnan(decode_value(encode_value(math.nan, T.DOUBLE), T.DOUBLE))
    assert decode_value(encode_value(-math.inf, T.FLOAT), T.FLOAT) == -math.inf
