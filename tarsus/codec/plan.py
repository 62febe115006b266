"""Plans: struct classes and type descriptors flattened into tuples for the C codec.

The C codec (``tarsus.codec._speedups``) never looks at ``Field`` or ``TarsType`` objects. Each
struct class and each type is turned once into a *plan* made of tuples and ints, which the C
side compiles into its own tree (a ``StructCodec`` or ``ValueCodec``) and caches here.

Type node, ``(kind, ...)`` with the kinds below::

    (BOOL,) ... (STRING,), (BYTES,)       scalars; BYTES is vector<byte> (a Python bytes)
    (VECTOR, elem)                         elem: a type node
    (MAP, key, value)
    (ENUM, converter, name, members)       converter: int -> member, or the int if unknown;
                                           name and members (dict int -> member) are extras
                                           for messages and speed
    (STRUCT, struct_plan)

Struct plan, ``(cls, name, fields)``; ``fields`` sorted by tag, each
``(tag, attr_name, type_node, required, default, default_is_factory)``: when an optional
field is absent the decoder uses ``default``, or ``default()`` when ``default_is_factory``
(lists, dicts and structs are built fresh for each value).

Defaults, validation and error messages follow ``tarsus.codec.compiler``, the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, TypeAlias

from tarsus.codec import types as T
from tarsus.codec.compiler import zero_value
from tarsus.codec.types import Field, Map, TarsType, Vector, idl_name, is_enum, is_struct

try:
    from tarsus.codec import _speedups
except ImportError:  # built without a compiler: the pure-Python codec does the work
    _speedups = None  # type: ignore[assignment]

#: True when the C codec was built and imports.
AVAILABLE: Final = _speedups is not None

BOOL: Final = 0
BYTE: Final = 1
SHORT: Final = 2
INT: Final = 3
LONG: Final = 4
UBYTE: Final = 5
USHORT: Final = 6
UINT: Final = 7
FLOAT: Final = 8
DOUBLE: Final = 9
STRING: Final = 10
BYTES: Final = 11
VECTOR: Final = 12
MAP: Final = 13
ENUM: Final = 14
STRUCT: Final = 15

TypeNode: TypeAlias = tuple[Any, ...]
FieldPlan: TypeAlias = tuple[int, str, TypeNode, bool, Any, bool]
StructPlan: TypeAlias = tuple[type, str, tuple[FieldPlan, ...]]

_SCALAR_KINDS: Final[dict[TarsType, int]] = {
    T.BOOL: BOOL,
    T.BYTE: BYTE,
    T.SHORT: SHORT,
    T.INT: INT,
    T.LONG: LONG,
    T.UNSIGNED_BYTE: UBYTE,
    T.UNSIGNED_SHORT: USHORT,
    T.UNSIGNED_INT: UINT,
    T.FLOAT: FLOAT,
    T.DOUBLE: DOUBLE,
    T.STRING: STRING,
    T.BYTES: BYTES,
}

_lock = threading.RLock()
_plans: dict[type, StructPlan] = {}
_in_progress: set[type] = set()
#: class -> StructCodec. The C side reads this dict directly (``_speedups.configure``).
_codecs: dict[type, Any] = {}
#: type descriptor -> ValueCodec (keyed by equality, as compiler's value codecs).
_value_codecs: dict[Any, Any] = {}


def struct_name(cls: Any) -> str:
    name: str = cls._tars_name_ or cls.__qualname__
    return name


def struct_plan(cls: Any) -> StructPlan:
    """The plan of struct class ``cls`` (built once, then cached)."""
    plan = _plans.get(cls)
    if plan is None:
        with _lock:
            plan = _plans.get(cls)
            if plan is None:
                plan = _build_struct_plan(cls)
                _plans[cls] = plan
    return plan


def _build_struct_plan(cls: Any) -> StructPlan:
    if cls in _in_progress:
        raise TypeError(f"{cls._tars_name_ or cls.__name__} contains itself: not supported")
    _in_progress.add(cls)
    try:
        name = struct_name(cls)
        fields: tuple[Field, ...] = cls._tars_fields_
        tags = [f.tag for f in fields]
        if tags != sorted(set(tags)):
            raise TypeError(f"{name}: field tags must be unique and ascending, got {tags}")
        out = []
        for f in fields:
            if not 0 <= f.tag <= 255:
                raise ValueError(f"tag {f.tag} is outside 0..255")
            default, factory = field_default(f)
            out.append((f.tag, f.name, type_node(f.type), bool(f.required), default, factory))
        return cls, name, tuple(out)
    finally:
        _in_progress.discard(cls)


def type_node(t: TarsType) -> TypeNode:
    """The plan of a type descriptor."""
    kind = _SCALAR_KINDS.get(t)
    if kind is not None:
        return (kind,)
    if isinstance(t, Vector):
        return (VECTOR, type_node(t.elem))
    if isinstance(t, Map):
        return (MAP, type_node(t.key), type_node(t.value))
    if is_enum(t):
        members = {int(m): m for m in t}
        return (ENUM, _enum_converter(members), idl_name(t), members)
    if is_struct(t):
        return (STRUCT, struct_plan(t))
    raise TypeError(f"not a Tars type: {t!r}")


def field_default(f: Field) -> tuple[Any, bool]:
    """(default, is_factory) for an absent optional field, as compiler.default_factory_expr."""
    t = f.type
    if isinstance(t, Vector):
        return (b"", False) if t.elem == T.BYTE else (list, True)
    if isinstance(t, Map):
        return dict, True
    if is_struct(t):
        return t, True
    default = zero_value(t) if f.default is None else f.default
    if is_enum(t):
        try:
            return t(default), False
        except ValueError:
            return default, False
    return default, False


def _enum_converter(members: dict[int, Any]) -> Callable[[int], Any]:
    """int -> enum member; a value the enum does not know stays an int (newer peers)."""
    get = members.get

    def convert(v: int) -> Any:
        return get(v, v)

    return convert


def struct_codec(cls: Any) -> Any:
    """The compiled C codec (``_speedups.StructCodec``) of struct class ``cls``."""
    codec = _codecs.get(cls)
    if codec is None:
        if _speedups is None:
            raise RuntimeError("tarsus.codec._speedups is not available")
        with _lock:
            codec = _codecs.get(cls)
            if codec is None:
                # Compiling registers this class and its nested structs in _codecs.
                codec = _speedups.compile_struct(struct_plan(cls), _codecs)
    return codec


def value_codec(t: TarsType) -> Any:
    """The compiled C codec (``_speedups.ValueCodec``) of one type, read and written at tag 0."""
    codec = _value_codecs.get(t)
    if codec is None:
        if _speedups is None:
            raise RuntimeError("tarsus.codec._speedups is not available")
        with _lock:
            codec = _value_codecs.get(t)
            if codec is None:
                codec = _speedups.compile_value(type_node(t), idl_name(t), _codecs)
                _value_codecs[t] = codec
    return codec


if _speedups is not None:
    _speedups.configure(_codecs, struct_codec, value_codec)
