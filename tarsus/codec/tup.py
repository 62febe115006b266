"""TUP: named-parameter packing (``UniAttribute``), iVersion 3 and reading iVersion 2.

A TUP request carries, in ``sBuffer``, a ``map<string, vector<byte>>`` at tag 0 (version 3,
"simple"): each parameter name maps to its value encoded alone at tag 0. The return value's
name is the empty string. Version 2 ("complex", Node and older Java) nests one more map,
``name -> type name -> bytes``; we read it, and write version 3 (what C++ and Go speak).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tarsus.codec import types as T
from tarsus.codec.api import decode_value, encode_value
from tarsus.codec.compiler import zero_value
from tarsus.codec.constants import TUP_COMPLEX as TUP_COMPLEX  # re-exported
from tarsus.codec.constants import TUP_SIMPLE as TUP_SIMPLE  # re-exported
from tarsus.codec.errors import DecodeError
from tarsus.codec.operation import Operation
from tarsus.codec.types import Map, Scalar, TarsType, Vector, idl_name, is_enum

_V3 = T.map(T.STRING, T.BYTES)
_V2 = T.map(T.STRING, T.map(T.STRING, T.BYTES))
_MISSING: Any = object()


class UniAttribute:
    """Named values, each stored encoded. ``put``/``get`` take the value's Tars type."""

    def __init__(self, version: int = TUP_SIMPLE) -> None:
        if version not in (TUP_SIMPLE, TUP_COMPLEX):
            raise ValueError(f"TUP version must be 2 or 3, not {version}")
        self.version = version
        self._data: dict[str, bytes] = {}
        self._types: dict[str, str] = {}  # v2 only: each value's type name

    def put(self, name: str, value: Any, t: TarsType) -> None:
        self._data[name] = encode_value(value, t)
        self._types[name] = v2_type_name(t)

    def get(self, name: str, t: TarsType, default: Any = _MISSING) -> Any:
        try:
            raw = self._data[name]
        except KeyError:
            if default is not _MISSING:
                return default
            raise KeyError(f"TUP has no value named {name!r} (has: {sorted(self._data)})") from None
        try:
            return decode_value(raw, t)
        except DecodeError as e:
            e.locate(field=f"TUP value {name!r}", tag=None, offset=None)
            raise

    def put_raw(self, name: str, encoded: bytes) -> None:
        self._data[name] = bytes(encoded)

    def get_raw(self, name: str) -> bytes:
        return self._data[name]

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def encode(self) -> bytes:
        """The ``sBuffer`` bytes, in this attribute's version's layout."""
        if self.version == TUP_COMPLEX:
            nested = {n: {self._types.get(n, ""): raw} for n, raw in self._data.items()}
            return encode_value(nested, _V2)
        return encode_value(self._data, _V3)

    @classmethod
    def decode(
        cls, data: bytes | bytearray | memoryview, version: int = TUP_SIMPLE
    ) -> UniAttribute:
        ua = cls(version)
        if version == TUP_SIMPLE:
            ua._data = dict(decode_value(data, _V3))
        else:
            for name, by_type in decode_value(data, _V2).items():
                if len(by_type) != 1:
                    raise DecodeError(
                        f"TUP v2 value {name!r} has {len(by_type)} type entries, expected 1"
                    )
                ua._data[name] = next(iter(by_type.values()))
        return ua

    def __repr__(self) -> str:
        return f"UniAttribute(version={self.version}, names={sorted(self._data)})"


_V2_SCALAR_NAMES = {
    T.BOOL: "bool",
    T.BYTE: "char",
    T.SHORT: "short",
    T.INT: "int32",
    T.LONG: "int64",
    T.FLOAT: "float",
    T.DOUBLE: "double",
    T.STRING: "string",
    T.UNSIGNED_BYTE: "short",  # unsigned kinds travel as the next wider signed type
    T.UNSIGNED_SHORT: "int32",
    T.UNSIGNED_INT: "int64",
}


def v2_type_name(t: TarsType) -> str:
    """The type name TUP v2 stores next to each value (the Node SDK's spelling)."""
    if isinstance(t, Vector):
        return "list<char>" if t.elem is T.BYTE else f"List<{v2_type_name(t.elem)}>"
    if isinstance(t, Map):
        return f"map<{v2_type_name(t.key)},{v2_type_name(t.value)}>"
    if isinstance(t, Scalar):
        return _V2_SCALAR_NAMES[t]
    if is_enum(t):
        return "int32"
    return str(getattr(t, "_tars_name_", "") or idl_name(t))


# --------------------------------------------------------------------------- operations
# How an interface method travels as TUP: in-parameters by name in the request, the return
# value under "" and out-parameters by name in the reply.


def encode_args(
    op: Operation, args: tuple[Any, ...] | list[Any], version: int = TUP_SIMPLE
) -> bytes:
    ua = UniAttribute(version)
    for p, v in zip(op.inputs, args, strict=True):
        ua.put(p.name, v, p.type)
    return ua.encode()


def decode_args(op: Operation, data: bytes, version: int = TUP_SIMPLE) -> list[Any]:
    ua = UniAttribute.decode(data, version)
    return [ua.get(p.name, p.type) for p in op.inputs]


def encode_results(op: Operation, result: Any, version: int = TUP_SIMPLE) -> bytes:
    values = op._unshape(result)
    ua = UniAttribute(version)
    i = 0
    if op.return_type is not None:
        ua.put("", values[0], op.return_type)
        i = 1
    for p, v in zip(op.outputs, values[i:], strict=True):
        ua.put(p.name, v, p.type)
    return ua.encode()


def decode_results(op: Operation, data: bytes, version: int = TUP_SIMPLE) -> Any:
    ua = UniAttribute.decode(data, version)
    values = []
    if op.return_type is not None:
        values.append(ua.get("", op.return_type, zero_value(op.return_type)))
    values += [ua.get(p.name, p.type, zero_value(p.type)) for p in op.outputs]
    return op._shape(values)
