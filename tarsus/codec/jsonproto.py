"""The JSON protocol (iVersion 5) value mapping, as tars2cpp-generated servants speak it.

``sBuffer`` holds a UTF-8 JSON object: in a request, the in-parameters by name; in a
response, the out-parameters by name plus ``"tars_ret"`` for the return value. Values map as
upstream's ``TarsJson.h`` does: bool ↔ true/false, every number kind ↔ a JSON number,
string ↔ string, vector (``vector<byte>`` included) ↔ array, map with a scalar key ↔ object
with the key as text, enum ↔ its number, struct ↔ object keyed by field name.
"""

from __future__ import annotations

import json
from typing import Any

from tarsus.codec import types as T
from tarsus.codec.compiler import zero_value
from tarsus.codec.constants import JSONVERSION as JSONVERSION  # re-exported
from tarsus.codec.errors import DecodeError, EncodeError
from tarsus.codec.operation import Operation
from tarsus.codec.types import Map, Scalar, TarsType, Vector, idl_name, is_enum, is_struct

RET_KEY = "tars_ret"


def to_json(value: Any, t: TarsType) -> Any:
    """A JSON-ready Python value for ``value`` of Tars type ``t``."""
    if isinstance(t, Scalar):
        if t is T.BOOL:
            return bool(value)
        if t is T.STRING:
            return value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
        if t is T.FLOAT or t is T.DOUBLE:
            return float(value)
        return int(value)
    if isinstance(t, Vector):
        if t.elem is T.BYTE:
            return [b - 256 if b > 127 else b for b in bytes(value)]
        return [to_json(v, t.elem) for v in value]
    if isinstance(t, Map):
        if not isinstance(t.key, Scalar):
            raise EncodeError(f"JSON maps need a string, bool or number key, not {idl_name(t.key)}")
        return {_key_text(k, t.key): to_json(v, t.value) for k, v in value.items()}
    if is_enum(t):
        return int(value)
    if is_struct(t):
        return {f.name: to_json(getattr(value, f.name), f.type) for f in t._tars_fields_}
    raise TypeError(f"not a Tars type: {t!r}")


def from_json(obj: Any, t: TarsType, where: str = "value") -> Any:
    """The value of Tars type ``t`` for parsed JSON ``obj``; DecodeError if it does not fit."""
    if isinstance(t, Scalar):
        if t is T.BOOL:
            if isinstance(obj, bool):
                return obj
        elif t is T.STRING:
            if isinstance(obj, str):
                return obj
        elif isinstance(obj, int | float) and not isinstance(obj, bool):
            if t is T.FLOAT or t is T.DOUBLE:
                return float(obj)
            if isinstance(obj, float) and not obj.is_integer():
                raise DecodeError(f"{where}: {obj} is not a whole number for {t.name}")
            return _check_range(int(obj), t, where)
        raise DecodeError(f"{where}: expected {t.name}, got {_json_kind(obj)}")
    if isinstance(t, Vector):
        if not isinstance(obj, list):
            raise DecodeError(
                f"{where}: expected an array for {idl_name(t)}, got {_json_kind(obj)}"
            )
        if t.elem is T.BYTE:
            return bytes(
                from_json(v, T.BYTE if v < 128 else T.UNSIGNED_BYTE, where) & 0xFF for v in obj
            )
        return [from_json(v, t.elem, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(t, Map):
        if not isinstance(obj, dict):
            raise DecodeError(
                f"{where}: expected an object for {idl_name(t)}, got {_json_kind(obj)}"
            )
        return {
            _key_value(k, t.key, where): from_json(v, t.value, f"{where}[{k!r}]")
            for k, v in obj.items()
        }
    if is_enum(t):
        n = from_json(obj, T.INT, where)
        try:
            return t(n)
        except ValueError:
            return n
    if is_struct(t):
        if not isinstance(obj, dict):
            raise DecodeError(
                f"{where}: expected an object for {idl_name(t)}, got {_json_kind(obj)}"
            )
        values = {}
        for f in t._tars_fields_:
            if f.name in obj:
                values[f.name] = from_json(obj[f.name], f.type, f"{where}.{f.name}")
            elif f.required:
                raise DecodeError(f"{where}: required field {f.name!r} is missing")
        return t(**values)
    raise TypeError(f"not a Tars type: {t!r}")


def encode_args(op: Operation, args: tuple[Any, ...] | list[Any]) -> bytes:
    """A JSON request ``sBuffer``: the in-parameters by name."""
    body = {p.name: to_json(v, p.type) for p, v in zip(op.inputs, args, strict=True)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode_args(op: Operation, data: bytes) -> list[Any]:
    obj = _load(data)
    out = []
    for p in op.inputs:
        if p.name not in obj:
            raise DecodeError(f"JSON request for {op.name} lacks parameter {p.name!r}")
        out.append(from_json(obj[p.name], p.type, p.name))
    return out


def encode_results(op: Operation, result: Any) -> bytes:
    """A JSON response ``sBuffer``: the out-parameters by name and ``tars_ret``."""
    values = op._unshape(result)
    body: dict[str, Any] = {}
    types = ([op.return_type] if op.return_type is not None else []) + [p.type for p in op.outputs]
    names = ([RET_KEY] if op.return_type is not None else []) + [p.name for p in op.outputs]
    for name, t, v in zip(names, types, values, strict=True):
        body[name] = to_json(v, t)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode_results(op: Operation, data: bytes) -> Any:
    obj = _load(data)
    values = []
    if op.return_type is not None:
        values.append(
            from_json(obj[RET_KEY], op.return_type, RET_KEY)
            if RET_KEY in obj
            else zero_value(op.return_type)
        )
    for p in op.outputs:
        values.append(
            from_json(obj[p.name], p.type, p.name) if p.name in obj else zero_value(p.type)
        )
    return op._shape(values)


def _load(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DecodeError(f"sBuffer is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise DecodeError(f"sBuffer must be a JSON object, got {_json_kind(obj)}")
    return obj


def _key_text(k: Any, t: Scalar) -> str:
    if t is T.STRING:
        return str(k)
    if t is T.BOOL:
        return "1" if k else "0"  # C++ TC_Common::tostr(bool)
    return repr(float(k)) if t in (T.FLOAT, T.DOUBLE) else str(int(k))


def _key_value(k: str, t: TarsType, where: str) -> Any:
    if t is T.STRING:
        return k
    try:
        if t is T.BOOL:
            return k not in ("0", "false", "")
        if t is T.FLOAT or t is T.DOUBLE:
            return float(k)
        return _check_range(int(k), t, where)  # type: ignore[arg-type]
    except ValueError:
        raise DecodeError(f"{where}: map key {k!r} is not a {idl_name(t)}") from None


def _check_range(n: int, t: Scalar, where: str) -> int:
    if t.lo is not None and t.hi is not None and not t.lo <= n <= t.hi:
        raise DecodeError(f"{where}: {n} is out of range for {t.name} ({t.lo}..{t.hi})")
    return n


def _json_kind(obj: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(obj), "null" if obj is None else "a number"
    )
