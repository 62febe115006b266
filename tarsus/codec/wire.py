"""The tagged binary format at the byte level: heads, type codes, skipping.

Everything here works on ``bytes`` with an explicit position, never on streams, so that the
generated encoders and decoders (``tarsus.codec.compiler``) can inline the common paths and
call these only for the rare ones (long heads, unknown fields, errors).
"""

from __future__ import annotations

import struct
from typing import Final

from tarsus.codec.errors import DecodeError

# Type codes (TarsCpp ``servant/tup/Tars.h``: ``TarsHeadeChar`` to ``TarsHeadeSimpleList``).
CHAR: Final = 0
SHORT: Final = 1
INT32: Final = 2
INT64: Final = 3
FLOAT: Final = 4
DOUBLE: Final = 5
STRING1: Final = 6
STRING4: Final = 7
MAP: Final = 8
LIST: Final = 9
STRUCT_BEGIN: Final = 10
STRUCT_END: Final = 11
ZERO: Final = 12
SIMPLE_LIST: Final = 13

TYPE_NAMES: Final = (
    "Char",
    "Short",
    "Int32",
    "Int64",
    "Float",
    "Double",
    "String1",
    "String4",
    "Map",
    "List",
    "StructBegin",
    "StructEnd",
    "ZeroTag",
    "SimpleList",
    "invalid type 14",
    "invalid type 15",
)

#: Upstream's caps (TarsType.h): strings and packets of at most 100 MiB.
MAX_STRING_LENGTH: Final = 100 * 1024 * 1024

_FIXED_SIZE: Final = (1, 2, 4, 8, 4, 8)

unpack_i8 = struct.Struct(">b").unpack_from
unpack_i16 = struct.Struct(">h").unpack_from
unpack_i32 = struct.Struct(">i").unpack_from
unpack_i64 = struct.Struct(">q").unpack_from
unpack_u32 = struct.Struct(">I").unpack_from
unpack_f32 = struct.Struct(">f").unpack_from
unpack_f64 = struct.Struct(">d").unpack_from


def head(type_code: int, tag: int) -> bytes:
    """The encoded head of a field: one byte for tags below 15, two bytes otherwise."""
    if not 0 <= tag <= 255:
        raise ValueError(f"tag {tag} is outside 0..255")
    if tag < 15:
        return bytes(((tag << 4) | type_code,))
    return bytes((0xF0 | type_code, tag))


def read_head(d: bytes, p: int, n: int) -> tuple[int, int, int]:
    """Return (tag, type, position after the head) for the head at ``p``."""
    if p >= n:
        raise DecodeError("truncated: expected a field head", offset=p)
    h = d[p]
    tag = h >> 4
    if tag == 15:
        if p + 1 >= n:
            raise DecodeError("truncated: two-byte head cut short", offset=p)
        return d[p + 1], h & 15, p + 2
    return tag, h & 15, p + 1


def read_length(d: bytes, p: int, n: int) -> tuple[int, int]:
    """Read a container element count (an integer at tag 0); check it is sane."""
    tag, ty, p2 = read_head(d, p, n)
    if tag != 0:
        raise DecodeError(f"expected a length at tag 0, found tag {tag}", offset=p)
    if ty == ZERO:
        return 0, p2
    if ty == CHAR:
        if p2 >= n:
            raise DecodeError("truncated length", offset=p2)
        c = unpack_i8(d, p2)[0]
        p2 += 1
    elif ty == SHORT:
        if p2 + 2 > n:
            raise DecodeError("truncated length", offset=p2)
        c = unpack_i16(d, p2)[0]
        p2 += 2
    elif ty == INT32:
        if p2 + 4 > n:
            raise DecodeError("truncated length", offset=p2)
        c = unpack_i32(d, p2)[0]
        p2 += 4
    else:
        raise DecodeError(f"a length must be an integer, found {TYPE_NAMES[ty]}", offset=p)
    if c < 0:
        raise DecodeError(f"negative size {c}", offset=p)
    if c > n - p2:
        raise DecodeError(f"size {c} is larger than the {n - p2} bytes left", offset=p)
    return c, p2


def skip(d: bytes, p: int, n: int, ty: int) -> int:
    """Skip the payload of a value of type ``ty`` whose head ends at ``p``.

    Iterative, with an explicit stack, so hostile nesting cannot exhaust Python's recursion
    limit; every stack entry consumed at least one input byte, so memory stays O(input).
    """
    stack: list[int] = []  # remaining element count of a container, or -1 inside a struct
    while True:
        if ty <= 5:
            p += _FIXED_SIZE[ty]
        elif ty == STRING1:
            if p >= n:
                raise DecodeError("truncated string length", offset=p)
            p += 1 + d[p]
        elif ty == STRING4:
            if p + 4 > n:
                raise DecodeError("truncated string length", offset=p)
            p += 4 + unpack_u32(d, p)[0]
        elif ty == MAP:
            c, p = read_length(d, p, n)
            stack.append(2 * c)
        elif ty == LIST:
            c, p = read_length(d, p, n)
            stack.append(c)
        elif ty == STRUCT_BEGIN:
            stack.append(-1)
        elif ty == SIMPLE_LIST:
            p = _simple_list_start(d, p, n)
            c, p = read_length(d, p, n)
            p += c
        elif ty == STRUCT_END:
            raise DecodeError("unexpected StructEnd", offset=p - 1)
        elif ty != ZERO:
            raise DecodeError(f"invalid type code {ty}", offset=p - 1)
        if p > n:
            raise DecodeError("truncated: value runs past the end of the data", offset=n)
        # Find the next value still owed, if any.
        while stack:
            top = stack[-1]
            if top == 0:
                stack.pop()
                continue
            _, ty, p = read_head(d, p, n)
            if top == -1:
                if ty == STRUCT_END:
                    stack.pop()
                    continue
            else:
                stack[-1] = top - 1
                if ty == STRUCT_END:
                    raise DecodeError("unexpected StructEnd inside a container", offset=p - 1)
            break
        else:
            return p


def _simple_list_start(d: bytes, p: int, n: int) -> int:
    if p >= n:
        raise DecodeError("truncated SimpleList", offset=p)
    if d[p] != 0:
        raise DecodeError(f"SimpleList element head must be 0x00, found {d[p]:#04x}", offset=p)
    return p + 1


def seek(d: bytes, p: int, n: int, tag: int) -> tuple[int, int]:
    """Find field ``tag`` at or after ``p``, skipping lower tags (unknown fields).

    Returns (type, position after its head), or (-1, position of the first head that was
    not consumed) when the field is absent: the end of the data, a StructEnd, or a higher tag.
    """
    while p < n:
        t, ty, q = read_head(d, p, n)
        if ty == STRUCT_END or t > tag:
            return -1, p
        if ty >= 14:
            raise DecodeError(f"invalid type code {ty}", offset=p, tag=t)
        if t == tag:
            return ty, q
        p = skip(d, q, n, ty)
    return -1, p


def skip_to_struct_end(d: bytes, p: int, n: int) -> int:
    """Skip the remaining fields of a nested struct and its StructEnd."""
    while True:
        _, ty, q = read_head(d, p, n)
        if ty == STRUCT_END:
            return q
        p = skip(d, q, n, ty)


def element_head(d: bytes, p: int, n: int, tag: int) -> tuple[int, int]:
    """The slow path for a container element's head: long form, or an error."""
    t, ty, q = read_head(d, p, n)
    if ty == STRUCT_END:
        raise DecodeError("container ended early (StructEnd where an element was due)", offset=p)
    if t != tag:
        raise DecodeError(f"container element has tag {t}, expected {tag}", offset=p)
    return ty, q


def read_bytes(d: bytes, p: int, n: int, ty: int) -> tuple[bytes, int]:
    """Read a ``vector<byte>``: a SimpleList, or (as C++ and Go accept) a List of Char."""
    if ty == SIMPLE_LIST:
        p = _simple_list_start(d, p, n)
        c, p = read_length(d, p, n)
        return d[p : p + c], p + c
    if ty == LIST:
        c, p = read_length(d, p, n)
        out = bytearray()
        for _ in range(c):
            ety, p = element_head(d, p, n, 0)
            if ety == ZERO:
                out.append(0)
            elif ety == CHAR:
                if p >= n:
                    raise DecodeError("truncated byte", offset=p)
                out.append(d[p])
                p += 1
            else:
                raise DecodeError(f"vector<byte> element is {TYPE_NAMES[ety]}", offset=p - 1)
        return bytes(out), p
    raise mismatch("vector<byte>", ty, p)


def mismatch(expected: str, ty: int, p: int) -> DecodeError:
    return DecodeError(f"type mismatch: expected {expected}, found {TYPE_NAMES[ty]}", offset=p - 1)


def missing(p: int) -> DecodeError:
    return DecodeError("required field is missing", offset=p)
