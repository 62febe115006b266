"""Tars values as JSON a person reads and writes (``tarsus call``, scripts, logs).

This is a presentation mapping, not a wire format: the JSON *protocol* (iVersion 5, what
tars2cpp servants speak) lives in ``tarsus.codec.jsonproto`` and follows upstream's
``TarsJson.h``. Here the aim is JSON that round-trips and reads well:

- bool ↔ true/false; every integer kind (``long`` included) ↔ a JSON number, range-checked;
- float/double ↔ a number; NaN and the infinities ↔ ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
- string ↔ string (bytes that are not UTF-8 print as U+FFFD);
- ``vector<byte>`` ↔ a base64 string; any other vector ↔ an array;
- ``map<string, V>`` ↔ an object; any other map ↔ an array of ``[key, value]`` pairs;
- enum → its enumerator name (a number the enum does not name prints as the number);
  on input a name or a number;
- struct ↔ an object keyed by field name (IDL spelling); on input unknown fields are errors,
  missing ``optional`` fields take their default, missing ``require`` fields are errors.
"""

from __future__ import annotations

import base64
import binascii
import enum
import keyword
import math
from typing import Any

from tarsus.codec import types as T
from tarsus.codec.compiler import zero_value
from tarsus.codec.types import Map, Scalar, TarsType, Vector, idl_name, is_enum, is_struct

__all__ = ["JsonValueError", "from_jsonable", "to_jsonable"]

_FLOAT_MAX = 3.4028234663852886e38  # the largest finite IEEE-754 single
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JsonValueError(ValueError):
    """A JSON value that does not fit its Tars type. ``where`` names the spot
    (``item.tags["x"]``, ``parts[2]``); ``reason`` says what was wrong."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


def idl_spelling(py_attr: str) -> str:
    """The IDL name behind a generated Python name (``class_`` → ``class``)."""
    if py_attr.endswith("_"):
        bare = py_attr[:-1]
        if keyword.iskeyword(bare) or keyword.issoftkeyword(bare):
            return bare
    return py_attr


# --------------------------------------------------------------------------- Tars → JSON


def to_jsonable(value: Any, t: TarsType) -> Any:
    """A value ``json.dumps`` accepts, for ``value`` of Tars type ``t``."""
    if isinstance(t, Scalar):
        if t is T.STRING:
            return _text(value)
        if t is T.BOOL:
            return bool(value)
        if t is T.FLOAT or t is T.DOUBLE:
            f = float(value)
            if math.isfinite(f):
                return f
            return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")
        return int(value)
    if isinstance(t, Vector):
        if t.elem is T.BYTE:
            return base64.b64encode(bytes(value)).decode("ascii")
        return [to_jsonable(v, t.elem) for v in value]
    if isinstance(t, Map):
        if t.key is T.STRING:
            return {_text(k): to_jsonable(v, t.value) for k, v in value.items()}
        return [[to_jsonable(k, t.key), to_jsonable(v, t.value)] for k, v in value.items()]
    if is_enum(t):
        if isinstance(value, enum.Enum):
            return idl_spelling(value.name)
        try:
            return idl_spelling(t(value).name)
        except ValueError:
            return int(value)
    if is_struct(t):
        return {
            idl_spelling(f.name): to_jsonable(getattr(value, f.name), f.type)
            for f in t._tars_fields_
        }
    raise TypeError(f"not a Tars type: {t!r}")


def _text(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # non-UTF-8 bytes, kept by the decoder as surrogates
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return s


# --------------------------------------------------------------------------- JSON → Tars


def from_jsonable(obj: Any, t: TarsType, where: str = "value") -> Any:
    """The Python value of Tars type ``t`` for parsed JSON ``obj``.

    Raises ``JsonValueError`` naming ``where`` (extended into containers and fields) when
    ``obj`` does not fit.
    """
    if isinstance(t, Scalar):
        return _scalar(obj, t, where)
    if isinstance(t, Vector):
        if t.elem is T.BYTE:
            if not isinstance(obj, str):
                raise JsonValueError(
                    where, f"expected a base64 string for vector<byte>, got {_kind(obj)}"
                )
            try:
                return base64.b64decode(obj, validate=True)
            except binascii.Error as e:
                raise JsonValueError(where, f"not valid base64: {e}") from None
        if not isinstance(obj, list):
            raise JsonValueError(where, f"expected an array for {idl_name(t)}, got {_kind(obj)}")
        return [from_jsonable(v, t.elem, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(t, Map):
        return _map(obj, t, where)
    if is_enum(t):
        return _enum(obj, t, where)
    if is_struct(t):
        if not isinstance(obj, dict):
            raise JsonValueError(where, f"expected an object for {idl_name(t)}, got {_kind(obj)}")
        fields = {idl_spelling(f.name): f for f in t._tars_fields_}
        unknown = [k for k in obj if k not in fields]
        if unknown:
            raise JsonValueError(
                where,
                f"{idl_name(t)} has no field {_names(unknown)} (fields: {_names(list(fields))})",
            )
        missing = [n for n, f in fields.items() if f.required and n not in obj]
        if missing:
            raise JsonValueError(where, f"required field {_names(missing)} missing")
        values = {
            f.name: from_jsonable(obj[n], f.type, f"{where}.{n}")
            for n, f in fields.items()
            if n in obj
        }
        return t(**values)
    raise TypeError(f"not a Tars type: {t!r}")


def _scalar(obj: Any, t: Scalar, where: str) -> Any:
    if t is T.STRING:
        if isinstance(obj, str):
            return obj
    elif t is T.BOOL:
        if isinstance(obj, bool):
            return obj
    elif t is T.FLOAT or t is T.DOUBLE:
        if isinstance(obj, int | float) and not isinstance(obj, bool):
            try:
                f = float(obj)
            except OverflowError:
                f = math.inf
            if t is T.FLOAT and math.isfinite(f) and abs(f) > _FLOAT_MAX:
                f = math.inf
            if math.isinf(f):
                raise JsonValueError(where, f"{obj} is out of range for {t.name}")
            return f
        if isinstance(obj, str) and obj in _NON_FINITE:
            return _NON_FINITE[obj]
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        if isinstance(obj, float) and not obj.is_integer():
            raise JsonValueError(where, f"{obj} is not a whole number ({t.name})")
        n = int(obj)
        assert t.lo is not None and t.hi is not None
        if not t.lo <= n <= t.hi:
            raise JsonValueError(where, f"{n} is out of range for {t.name} ({t.lo}..{t.hi})")
        return n
    raise JsonValueError(where, f"expected {_expected(t)}, got {_kind(obj)}")


def _map(obj: Any, t: Map, where: str) -> dict[Any, Any]:
    if t.key is T.STRING:
        if not isinstance(obj, dict):
            raise JsonValueError(where, f"expected an object for {idl_name(t)}, got {_kind(obj)}")
        return {k: from_jsonable(v, t.value, f"{where}[{k!r}]") for k, v in obj.items()}
    if not isinstance(obj, list):
        raise JsonValueError(
            where, f"expected an array of [key, value] pairs for {idl_name(t)}, got {_kind(obj)}"
        )
    out: dict[Any, Any] = {}
    for i, pair in enumerate(obj):
        if not isinstance(pair, list) or len(pair) != 2:
            raise JsonValueError(f"{where}[{i}]", "expected a [key, value] pair")
        key = from_jsonable(pair[0], t.key, f"{where}[{i}][0]")
        try:
            duplicate = key in out
        except TypeError:
            raise JsonValueError(
                f"{where}[{i}][0]", f"{idl_name(t.key)} cannot be a map key here"
            ) from None
        if duplicate:
            raise JsonValueError(f"{where}[{i}][0]", f"duplicate key {pair[0]!r}")
        out[key] = from_jsonable(pair[1], t.value, f"{where}[{i}][1]")
    return out


def _enum(obj: Any, t: type[enum.IntEnum], where: str) -> Any:
    names = {idl_spelling(m.name): m for m in t}
    if isinstance(obj, str):
        member = names.get(obj)
        if member is None:
            raise JsonValueError(
                where, f"{obj!r} is not a {idl_name(t)} (one of: {', '.join(names)})"
            )
        return member
    if isinstance(obj, int) and not isinstance(obj, bool):
        n = _scalar(obj, T.INT, where)
        try:
            return t(n)
        except ValueError:
            return n  # a newer server may know more enumerators: pass the number through
    raise JsonValueError(
        where,
        f"expected a {idl_name(t)} name or number, got {_kind(obj)} (names: {', '.join(names)})",
    )


def _expected(t: Scalar) -> str:
    if t is T.STRING:
        return "a string"
    if t is T.BOOL:
        return "true or false"
    if t is T.FLOAT or t is T.DOUBLE:
        return f"a number ({t.name})"
    return f"an integer ({t.name})"


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _kind(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    if isinstance(obj, int | float):
        return f"the number {obj}"
    if isinstance(obj, str):
        return f"the string {obj!r}" if len(obj) <= 40 else "a string"
    if isinstance(obj, dict):
        return "an object"
    if isinstance(obj, list):
        return "an array"
    return type(obj).__name__


def zero_jsonable(t: TarsType) -> Any:
    """The JSON form of ``t``'s zero value (a template for writing arguments by hand)."""
    return to_jsonable(zero_value(t), t)
