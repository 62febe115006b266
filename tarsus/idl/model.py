"""The parsed, resolved form of a set of `.tars` files.

The parser produces these objects; the code generator and the runtime loader consume them.
Everything here is plain data: every name reference is already resolved, every default value
is already checked against its type, and struct fields are sorted by tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: IDL built-in scalar kinds. Unsigned types get their own kind because they widen on the wire.
BuiltinKind = Literal[
    "bool",
    "byte",
    "short",
    "int",
    "long",
    "float",
    "double",
    "string",
    "unsigned byte",
    "unsigned short",
    "unsigned int",
]


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class BuiltinType:
    kind: BuiltinKind


@dataclass(frozen=True)
class VectorType:
    elem: Type


@dataclass(frozen=True)
class MapType:
    key: Type
    value: Type


@dataclass(frozen=True)
class NamedType:
    """A reference to a struct or an enum, resolved to the module that declares it."""

    module: str
    name: str
    kind: Literal["struct", "enum"]

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


Type = BuiltinType | VectorType | MapType | NamedType


@dataclass(frozen=True)
class EnumValue:
    """A default or const value that names an enumerator (kept by name for readable code)."""

    module: str
    enum: str
    member: str
    value: int


#: A checked literal: bool for bool, int for integer kinds, float for float/double,
#: str for string, EnumValue for an enum-typed default.
Value = bool | int | float | str | EnumValue


@dataclass
class Field:
    tag: int
    name: str
    type: Type
    required: bool
    default: Value | None  # None: no explicit default in the IDL
    loc: Location


@dataclass
class Struct:
    module: str
    name: str
    fields: list[Field]  # sorted by tag
    loc: Location
    key_fields: list[str] | None = None  # from key[Struct, f1, f2, ...]

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class EnumMember:
    name: str
    value: int
    loc: Location


@dataclass
class Enum:
    module: str
    name: str
    members: list[EnumMember]  # declaration order
    loc: Location

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class Const:
    module: str
    name: str
    type: Type
    value: Value
    loc: Location


@dataclass
class Param:
    name: str
    type: Type
    tag: int  # 1-based position among all parameters, out parameters included
    out: bool = False
    routekey: bool = False


@dataclass
class Operation:
    name: str
    return_type: Type | None  # None for void
    params: list[Param]
    loc: Location


@dataclass
class Interface:
    module: str
    name: str
    operations: list[Operation]
    loc: Location

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


Definition = Struct | Enum | Const | Interface


@dataclass
class Module:
    """One `module X { ... }` as declared in one file (a re-opened module is another Module)."""

    name: str
    definitions: list[Definition] = field(default_factory=list)  # declaration order


@dataclass
class TarsFile:
    path: str  # absolute, normalised
    includes: list[str]  # absolute paths of directly #included files, in order
    modules: list[Module]  # in declaration order; a module name may appear more than once


@dataclass
class Program:
    """The closure of the requested files and everything they include."""

    files: dict[str, TarsFile]  # keyed by absolute path; includes come before includers
    roots: list[str]  # absolute paths of the files asked for, in the order given

    def structs(self) -> dict[str, Struct]:
        return {d.qualname: d for d in self._defs() if isinstance(d, Struct)}

    def enums(self) -> dict[str, Enum]:
        return {d.qualname: d for d in self._defs() if isinstance(d, Enum)}

    def interfaces(self) -> dict[str, Interface]:
        return {d.qualname: d for d in self._defs() if isinstance(d, Interface)}

    def _defs(self) -> list[Definition]:
        return [d for f in self.files.values() for m in f.modules for d in m.definitions]
