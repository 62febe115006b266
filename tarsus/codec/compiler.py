"""Compiles a specialised encoder and decoder for each struct and value type.

Each struct's field list is turned into Python source once — straight-line code with the
common wire forms inlined and the rare ones (long heads, unknown fields, String4) delegated
to ``tarsus.codec.wire`` — then executed. The hot path therefore does no reflection, builds no
per-call dicts and raises no exceptions for control flow.

Failures inside compiled code surface as low-level exceptions (IndexError on truncated data,
struct.error on a value out of range...); ``tarsus.codec.api`` turns them into ``DecodeError`` /
``EncodeError`` and names the field from the line that failed, which costs nothing on success.
"""

from __future__ import annotations

import itertools
import linecache
import math
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tarsus.codec import wire
from tarsus.codec.errors import DecodeError, EncodeError
from tarsus.codec.types import (
    BOOL,
    BYTE,
    DOUBLE,
    FLOAT,
    INT,
    INTEGERS,
    LONG,
    SHORT,
    STRING,
    UNSIGNED_BYTE,
    UNSIGNED_INT,
    UNSIGNED_SHORT,
    Field,
    Map,
    Scalar,
    TarsType,
    Vector,
    idl_name,
    is_enum,
    is_struct,
)

Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[bytes, int, int], tuple[Any, int]]

#: Wire types an integer of each declared kind may arrive as (reader widening, docs/codec.md).
_INT_WIRE = {
    BOOL: (wire.ZERO, wire.CHAR),
    BYTE: (wire.ZERO, wire.CHAR),
    SHORT: (wire.ZERO, wire.CHAR, wire.SHORT),
    UNSIGNED_BYTE: (wire.ZERO, wire.CHAR, wire.SHORT),
    INT: (wire.ZERO, wire.CHAR, wire.SHORT, wire.INT32),
    UNSIGNED_SHORT: (wire.ZERO, wire.CHAR, wire.SHORT, wire.INT32),
    LONG: (wire.ZERO, wire.CHAR, wire.SHORT, wire.INT32, wire.INT64),
    UNSIGNED_INT: (wire.ZERO, wire.CHAR, wire.SHORT, wire.INT32, wire.INT64),
}

#: Signed two's-complement value (as Python int) of each byte, for Char payloads.
_S8 = tuple(range(128)) + tuple(range(-128, 0))

_PACK_FORMATS = {wire.CHAR: "b", wire.SHORT: "h", wire.INT32: "i", wire.INT64: "q"}
_PACK_FORMATS_F = {wire.FLOAT: "f", wire.DOUBLE: "d"}


@dataclass(frozen=True)
class Site:
    """What a line of compiled code was doing: used to name the field in an error."""

    owner: str
    field: str | None
    tag: int | None


#: compiled code's pseudo file name -> {line number: Site}
SITES: dict[str, dict[int, Site]] = {}

_lock = threading.RLock()
_counter = itertools.count(1)
_encoders: dict[Any, Encoder] = {}
_decoders: dict[Any, Decoder] = {}
_value_encoders: dict[Any, Encoder] = {}
_value_decoders: dict[Any, Decoder] = {}
_in_progress: set[Any] = set()


def struct_encoder(cls: type) -> Encoder:
    enc = _encoders.get(cls)
    if enc is None:
        with _lock:
            enc = _encoders.get(cls)
            if enc is None:
                _compile_struct(cls)
                enc = _encoders[cls]
    return enc


def struct_decoder(cls: type) -> Decoder:
    dec = _decoders.get(cls)
    if dec is None:
        with _lock:
            dec = _decoders.get(cls)
            if dec is None:
                _compile_struct(cls)
                dec = _decoders[cls]
    return dec


def value_encoder(t: TarsType) -> Encoder:
    """A function writing one value of type ``t`` at tag 0 (TUP values, parameters)."""
    enc = _value_encoders.get(t)
    if enc is None:
        with _lock:
            enc = _value_encoders.get(t)
            if enc is None:
                enc, dec = _compile_value(t)
                _value_encoders[t], _value_decoders[t] = enc, dec
    return enc


def value_decoder(t: TarsType) -> Decoder:
    """A function reading one value of type ``t`` at tag 0: (data, pos, end) -> (value, pos)."""
    dec = _value_decoders.get(t)
    if dec is None:
        value_encoder(t)
        dec = _value_decoders[t]
    return dec


class _Source:
    """Accumulates generated lines, their Sites, and the names they refer to."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.lines: list[str] = []
        self.sites: dict[int, Site] = {}
        self.ns: dict[str, Any] = {
            "_S8": _S8,
            "_i16": wire.unpack_i16,
            "_i32": wire.unpack_i32,
            "_i64": wire.unpack_i64,
            "_u32": wire.unpack_u32,
            "_f32": wire.unpack_f32,
            "_f64": wire.unpack_f64,
            "_seek": wire.seek,
            "_rlen": wire.read_length,
            "_ehead": wire.element_head,
            "_rbytes": wire.read_bytes,
            "_skip_end": wire.skip_to_struct_end,
            "_mismatch": wire.mismatch,
            "_missing": wire.missing,
            "_DecodeError": DecodeError,
            "_EncodeError": EncodeError,
            "_MAXS": wire.MAX_STRING_LENGTH,
            "_new": object.__new__,
            "_sbytes": _string_bytes,
            "_range": _out_of_range,
        }
        self._names: dict[tuple[str, Any], str] = {}
        self._tmp = itertools.count()
        self.site: Site = Site(owner, None, None)

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)
        self.sites[len(self.lines)] = self.site

    def name(self, kind: str, value: Any) -> str:
        """Bind ``value`` in the generated code's namespace and return its name."""
        key = (kind, value)
        try:
            return self._names[key]
        except (KeyError, TypeError):
            pass
        nm = f"_{kind}_{len(self._names)}"
        self._names[key] = nm
        self.ns[nm] = value
        return nm

    def tmp(self, prefix: str) -> str:
        return f"{prefix}{next(self._tmp)}"

    def hd(self, type_code: int, tag: int) -> str:
        return repr(wire.head(type_code, tag))

    @staticmethod
    def lit(data: bytes) -> str:
        return repr(data)

    def packer(self, type_code: int, tag: int, fmt: str) -> tuple[str, str]:
        """A packer writing head + payload in one call, and the head arguments to pass it."""
        if tag < 15:
            return self.name("P", struct.Struct(">B" + fmt).pack), str((tag << 4) | type_code)
        return self.name("P", struct.Struct(">BB" + fmt).pack), f"{0xF0 | type_code}, {tag}"

    def build(self) -> dict[str, Any]:
        filename = f"<tarsus-codec:{next(_counter)}:{self.owner}>"
        text = "\n".join(self.lines) + "\n"
        code = compile(text, filename, "exec")
        SITES[filename] = self.sites
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        exec(code, self.ns)
        return self.ns


# --------------------------------------------------------------------------- encoders


def _emit_int(src: _Source, ind: int, tag: int, x: str, lo: int, hi: int) -> None:
    """Write integer ``x`` at ``tag`` in its narrowest wire form (``TarsOutputStream::write``).

    A value outside the declared kind's range fails here (unsigned kinds) or in the final
    packer (struct.error), never silently goes out wider than readers of that kind accept.
    """
    if lo >= 0:  # unsigned kinds: negative values must not slip through the Char branch
        src.emit(ind, f"if not 0 <= {x} <= {hi}: raise _range({x}, {lo}, {hi})")
    src.emit(ind, f"if {x} == 0: b += {src.lit(wire.head(wire.ZERO, tag))}")
    for code, bits in ((wire.CHAR, 7), (wire.SHORT, 15), (wire.INT32, 31), (wire.INT64, 63)):
        fn, h = src.packer(code, tag, _PACK_FORMATS[code])
        if lo >= -(2**bits) and hi < 2**bits:  # every value of the kind fits this width
            src.emit(ind, f"else: b += {fn}({h}, {x})")
            return
        src.emit(ind, f"elif -{2**bits} <= {x} < {2**bits}: b += {fn}({h}, {x})")


def _emit_write(src: _Source, ind: int, t: TarsType, tag: int, x: str) -> None:
    if isinstance(t, Scalar):
        if t is BOOL:
            one, zero = wire.head(wire.CHAR, tag) + b"\x01", wire.head(wire.ZERO, tag)
            src.emit(ind, f"b += {src.lit(one)} if {x} else {src.lit(zero)}")
        elif t in INTEGERS:
            assert t.lo is not None and t.hi is not None
            _emit_int(src, ind, tag, x, t.lo, t.hi)
        elif t is FLOAT or t is DOUBLE:
            code = wire.FLOAT if t is FLOAT else wire.DOUBLE
            fn, h = src.packer(code, tag, _PACK_FORMATS_F[code])
            src.emit(ind, f"b += {fn}({h}, {x})")
        elif t is STRING:
            s, m = src.tmp("s"), src.tmp("m")
            src.emit(
                ind,
                f"{s} = {x}.encode('utf-8', 'surrogateescape') "
                f"if {x}.__class__ is str else _sbytes({x})",
            )
            src.emit(ind, f"{m} = len({s})")
            fn1, h1 = src.packer(wire.STRING1, tag, "B")
            fn4, h4 = src.packer(wire.STRING4, tag, "I")
            src.emit(ind, f"if {m} < 256: b += {fn1}({h1}, {m})")
            src.emit(ind, f"elif {m} <= _MAXS: b += {fn4}({h4}, {m})")
            src.emit(ind, f"else: raise _EncodeError(f'string of {{{m}}} bytes exceeds 100 MiB')")
            src.emit(ind, f"b += {s}")
        else:  # pragma: no cover - every Scalar is handled above
            raise TypeError(f"unknown scalar {t!r}")
    elif isinstance(t, Vector) and t.elem is BYTE:
        m = src.tmp("m")
        src.emit(ind, f"{m} = len({x})")
        src.emit(ind, f"b += {src.lit(wire.head(wire.SIMPLE_LIST, tag) + bytes(1))}")
        _emit_int(src, ind, 0, m, -(2**31), 2**31 - 1)
        src.emit(ind, f"b += {x}")
    elif isinstance(t, Vector):
        e = src.tmp("e")
        src.emit(ind, f"b += {src.hd(wire.LIST, tag)}")
        ln = src.tmp("m")
        src.emit(ind, f"{ln} = len({x})")
        _emit_int(src, ind, 0, ln, -(2**31), 2**31 - 1)
        src.emit(ind, f"for {e} in {x}:")
        _emit_write(src, ind + 1, t.elem, 0, e)
    elif isinstance(t, Map):
        k, v = src.tmp("k"), src.tmp("v")
        src.emit(ind, f"b += {src.hd(wire.MAP, tag)}")
        ln = src.tmp("m")
        src.emit(ind, f"{ln} = len({x})")
        _emit_int(src, ind, 0, ln, -(2**31), 2**31 - 1)
        src.emit(ind, f"for {k}, {v} in {x}.items():")
        _emit_write(src, ind + 1, t.key, 0, k)
        _emit_write(src, ind + 1, t.value, 1, v)
    elif is_enum(t):
        _emit_int(src, ind, tag, x, -(2**31), 2**31 - 1)
    elif is_struct(t):
        fn = src.name("enc", _lazy_encoder(t))
        src.emit(ind, f"b += {src.hd(wire.STRUCT_BEGIN, tag)}")
        src.emit(ind, f"{fn}({x}, b)")
        src.emit(ind, "b += b'\\x0b'")
    else:
        raise TypeError(f"not a Tars type: {t!r}")


# --------------------------------------------------------------------------- decoders


def _emit_read(
    src: _Source, ind: int, t: TarsType, ty: str, out: str, absent: list[str] | None
) -> None:
    """Read a value whose head (type code in ``ty``) was consumed; store it in ``out``.

    ``absent`` holds the lines to run when ``ty`` is -1 (the field is not there); None means
    the value must be present (container elements).
    """
    branches: list[tuple[str, list[str]]] = []

    def chain(expected: str) -> None:
        kw = "if"
        for cond, body in branches:
            src.emit(ind, f"{kw} {cond}:")
            for line in body:
                src.emit(ind + 1, line)
            kw = "elif"
        if absent is not None:
            src.emit(ind, f"elif {ty} < 0:")
            for line in absent:
                src.emit(ind + 1, line)
        src.emit(ind, f"else: raise _mismatch({expected!r}, {ty}, p)")

    if (isinstance(t, Scalar) and (t in INTEGERS or t is BOOL)) or is_enum(t):
        wires = _INT_WIRE[INT] if is_enum(t) else _INT_WIRE[t]  # type: ignore[index]
        if t is BOOL:
            branches.append((f"{ty} == 12", [f"{out} = False"]))
            branches.append((f"{ty} == 0", [f"{out} = d[p] != 0", "p += 1"]))
        else:
            table = {
                wire.ZERO: ("0", 0),
                wire.CHAR: ("_S8[d[p]]", 1),
                wire.SHORT: ("_i16(d, p)[0]", 2),
                wire.INT32: ("_i32(d, p)[0]", 4),
                wire.INT64: ("_i64(d, p)[0]", 8),
            }
            conv = src.name("E", _enum_converter(t)) if is_enum(t) else None
            for code in wires:
                expr, size = table[code]
                val = f"{conv}({expr})" if conv else expr
                branches.append(
                    (f"{ty} == {code}", [f"{out} = {val}"] + ([f"p += {size}"] if size else []))
                )
        chain(idl_name(t))
    elif t is FLOAT or t is DOUBLE:
        branches.append((f"{ty} == 4", [f"{out} = _f32(d, p)[0]", "p += 4"]))
        branches.append((f"{ty} == 5", [f"{out} = _f64(d, p)[0]", "p += 8"]))
        branches.append((f"{ty} == 12", [f"{out} = 0.0"]))
        chain(idl_name(t))
    elif t is STRING:
        e = src.tmp("e")
        branches.append(
            (
                f"{ty} == 6",
                [
                    f"{e} = p + 1 + d[p]",
                    f"if {e} > n: raise _DecodeError('truncated string', offset=p)",
                    f"{out} = d[p + 1:{e}].decode('utf-8', 'surrogateescape')",
                    f"p = {e}",
                ],
            )
        )
        branches.append((f"{ty} == 7", [f"{out}, p = {src.name('f', _read_string4)}(d, p, n)"]))
        chain("string")
    elif isinstance(t, Vector) and t.elem is BYTE:
        m, e = src.tmp("m"), src.tmp("e")
        check = f"if {m} < 0 or {e} > n: raise _DecodeError(f'bad byte count {{{m}}}', offset=p)"
        # SimpleList with a Char- or Short-sized count inline; anything else in wire.read_bytes
        for lenty, expr, size in ((0, "_S8[d[p + 2]]", 1), (1, "_i16(d, p + 2)[0]", 2)):
            branches.append(
                (
                    f"{ty} == 13 and d[p] == 0 and d[p + 1] == {lenty}",
                    [
                        f"{m} = {expr}",
                        f"{e} = p + {2 + size} + {m}",
                        check,
                        f"{out} = d[p + {2 + size}:{e}]",
                        f"p = {e}",
                    ],
                )
            )
        branches.append((f"{ty} == 13 or {ty} == 9", [f"{out}, p = _rbytes(d, p, n, {ty})"]))
        chain("vector<byte>")
    elif isinstance(t, Vector):
        c, lst, ety, ev = src.tmp("c"), src.tmp("l"), src.tmp("ty"), src.tmp("x")
        src.emit(ind, f"if {ty} == 9:")
        src.emit(ind + 1, f"{c}, p = _rlen(d, p, n)")
        src.emit(ind + 1, f"{lst} = []")
        src.emit(ind + 1, f"for _ in range({c}):")
        _emit_elem_head(src, ind + 2, 0, ety)
        _emit_read(src, ind + 2, t.elem, ety, ev, None)
        src.emit(ind + 2, f"{lst}.append({ev})")
        src.emit(ind + 1, f"{out} = {lst}")
        chain_rest(src, ind, ty, absent, idl_name(t))
    elif isinstance(t, Map):
        c, dct, kty, vty, kv, vv = (
            src.tmp("c"),
            src.tmp("dm"),
            src.tmp("ty"),
            src.tmp("ty"),
            src.tmp("k"),
            src.tmp("x"),
        )
        src.emit(ind, f"if {ty} == 8:")
        src.emit(ind + 1, f"{c}, p = _rlen(d, p, n)")
        src.emit(ind + 1, f"{dct} = {{}}")
        src.emit(ind + 1, f"for _ in range({c}):")
        _emit_elem_head(src, ind + 2, 0, kty)
        _emit_read(src, ind + 2, t.key, kty, kv, None)
        _emit_elem_head(src, ind + 2, 1, vty)
        _emit_read(src, ind + 2, t.value, vty, vv, None)
        src.emit(ind + 2, f"{dct}[{kv}] = {vv}")
        src.emit(ind + 1, f"{out} = {dct}")
        chain_rest(src, ind, ty, absent, idl_name(t))
    elif is_struct(t):
        fn = src.name("dec", _lazy_decoder(t))
        src.emit(ind, f"if {ty} == 10:")
        src.emit(ind + 1, f"{out}, p = {fn}(d, p, n)")
        src.emit(ind + 1, "if d[p] == 11: p += 1")
        src.emit(ind + 1, "else: p = _skip_end(d, p, n)")
        chain_rest(src, ind, ty, absent, idl_name(t))
    else:
        raise TypeError(f"not a Tars type: {t!r}")


def chain_rest(src: _Source, ind: int, ty: str, absent: list[str] | None, expected: str) -> None:
    if absent is not None:
        src.emit(ind, f"elif {ty} < 0:")
        for line in absent:
            src.emit(ind + 1, line)
    src.emit(ind, f"else: raise _mismatch({expected!r}, {ty}, p)")


def _emit_elem_head(src: _Source, ind: int, tag: int, ty: str) -> None:
    h = src.tmp("h")
    if tag == 0:
        src.emit(ind, f"{h} = d[p]")
        src.emit(ind, f"if {h} < 16 and {h} != 11: {ty} = {h}; p += 1")
    else:
        src.emit(ind, f"{h} = d[p]")
        src.emit(ind, f"if {h} >> 4 == {tag}: {ty} = {h} & 15; p += 1")
    src.emit(ind, f"else: {ty}, p = _ehead(d, p, n, {tag})")


def _emit_seek(src: _Source, ind: int, tag: int) -> None:
    """Position on field ``tag``: the common case (it is next, short head) inline."""
    if tag == 0:
        src.emit(ind, "if p < n and (h := d[p]) < 16 and h != 11: ty = h; p += 1")
    elif tag < 15:
        src.emit(ind, f"if p < n and (h := d[p]) >> 4 == {tag}: ty = h & 15; p += 1")
    else:
        src.emit(ind, f"ty, p = _seek(d, p, n, {tag})")
        return
    src.emit(ind, f"else: ty, p = _seek(d, p, n, {tag})")


def _default_expr(src: _Source, f: Field) -> str:
    """An expression building a field's default value (fresh for mutable ones)."""
    return default_factory_expr(f.type, f.default, src.name)


def default_factory_expr(t: TarsType, default: Any, bind: Callable[[str, Any], str]) -> str:
    if isinstance(t, Vector):
        return "b''" if t.elem is BYTE else "[]"
    if isinstance(t, Map):
        return "{}"
    if is_struct(t):
        return f"{bind('C', t)}()"
    if default is None:
        default = zero_value(t)
    if isinstance(default, float) and not math.isfinite(default):
        return bind("V", default)  # repr(inf) is not Python source
    if is_enum(t):
        try:
            return bind("V", t(default))
        except ValueError:
            return repr(default)
    return repr(default)


def zero_value(t: TarsType) -> Any:
    """The value a field holds when the IDL gives no default."""
    if t is BOOL:
        return False
    if t is FLOAT or t is DOUBLE:
        return 0.0
    if t is STRING:
        return ""
    if isinstance(t, Scalar):
        return 0
    if isinstance(t, Vector):
        return b"" if t.elem is BYTE else []
    if isinstance(t, Map):
        return {}
    if is_enum(t):
        members = list(t)
        for m in members:
            if m.value == 0:
                return m
        return members[0] if members else 0
    if is_struct(t):
        return t()
    raise TypeError(f"not a Tars type: {t!r}")


# --------------------------------------------------------------------------- assembly


def _compile_struct(cls: Any) -> None:
    if cls in _in_progress:
        raise TypeError(f"{cls._tars_name_ or cls.__name__} contains itself: not supported")
    _in_progress.add(cls)
    try:
        name = cls._tars_name_ or cls.__qualname__
        fields: tuple[Field, ...] = cls._tars_fields_
        tags = [f.tag for f in fields]
        if tags != sorted(set(tags)):
            raise TypeError(f"{name}: field tags must be unique and ascending, got {tags}")
        src = _Source(name)
        cname = src.name("C", cls)

        src.emit(0, "def encode(o, b):")
        for f in fields:
            src.site = Site(name, f.name, f.tag)
            x = src.tmp("x")
            src.emit(1, f"{x} = o.{f.name}")
            _emit_write(src, 1, f.type, f.tag, x)
        src.site = Site(name, None, None)
        src.emit(1, "return None")

        src.emit(0, "def decode(d, p, n):")
        src.emit(1, f"o = _new({cname})")
        for f in fields:
            src.site = Site(name, f.name, f.tag)
            _emit_seek(src, 1, f.tag)
            absent = (
                ["raise _missing(p)"] if f.required else [f"o.{f.name} = {_default_expr(src, f)}"]
            )
            _emit_read(src, 1, f.type, "ty", f"o.{f.name}", absent)
        src.site = Site(name, None, None)
        src.emit(1, "return o, p")
        ns = src.build()
        _encoders[cls] = ns["encode"]
        _decoders[cls] = ns["decode"]
    finally:
        _in_progress.discard(cls)


def _compile_value(t: TarsType) -> tuple[Encoder, Decoder]:
    name = idl_name(t)
    src = _Source(name)
    src.emit(0, "def encode(x, b):")
    _emit_write(src, 1, t, 0, "x")
    src.emit(0, "def decode(d, p, n):")
    _emit_seek(src, 1, 0)
    _emit_read(src, 1, t, "ty", "v", ["raise _missing(p)"])
    src.emit(1, "return v, p")
    ns = src.build()
    return ns["encode"], ns["decode"]


def _lazy_encoder(cls: Any) -> Encoder:
    """Compile a nested struct now, or bind late if it is the struct being compiled."""
    if cls in _in_progress:
        raise TypeError(f"{cls._tars_name_ or cls.__name__} contains itself: not supported")
    return struct_encoder(cls)


def _lazy_decoder(cls: Any) -> Decoder:
    if cls in _in_progress:
        raise TypeError(f"{cls._tars_name_ or cls.__name__} contains itself: not supported")
    return struct_decoder(cls)


def _enum_converter(t: Any) -> Callable[[int], Any]:
    """int -> enum member; a value the enum does not know stays an int (newer peers)."""
    get = {int(m): m for m in t}.get

    def convert(v: int) -> Any:
        return get(v, v)

    return convert


def _read_string4(d: bytes, p: int, n: int) -> tuple[str, int]:
    if p + 4 > n:
        raise DecodeError("truncated string length", offset=p)
    m = wire.unpack_u32(d, p)[0]
    if m > wire.MAX_STRING_LENGTH:
        raise DecodeError(f"string of {m} bytes exceeds the 100 MiB limit", offset=p)
    e = p + 4 + m
    if e > n:
        raise DecodeError(f"string of {m} bytes runs past the end of the data", offset=p)
    return d[p + 4 : e].decode("utf-8", "surrogateescape"), e


def _string_bytes(x: Any) -> bytes:
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    raise EncodeError(f"expected str or bytes for a string, got {type(x).__name__}")


def _out_of_range(x: Any, lo: int, hi: int) -> EncodeError:
    if not isinstance(x, int):
        return EncodeError(f"expected an integer, got {type(x).__name__} {x!r}")
    return EncodeError(f"{x} is out of range {lo}..{hi}")
