"""Runtime type descriptors: what a value is on the wire.

Python values do not say which Tars type they are (an ``int`` may be a byte or a long), so the
codec works from descriptors. Scalars are the constants below; ``vector(t)`` and ``map(k, v)``
build containers; a generated struct class or enum class is its own descriptor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeGuard

if TYPE_CHECKING:
    from tarsus.codec.struct import Struct


@dataclass(frozen=True, slots=True)
class Scalar:
    """A built-in scalar. ``name`` is the IDL spelling (``"unsigned int"``, ``"string"``...)."""

    name: str
    #: smallest and largest value an integer kind holds (None for non-integers)
    lo: int | None = None
    hi: int | None = None

    def __repr__(self) -> str:
        return f"T.{self.name.upper().replace(' ', '_')}"


@dataclass(frozen=True, slots=True)
class Vector:
    elem: TarsType

    def __repr__(self) -> str:
        return f"vector({self.elem!r})"


@dataclass(frozen=True, slots=True)
class Map:
    key: TarsType
    value: TarsType

    def __repr__(self) -> str:
        return f"map({self.key!r}, {self.value!r})"


TarsType: TypeAlias = "Scalar | Vector | Map | type[Struct] | type[enum.IntEnum]"

BOOL: Final = Scalar("bool", 0, 1)
BYTE: Final = Scalar("byte", -(2**7), 2**7 - 1)
SHORT: Final = Scalar("short", -(2**15), 2**15 - 1)
INT: Final = Scalar("int", -(2**31), 2**31 - 1)
LONG: Final = Scalar("long", -(2**63), 2**63 - 1)
UNSIGNED_BYTE: Final = Scalar("unsigned byte", 0, 2**8 - 1)
UNSIGNED_SHORT: Final = Scalar("unsigned short", 0, 2**16 - 1)
UNSIGNED_INT: Final = Scalar("unsigned int", 0, 2**32 - 1)
FLOAT: Final = Scalar("float")
DOUBLE: Final = Scalar("double")
STRING: Final = Scalar("string")
#: ``vector<byte>``: a Python ``bytes`` value, a SimpleList on the wire.
BYTES: Final = Vector(BYTE)

SCALARS: Final[dict[str, Scalar]] = {
    s.name: s
    for s in (
        BOOL,
        BYTE,
        SHORT,
        INT,
        LONG,
        UNSIGNED_BYTE,
        UNSIGNED_SHORT,
        UNSIGNED_INT,
        FLOAT,
        DOUBLE,
        STRING,
    )
}
INTEGERS: Final = frozenset((BYTE, SHORT, INT, LONG, UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT))


def vector(elem: TarsType) -> Vector:
    return Vector(elem)


def map(key: TarsType, value: TarsType) -> Map:
    return Map(key, value)


def is_struct(t: Any) -> TypeGuard[type[Struct]]:
    from tarsus.codec.struct import Struct

    return isinstance(t, type) and issubclass(t, Struct)


def is_enum(t: Any) -> TypeGuard[type[enum.IntEnum]]:
    return isinstance(t, type) and issubclass(t, enum.IntEnum)


def idl_name(t: TarsType) -> str:
    """The type as the IDL writes it (``map<string, vector<Test.User>>``)."""
    if isinstance(t, Scalar):
        return t.name
    if isinstance(t, Vector):
        return f"vector<{idl_name(t.elem)}>"
    if isinstance(t, Map):
        return f"map<{idl_name(t.key)}, {idl_name(t.value)}>"
    name: str = getattr(t, "_tars_name_", None) or t.__qualname__
    return name


@dataclass(frozen=True, slots=True)
class Field:
    """One struct member: ``tag require|optional type name = default``."""

    tag: int
    name: str
    type: TarsType
    required: bool = False
    #: The IDL default (None: the type's zero value). Containers and structs are built fresh.
    default: Any = None
    #: True when the IDL gave an explicit default (tars2cpp's check-default keys on it).
    has_default: bool = False
